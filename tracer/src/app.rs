//! Top-level commands (`run`, `replay`, `report`, `summary`): the options each needs, built
//! once from the command line (nothing below this module sees the flags), and the source and
//! consumer each one hands to the [driver](crate::driver) or to the one replay road
//! ([`crate::input`]).
use std::{
    net::SocketAddr,
    path::PathBuf,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

use anyhow::{Context, Result};

use crate::{
    cli::{EngineArgs, InputArgs, PrintArgs, ReplayArgs, RunArgs},
    container::{metadata::MetadataDirs, ContainerResolver, ResolverOptions},
    decode::Clock,
    driver::{drive, OnBadInput},
    engine::{Engine, EngineConfig},
    event::Signal,
    filter::RecordFilter,
    input::Inputs,
    journal::{JournalOptions, JournalWriter, LiveJournal, SessionInfo},
    live::{LiveSource, RingPriority},
    metrics::{Metrics, MetricsOptions},
    output::{Format, Printer, RawPrinter},
    pipeline::{shaping_of, Keep, Pipeline, Window},
    probes::{read_btf, ProbeMode, ProbeOptions, Probes},
    summary::Summary,
};

/// How records are shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PrintOptions {
    pub json: bool,
    pub containers_only: bool,
}

/// Everything `sigtrace run` was asked for.
#[derive(Clone, Debug)]
pub struct RunOptions {
    pub source: ProbeOptions,
    /// `--raw`: decoded kernel events, no correlation.
    pub raw: bool,
    pub engine: EngineConfig,
    pub print: PrintOptions,
    pub resolver: ResolverOptions,
    /// How much of the journal a start reads back ([`crate::resume`]).
    pub resume: crate::resume::ResumeOptions,
    /// The journal's directory and limits; `None` with `--no-record`.
    pub journal: Option<(PathBuf, JournalOptions)>,
    pub metrics: Option<(SocketAddr, MetricsOptions)>,
    pub ready_file: Option<PathBuf>,
    /// How the ring thread is scheduled.
    pub ring_priority: RingPriority,
    /// The node's name (`--node-name`, else the host name): in every JSON record and in the
    /// journal's sessions.
    pub node: String,
}

/// Everything `sigtrace replay` was asked for.
#[derive(Clone, Debug)]
pub struct ReplayOptions {
    pub inputs: Inputs,
    pub print: PrintOptions,
}

/// The engine configuration the output flags ask for.
pub fn engine_config(o: &EngineArgs, timeline: bool) -> EngineConfig {
    EngineConfig {
        grace_s: o.grace,
        extra_stop_signals: o.stop_signals.iter().map(|&s| Signal(s)).collect(),
        max_processes: o.max_processes,
        max_episodes: o.max_episodes,
        episode_timeout_ns: o.episode_timeout.saturating_mul(1_000_000_000),
        runtime_comms: o.runtime_comms.clone(),
        timeline,
        ..EngineConfig::default()
    }
}

fn print_options(o: &PrintArgs) -> PrintOptions {
    PrintOptions {
        json: o.json,
        containers_only: o.containers_only,
    }
}

fn node_name(args: &RunArgs) -> String {
    args.node_name
        .clone()
        .unwrap_or_else(crate::journal::hostname)
}

impl RunOptions {
    pub fn from_args(args: &RunArgs) -> Result<Self> {
        // The command line checked it: a power of two from 4 KiB to 1 GiB.
        let ring_bytes = args.ring_kib * 1024;
        let stop_signals: Vec<Signal> = args
            .engine
            .stop_signals
            .iter()
            .map(|&s| Signal(s))
            .collect();
        let stop_mask = Signal::stop_mask(&stop_signals);
        // A `--stop-signal` is always emitted, whatever `--signals` says.
        let signal_mask = if args.signals.is_empty() {
            tracer_common::DEFAULT_SIGNAL_MASK
        } else {
            args.signals.iter().fold(0u64, |m, &s| m | Signal(s).bit())
        } | stop_signals.iter().fold(0u64, |m, s| m | s.bit());
        let mut dirs = MetadataDirs::default();
        if !args.containerd_state.is_empty() {
            dirs.containerd_state = args.containerd_state.clone();
        }
        if !args.crio_state.is_empty() {
            dirs.crio_storage = args.crio_state.clone();
        }
        if !args.docker_data_root.is_empty() {
            dirs.docker_data_root = args.docker_data_root.clone();
        }
        Ok(Self {
            source: ProbeOptions {
                btf_path: args.btf.clone(),
                signal_mask,
                stop_mask,
                ring_bytes,
                mode: if args.floor {
                    ProbeMode::Floor
                } else {
                    ProbeMode::Trace
                },
                force_raw: args.force_raw_tracepoints,
                runtime_comms: args.engine.runtime_comms.clone(),
            },
            raw: args.raw,
            engine: EngineConfig {
                emit_mask: signal_mask,
                // Only the terminal format prints timeline lines.
                ..engine_config(&args.engine, !args.print.json)
            },
            print: print_options(&args.print),
            resolver: ResolverOptions {
                metadata_dirs: dirs,
                cri_socket: args.cri_socket(),
                ..Default::default()
            },
            journal: (!args.no_record).then(|| {
                (
                    args.data_dir.clone(),
                    JournalOptions {
                        max_file_bytes: args.journal_file_mib.saturating_mul(1 << 20),
                        max_total_bytes: args.journal_total_mib.saturating_mul(1 << 20),
                        ..JournalOptions::default()
                    },
                )
            }),
            metrics: args.metrics.map(|addr| {
                (
                    addr,
                    MetricsOptions {
                        drop_pod: args.metrics_no_pod_label,
                        max_series: args.metrics_max_series,
                        version: env!("CARGO_PKG_VERSION").to_string(),
                        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                            .map(|s| s.trim().to_string())
                            .unwrap_or_default(),
                        node: node_name(args),
                    },
                )
            }),
            ready_file: args.ready_file.clone(),
            resume: crate::resume::ResumeOptions {
                max_age: Duration::from_secs(args.resume_minutes.saturating_mul(60)),
                max_bytes: args.resume_mib.saturating_mul(1 << 20),
            },
            ring_priority: args.ring_priority,
            node: node_name(args),
        })
    }
}

impl ReplayOptions {
    pub fn from_args(args: &ReplayArgs) -> Result<Self> {
        Ok(Self {
            inputs: inputs(&args.input, &args.engine, !args.print.json)?,
            print: print_options(&args.print),
        })
    }
}

fn printer(o: PrintOptions) -> Printer<std::io::BufWriter<std::io::Stdout>> {
    Printer::new(
        std::io::BufWriter::new(std::io::stdout()),
        Format::detect(o.json),
        o.containers_only,
    )
}

fn resolver(options: ResolverOptions) -> Result<ContainerResolver> {
    let mut r = ContainerResolver::new(options)
        .context("setting up container attribution (reading /proc/self/mountinfo)")?;
    if r.attribution_may_be_missing() {
        tracing::warn!("no cgroup v2 hierarchy: container attribution comes from /proc/<pid>/cgroup and may be missing for processes that exit before they are seen");
    }
    // Runtimes delete bundles when containers go: read what exists now.
    let n = r.warm_up();
    tracing::debug!("{n} running containers resolved at start-up");
    Ok(r)
}

/// The live engine: with a journal, carrying on the stops the previous agent left in progress
/// ([`crate::resume`]); and the restart's time when it did.
fn resume(opts: &RunOptions, clock: Clock) -> (Engine, Option<u64>) {
    let engine = Engine::new(opts.engine.clone());
    let Some((dir, _)) = &opts.journal else {
        return (engine, None);
    };
    let boot_id = crate::journal::SessionInfo::current(clock).boot_id;
    let now_mono = Clock::monotonic_now_ns();
    let (mut engine, r) =
        crate::resume::rebuild(dir, engine, &opts.resume, &boot_id, clock.wall_ns(now_mono));
    if r.files == 0 {
        return (engine, None);
    }
    engine.restarted(now_mono);
    tracing::info!(
        "carrying on {} stop(s) in progress from the journal ({} file(s) read back)",
        r.open,
        r.files
    );
    (engine, Some(now_mono))
}

/// Set once SIGTERM or SIGINT arrives.
fn stop_flag() -> Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, stop.clone()).context("installing the stop handler")?;
    }
    Ok(stop)
}

fn mark_ready(path: Option<&PathBuf>) -> Result<()> {
    if let Some(path) = path {
        std::fs::write(path, format!("{}\n", std::process::id()))
            .with_context(|| format!("writing the ready file {}", path.display()))?;
    }
    Ok(())
}

/// `sigtrace run`.
pub fn run(opts: RunOptions) -> Result<()> {
    let stop = stop_flag()?;
    let clock = Clock::now();
    let btf = read_btf(&opts.source.btf_path)?;
    let mut probes = Probes::load(&opts.source, &btf).context("starting the kernel probes")?;
    drop(btf);
    if opts.source.mode == ProbeMode::Floor {
        mark_ready(opts.ready_file.as_ref())?;
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(50));
        }
        tracing::info!("stopping: detaching the floor programs");
        return Ok(());
    }
    let hooks = probes.describe();

    if opts.raw {
        let mut source = LiveSource::start(probes, stop, opts.ring_priority)?;
        tracing::info!("tracing: {hooks}");
        mark_ready(opts.ready_file.as_ref())?;
        let mut raw = RawPrinter::new(std::io::BufWriter::new(std::io::stdout().lock()), clock);
        drive(&mut source, &mut raw, OnBadInput::ReportFirst)?;
        return Ok(());
    }

    let (mut engine, resumed_at) = resume(&opts, clock);
    let traced_from = probes.attached_at_ns;
    engine.trace_started(traced_from);
    // The processes of the stops carried on: their exits must be emitted.
    probes.watch(&engine.open_pids());
    let mut pipeline = Pipeline::new(
        engine,
        printer(opts.print).with_node(Some(opts.node.clone())),
    )
    .with_clock(clock)
    .with_resolver(resolver(opts.resolver.clone())?)
    .with_liveness(&opts.resolver.cgroup.proc_root);
    if let Some((dir, limits)) = &opts.journal {
        let journal = JournalWriter::open(
            dir,
            *limits,
            SessionInfo {
                hostname: opts.node.clone(),
                shaping: Some(crate::journal::Shaping {
                    resumed_at_mono_ns: resumed_at,
                    traced_from_mono_ns: Some(traced_from),
                    ..shaping_of(&opts.engine)
                }),
                ..SessionInfo::current(clock)
            },
        )
        .with_context(|| {
            format!(
                "opening the journal in {} (use --data-dir DIR or --no-record)",
                dir.display()
            )
        })?;
        tracing::info!("recording to {}", journal.path().display());
        pipeline = pipeline.leaving_open().with_journal(
            LiveJournal::new(journal).context("starting the journal's writer thread")?,
        );
    }
    let ready = Arc::new(AtomicBool::new(false));
    let mut server = None;
    if let Some((addr, options)) = &opts.metrics {
        let metrics = Arc::new(Metrics::new(options.clone())?);
        pipeline = pipeline.with_metrics(metrics.clone());
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .context("starting the metrics server's runtime")?;
        let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
        let stopped = async move {
            let _ = stop_rx.changed().await;
        };
        tracing::info!("serving metrics on http://{addr}/metrics");
        let handle = rt.block_on(crate::http::serve(*addr, metrics, ready.clone(), stopped))?;
        server = Some((rt, stop_tx, handle));
    }

    let mut source = LiveSource::start(probes, stop, opts.ring_priority)?;
    // Start-up parsed the kernel's BTF (tens of MiB, freed by now): give it back to the system
    // so that an idle agent's RSS is what it really uses.
    // SAFETY: malloc_trim has no preconditions.
    unsafe { libc::malloc_trim(0) };
    tracing::info!("tracing: {hooks}");
    mark_ready(opts.ready_file.as_ref())?;
    ready.store(true, Ordering::Relaxed);
    let result = drive(&mut source, &mut pipeline, OnBadInput::ReportFirst);
    if let Some((rt, stop_tx, handle)) = server {
        // The server closes every connection at once: no client can hold the stop up.
        let _ = stop_tx.send(true);
        let _ = rt.block_on(handle);
    }
    result?;
    Ok(())
}

/// `sigtrace replay`: the one replay road into the printer.
pub fn replay(opts: ReplayOptions) -> Result<()> {
    let (_, reading) = crate::input::read(&opts.inputs, printer(opts.print))?;
    std::io::Write::flush(&mut std::io::stdout())?;
    for n in &reading.notes {
        eprintln!("sigtrace: {n}");
    }
    match reading.empty_journals(&opts.inputs) {
        Some(empty) => anyhow::bail!(empty),
        None => Ok(()),
    }
}

/// What `replay`, `report` and `summary` read, from their flags (`timeline`: the engine
/// builds timeline lines, for a terminal).
fn inputs(args: &InputArgs, engine: &EngineArgs, timeline: bool) -> Result<Inputs> {
    if let (Some(since), Some(until)) = (args.since, args.until) {
        anyhow::ensure!(since < until, "--since must come before --until");
    }
    let journals = if args.paths.is_empty() && args.records.is_empty() {
        vec![PathBuf::from(crate::journal::DEFAULT_DIR)]
    } else {
        args.paths.clone()
    };
    Ok(Inputs {
        journals,
        records: args.records.clone(),
        window: Window {
            since: args.since,
            until: args.until,
        },
        strict: args.strict,
        filter: filter(&args.filter),
        engine: engine_config(engine, timeline),
        // What the user set is kept over each recorded session's.
        keep: Keep {
            grace: engine.grace.is_some(),
            stop_signals: !engine.stop_signals.is_empty(),
            runtime_comms: !engine.runtime_comms.is_empty(),
        },
    })
}

fn filter(f: &crate::cli::FilterArgs) -> RecordFilter {
    RecordFilter {
        namespaces: f.namespaces.clone(),
        pods: f.pods.clone(),
        workloads: f.workloads.clone(),
        containers: f.containers.clone(),
        diagnoses: f.diagnoses.clone(),
    }
}

/// `sigtrace report`.
pub fn report(args: &crate::cli::ReportArgs) -> Result<()> {
    let inputs = inputs(&args.input, &args.engine, false)?;
    let title = args
        .title
        .clone()
        .unwrap_or_else(|| crate::report::default_title(&inputs.window));
    let n = crate::report::report(&inputs, &title, &args.output)?;
    eprintln!("sigtrace: {n} stops written to {}", args.output.display());
    Ok(())
}

/// `sigtrace summary`.
pub fn summary(args: &crate::cli::SummaryArgs) -> Result<()> {
    let inputs = inputs(&args.input, &args.engine, false)?;
    let (summary, reading) = crate::input::read(&inputs, Summary::default())?;
    for n in reading.notes.iter().chain(&reading.empty_journals(&inputs)) {
        eprintln!("sigtrace: {n}");
    }
    print_summary(&summary);
    Ok(())
}

fn print_summary(summary: &Summary) {
    let color = match Format::detect(false) {
        Format::Terminal { color } => color,
        Format::Json => false,
    };
    if summary.is_empty() {
        println!("no stops in this journal (for this selection)");
    } else {
        print!("{}", summary.render(color));
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    fn run_options(args: &[&str]) -> RunOptions {
        let Some(Command::Run(args)) = Cli::parse_from(args).command else {
            panic!("not run")
        };
        RunOptions::from_args(&args).unwrap()
    }

    #[test]
    fn a_stop_signal_is_always_emitted() {
        let winch = Signal::parse("SIGWINCH").unwrap();
        let o = run_options(&["sigtrace", "run", "--stop-signal", "SIGWINCH"]);
        assert_ne!(o.source.signal_mask & winch.bit(), 0);
        assert_eq!(
            o.source.signal_mask & !winch.bit(),
            tracer_common::DEFAULT_SIGNAL_MASK
        );
        assert_eq!(o.engine.emit_mask, o.source.signal_mask);
        let o = run_options(&[
            "sigtrace",
            "run",
            "--signals",
            "TERM",
            "--stop-signal",
            "WINCH",
        ]);
        assert_eq!(o.source.signal_mask, Signal::TERM.bit() | winch.bit());
        let o = run_options(&["sigtrace", "run", "--signals", "TERM"]);
        assert_eq!(o.source.signal_mask, Signal::TERM.bit());
    }
}
