//! Command-line interface: the flags of every `sigtrace` subcommand (clap definitions only).
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "sigtrace",
    version,
    about = "Explains every process and container shutdown on this node: who sent which signal, \
             what the kernel did with it, how and when the process ended, and why.",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// `sigtrace` alone is `sigtrace run`.
    #[command(flatten)]
    pub run: RunArgs,
    /// Log filter for sigtrace's own diagnostics on stderr (e.g. "debug", "sigtrace=trace").
    #[arg(long, global = true, env = "SIGTRACE_LOG", default_value = "info")]
    pub log: String,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Trace live (the default).
    Run(RunArgs),
    /// Run the engine over a recorded journal (files or a directory).
    Replay(ReplayArgs),
    /// Check that this node can run sigtrace; one line per check.
    Doctor(DoctorArgs),
    /// Write a post-mortem as one self-contained HTML file: a summary with the fixes ranked by
    /// the time they would save, a swimlane timeline of every stop, and the details.
    Report(ReportArgs),
    /// Print one table row per workload or container: stops, median and longest duration,
    /// SIGKILLs, diagnoses and what to change.
    Summary(SummaryArgs),
}

/// Where `replay`, `report` and `summary` read stops from, and which.
#[derive(Debug, Args, Clone)]
pub struct InputArgs {
    /// Journal files or directories (default: /var/lib/sigtrace, unless --records is given).
    #[arg(value_name = "FILES|DIR")]
    pub paths: Vec<PathBuf>,
    /// JSON-lines records of `sigtrace run --json` from any number of nodes (`kubectl logs`,
    /// Loki or Elasticsearch exports; log prefixes and other lines are skipped and counted);
    /// `-` reads standard input. Repeatable.
    #[arg(long = "records", value_name = "FILE")]
    pub records: Vec<PathBuf>,
    /// Only what happened at or after this time (a journal's events, a record's start): RFC
    /// 3339 (2026-11-21T10:00:00Z) or how long ago (30m, 2h, 1d).
    #[arg(long, value_parser = parse_since, value_name = "TIME")]
    pub since: Option<i64>,
    /// Only what happened before this time (RFC 3339, or how long ago).
    #[arg(long, value_parser = parse_since, value_name = "TIME")]
    pub until: Option<i64>,
    /// Stop at the first corrupt or foreign journal record instead of skipping it.
    #[arg(long)]
    pub strict: bool,
    #[command(flatten)]
    pub filter: FilterArgs,
}

#[derive(Debug, Args, Clone)]
pub struct ReportArgs {
    #[command(flatten)]
    pub input: InputArgs,
    #[command(flatten)]
    pub engine: EngineArgs,
    /// The HTML file to write.
    #[arg(short = 'o', long = "output", value_name = "FILE.html")]
    pub output: PathBuf,
    /// The page's title (default: the window it covers).
    #[arg(long)]
    pub title: Option<String>,
}

#[derive(Debug, Args, Clone)]
pub struct SummaryArgs {
    #[command(flatten)]
    pub input: InputArgs,
    #[command(flatten)]
    pub engine: EngineArgs,
}

/// How records are printed.
#[derive(Debug, Args, Clone)]
pub struct PrintArgs {
    /// One JSON object per line instead of the human timeline.
    #[arg(long)]
    pub json: bool,
    /// Only container stops and their processes, nothing from the host.
    #[arg(long)]
    pub containers_only: bool,
}

/// How the engine shapes records. A replay, report or summary of a journal takes each
/// session's recorded `--grace`, `--stop-signal` and `--runtime-comm` unless given here.
#[derive(Debug, Args, Clone)]
pub struct EngineArgs {
    /// Expected grace period in seconds: exits after 80% of it are flagged as near-overruns.
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    pub grace: Option<f64>,
    /// Extra signals that start a shutdown (besides TERM, INT, QUIT, HUP, KILL), e.g. USR1;
    /// always emitted, whatever `--signals` says.
    #[arg(long = "stop-signal", value_name = "SIGNAL", value_parser = parse_signal)]
    pub stop_signals: Vec<i32>,
    /// Another process name (comm) that counts as the container runtime when it sends a
    /// signal (besides runc, crun, conmon, containerd-shim and the like).
    #[arg(long = "runtime-comm", value_name = "COMM")]
    pub runtime_comms: Vec<String>,
    /// Cap on processes tracked at once (older state is evicted and counted).
    #[arg(long, default_value_t = 200_000, value_name = "N", value_parser = parse_count)]
    pub max_processes: usize,
    /// Cap on shutdown episodes open at once.
    #[arg(long, default_value_t = 50_000, value_name = "N", value_parser = parse_count)]
    pub max_episodes: usize,
    /// An episode still open this many seconds after its first stop signal is closed as
    /// incomplete.
    #[arg(long, default_value_t = 600, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub episode_timeout: u64,
}

#[derive(Debug, Args, Clone)]
pub struct RunArgs {
    /// Print every decoded kernel event as one JSON object per line (no correlation).
    #[arg(long)]
    pub raw: bool,
    #[command(flatten)]
    pub print: PrintArgs,
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Directory of the event journal.
    #[arg(long, default_value = crate::journal::DEFAULT_DIR, value_name = "DIR")]
    pub data_dir: PathBuf,
    /// Do not keep a journal.
    #[arg(long)]
    pub no_record: bool,
    /// Rotate journal files at this size (MiB).
    #[arg(long, default_value_t = 64, value_name = "MIB", value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub journal_file_mib: u64,
    /// Keep at most this much journal on disk (MiB); the oldest files go first.
    #[arg(long, default_value_t = 512, value_name = "MIB", value_parser = clap::value_parser!(u64).range(1..=1_048_576))]
    pub journal_total_mib: u64,
    /// Serve Prometheus metrics on ADDR (e.g. 0.0.0.0:9477): /metrics, /healthz, /readyz.
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<std::net::SocketAddr>,
    /// Drop the `pod` label from metrics (high-churn clusters).
    #[arg(long)]
    pub metrics_no_pod_label: bool,
    /// Cap on distinct per-container label sets in metrics; beyond it, series are dropped
    /// and counted in sigtrace_label_sets_overflow_total.
    #[arg(long, default_value_t = 5000, value_name = "N", value_parser = parse_count)]
    pub metrics_max_series: usize,
    /// Node name reported in metrics and records (default: the host name).
    #[arg(long, env = "NODE_NAME", value_name = "NAME")]
    pub node_name: Option<String>,
    /// Signals emitted as events (comma-separated names or numbers); the others are only
    /// counted. Default: every signal whose default action terminates a process.
    #[arg(long, value_delimiter = ',', value_parser = parse_signal, value_name = "SIGNALS")]
    pub signals: Vec<i32>,
    /// Kernel BTF to resolve struct offsets from.
    #[arg(long, default_value = crate::btf::VMLINUX_BTF, value_name = "FILE")]
    pub btf: PathBuf,
    /// Ring buffer size in KiB (a power of two, at least 4).
    #[arg(long, default_value_t = 4096, value_name = "KIB", value_parser = parse_ring_kib)]
    pub ring_kib: u32,
    /// Scheduling of the thread that empties the ring buffer: realtime (SCHED_FIFO 1, else
    /// nice -10), raised (nice -10) or normal. Both need CAP_SYS_NICE; without it the thread
    /// keeps the default priority.
    #[arg(long, value_enum, default_value_t = crate::live::RingPriority::Realtime, value_name = "PRIORITY")]
    pub ring_priority: crate::live::RingPriority,
    /// Use raw tracepoints even where BTF tracepoints work.
    #[arg(long, hide = true)]
    pub force_raw_tracepoints: bool,
    /// Attach empty programs on the same hooks (benchmark floor); prints nothing.
    #[arg(long, hide = true)]
    pub floor: bool,
    /// Create this file once the probes are attached (used by tests and scripts).
    #[arg(long, value_name = "FILE")]
    pub ready_file: Option<PathBuf>,
    /// containerd state directories to read OCI bundles from.
    #[arg(long = "containerd-state", value_name = "DIR")]
    pub containerd_state: Vec<PathBuf>,
    /// CRI-O container storage directories.
    #[arg(long = "crio-state", value_name = "DIR")]
    pub crio_state: Vec<PathBuf>,
    /// docker data-root directories (for container names and images).
    #[arg(long = "docker-data-root", value_name = "DIR")]
    pub docker_data_root: Vec<PathBuf>,
    /// At start, carry on the stops a previous agent left in progress, read back from the
    /// last MINUTES of the journal (0: do not).
    #[arg(long, default_value_t = 10, value_name = "MINUTES")]
    pub resume_minutes: u64,
    /// At most this many MiB of the newest journal files are read back at start.
    #[arg(long, default_value_t = 64, value_name = "MIB")]
    pub resume_mib: u64,
    /// The node's CRI socket, read-only: declared grace, preStop hook, pod labels, image stop
    /// signal. Default: the first of containerd's and CRI-O's usual sockets that exists;
    /// `none` turns it off.
    #[arg(long = "cri-socket", value_name = "PATH|none")]
    pub cri_socket: Option<String>,
}

impl RunArgs {
    /// The CRI socket to use: the flag's, else the first usual one that exists.
    pub fn cri_socket(&self) -> Option<PathBuf> {
        match self.cri_socket.as_deref() {
            Some("none") => None,
            Some(p) => Some(PathBuf::from(p)),
            None => crate::container::cri::find_socket(),
        }
    }
}

#[derive(Debug, Args, Clone)]
pub struct ReplayArgs {
    #[command(flatten)]
    pub input: InputArgs,
    #[command(flatten)]
    pub print: PrintArgs,
    #[command(flatten)]
    pub engine: EngineArgs,
}

/// Which records to show.
#[derive(Debug, Args, Clone, Default)]
pub struct FilterArgs {
    /// Only records of this Kubernetes namespace (repeatable).
    #[arg(long = "namespace", value_name = "NS")]
    pub namespaces: Vec<String>,
    /// Only records of this pod (repeatable).
    #[arg(long = "pod", value_name = "POD")]
    pub pods: Vec<String>,
    /// Only records of this workload: a Deployment, StatefulSet... name, as in the records'
    /// `workload` field (repeatable).
    #[arg(long = "workload", value_name = "WORKLOAD")]
    pub workloads: Vec<String>,
    /// Only records of this container: its name, or a prefix of its id (repeatable).
    #[arg(long = "container", value_name = "NAME|ID")]
    pub containers: Vec<String>,
    /// Only records with this diagnosis, e.g. slow_handler (repeatable).
    #[arg(long = "diagnosis", value_name = "DIAGNOSIS", value_parser = parse_diagnosis)]
    pub diagnoses: Vec<crate::engine::Diagnosis>,
}

#[derive(Debug, Args, Clone)]
pub struct DoctorArgs {
    /// Kernel BTF to check.
    #[arg(long, default_value = crate::btf::VMLINUX_BTF, value_name = "FILE")]
    pub btf: PathBuf,
    /// The CRI socket to check (as `run --cri-socket`).
    #[arg(long = "cri-socket", value_name = "PATH|none")]
    pub cri_socket: Option<String>,
}

/// A duration in seconds: a finite number, not negative.
fn parse_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        Ok(_) => Err(format!(
            "{s:?} is not a duration: give a finite number of seconds, 0 or more"
        )),
        Err(_) => Err(format!("{s:?} is not a number of seconds")),
    }
}

/// A cap: a whole number, at least 1.
fn parse_count(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".to_string()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("{s:?} is not a whole number")),
    }
}

/// The ring buffer's size in KiB: a power of two from 4 KiB to 1 GiB.
fn parse_ring_kib(s: &str) -> Result<u32, String> {
    let n: u32 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a whole number of KiB"))?;
    if n.is_power_of_two() && (4..=1 << 20).contains(&n) {
        Ok(n)
    } else {
        Err(format!(
            "{n} must be a power of two from 4 to 1048576 (KiB)"
        ))
    }
}

fn parse_signal(s: &str) -> Result<i32, String> {
    crate::event::Signal::parse(s)
        .map(|sig| sig.0)
        .ok_or_else(|| format!("unknown signal {s:?} (use a name like SIGTERM or TERM, or 1-64)"))
}

/// `--since`/`--until`: RFC 3339 (see [`crate::event::parse_rfc3339`]), or a duration ago
/// (`30m`, `2h`, `1d`).
pub fn parse_since(s: &str) -> Result<i64, String> {
    if let Ok(t) = crate::event::parse_rfc3339(s) {
        return Ok(t);
    }
    let ago = humantime::parse_duration(s).map_err(|_| {
        format!(
            "invalid time {s:?}: expected RFC 3339 like 2026-11-21T10:00:00Z, or how long ago like 30m, 2h, 1d"
        )
    })?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| e.to_string())?;
    let then = now
        .checked_sub(ago)
        .ok_or_else(|| format!("{s:?} ago is before 1970"))?;
    i64::try_from(then.as_nanos()).map_err(|_| format!("{s:?} is out of range"))
}

fn parse_diagnosis(s: &str) -> Result<crate::engine::Diagnosis, String> {
    use crate::engine::Diagnosis;
    Diagnosis::parse(s).ok_or_else(|| {
        let names: Vec<&str> = Diagnosis::names().collect();
        format!("unknown diagnosis {s:?} (one of: {})", names.join(", "))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::rfc3339;

    #[test]
    fn relative_times_are_that_long_ago() {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as i64;
        for (s, secs) in [("30m", 1800), ("2h", 7200), ("1d", 86_400), ("45s", 45)] {
            let t = parse_since(s).unwrap();
            let ago = (now - t) / 1_000_000_000;
            assert!((secs - 1..=secs + 5).contains(&ago), "{s}: {ago}");
        }
        let cli = Cli::parse_from([
            "sigtrace",
            "replay",
            "--since",
            "2h",
            "--namespace",
            "shop",
            "--diagnosis",
            "slow_handler",
            "--container",
            "web",
            "--records",
            "-",
        ]);
        let Some(Command::Replay(r)) = cli.command else {
            panic!("not replay")
        };
        assert!(r.input.since.is_some());
        assert_eq!(r.input.records, [PathBuf::from("-")]);
        assert_eq!(r.input.filter.namespaces, ["shop"]);
        assert_eq!(
            r.input.filter.diagnoses,
            [crate::engine::Diagnosis::SlowHandler]
        );
    }

    #[test]
    fn time_parsing_round_trips() {
        let t = parse_since("2026-11-21T10:00:00.5Z").unwrap();
        assert_eq!(rfc3339(t), "2026-11-21T10:00:00.500000Z");
        assert_eq!(
            parse_since("2026-11-21T11:00:00+01:00").unwrap(),
            parse_since("2026-11-21T10:00:00Z").unwrap()
        );
        assert!(parse_since("yesterday").is_err());
        assert!(parse_since("2026-13-01T00:00:00Z").is_err());
        // Multi-byte text where digits were expected: an error, not a panic.
        assert!(parse_since("2026-11-21T10:00:00+0é00").is_err());
    }

    #[test]
    fn cli_parses() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
        let cli = Cli::parse_from(["sigtrace", "run", "--raw", "--signals", "TERM,9"]);
        let Some(Command::Run(run)) = cli.command else {
            panic!("not run")
        };
        assert!(run.raw);
        assert_eq!(run.signals, vec![15, 9]);
        assert!(Cli::try_parse_from(["sigtrace", "run", "--signals", "NOPE"]).is_err());
    }

    #[test]
    fn bad_values_are_refused_with_what_was_wrong() {
        let err = |args: &[&str]| {
            let mut all = vec!["sigtrace"];
            all.extend_from_slice(args);
            Cli::try_parse_from(all)
                .err()
                .unwrap_or_else(|| panic!("{args:?} accepted"))
                .to_string()
        };
        for g in ["-1", "NaN", "inf", "-inf", "soon"] {
            let e = err(&["run", &format!("--grace={g}")]);
            assert!(e.contains("--grace"), "{e}");
        }
        assert!(err(&["run", "--journal-file-mib", "0"]).contains("--journal-file-mib"));
        assert!(err(&["run", "--journal-total-mib", "0"]).contains("--journal-total-mib"));
        assert!(err(&["run", "--max-processes", "0"]).contains("at least 1"));
        assert!(err(&["run", "--metrics-max-series", "0"]).contains("at least 1"));
        assert!(err(&["run", "--episode-timeout", "0"]).contains("--episode-timeout"));
        assert!(err(&["run", "--ring-kib", "3"]).contains("power of two"));
        let e = err(&["run", "--ring-priority", "urgent"]);
        assert!(
            e.contains("--ring-priority") && e.contains("realtime"),
            "{e}"
        );
        assert!(err(&["run", "--metrics", "localhost"]).contains("--metrics"));
        assert!(err(&["replay", "--since", "2026-11-21T10:00:00+0é00"]).contains("--since"));
        assert!(err(&["replay", "--until", "yesterday"]).contains("--until"));
        assert!(err(&["replay", "--since", "30 parsecs"]).contains("how long ago"));
        assert!(err(&["replay", "--diagnosis", "slow"]).contains("unknown diagnosis"));
        let ok = Cli::try_parse_from(["sigtrace", "run", "--grace", "2.5", "--ring-kib", "64"]);
        assert!(ok.is_ok());
        let ring = |args: &[&str]| match Cli::try_parse_from(args).map(|c| c.command) {
            Ok(Some(Command::Run(r))) => r.ring_priority,
            other => panic!("{args:?}: {other:?}"),
        };
        use crate::live::RingPriority;
        assert_eq!(ring(&["sigtrace", "run"]), RingPriority::Realtime);
        let normal = ring(&["sigtrace", "run", "--ring-priority", "normal"]);
        assert_eq!(normal, RingPriority::Normal);
    }
}
