//! Benchmarks (never timed assertions in tests):
//! - `overhead`: the cost of `kill()` to self, for a counted-only signal (SIGURG) and an emitted
//!   one (SIGTERM while SIGTERM is blocked: ALREADY_PENDING after the first, a stop signal the
//!   kernel side must emit; a signal that meets a handler or SIG_IGN is only counted), with no tracer, with empty programs on the same hooks (the
//!   floor), with sigtrace, and with bpftrace counting `signal_generate` (a peer). Runs are
//!   interleaved; medians and ratios are printed. Then the agent's own CPU per emitted event
//!   (user + system time over 1 M events), with and without its journal.
//!   `SIGTRACE_BENCH_BASELINE=/path/to/another/sigtrace` adds that binary to every
//!   measurement, interleaved with this build: an A/B comparison in the same run.
//! - `engine`: replay throughput of the correlation engine over a large synthetic journal and
//!   the memory per tracked process (runs the tracer crate's `engine` bench target).
//! - `exec`: an exec storm (`posix_spawn` of the static busybox `true`, pinned to one CPU) with
//!   no tracer, the floor, sigtrace and bpftrace counting `sched_process_exec`, interleaved;
//!   wall-clock cost per spawn, and from `kernel.bpf_stats_enabled` each hook program's
//!   in-kernel cost per run (sigtrace's exec program against the floor's empty one). None of
//!   these execs is a runtime's exec into a container: sigtrace only counts them.
//! - `report`: the HTML report at 10 000 and 100 000 stops (`bench_report.rs`).
//! - `agent`: the agent under a storm, with and without its journal (`bench_agent.rs`);
//!   `SIGTRACE_BENCH_AGENT_ARGS` passes extra arguments to `sigtrace run`.
//! - `journal`: `summary` and `report` over a full default journal directory
//!   (`bench_journal.rs`).
use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};

use crate::{bootstrap, build_sigtrace, run_checked, workspace_root};

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Which {
    Overhead,
    Engine,
    Exec,
    Report,
    Agent,
    Journal,
}

pub fn run(which: Which) -> Result<()> {
    match which {
        Which::Overhead => crate::bench_overhead::overhead(),
        Which::Exec => exec_storm(),
        Which::Report => crate::bench_report::report_scale(),
        Which::Agent => crate::bench_agent::agent(),
        Which::Journal => crate::bench_journal::journal(),
        Which::Engine => run_checked(
            Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
                .current_dir(workspace_root())
                .args(["bench", "-p", "tracer", "--bench", "engine"]),
        ),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tracer {
    None,
    Floor,
    Sigtrace,
    /// bpftrace counting hits of a tracepoint (`signal:signal_generate`, ...).
    Bpftrace(&'static str),
    /// A libbpf-tools tool that prints every event (`killsnoop`, `exitsnoop`).
    Snoop(&'static str),
    /// `SIGTRACE_BENCH_BASELINE`, run like `Sigtrace`.
    Baseline,
}

impl Tracer {
    pub(crate) fn name(self) -> String {
        match self {
            Tracer::None => "no tracer".into(),
            Tracer::Floor => "empty programs (floor)".into(),
            Tracer::Sigtrace => "sigtrace".into(),
            Tracer::Bpftrace(probe) => format!("bpftrace count ({probe})"),
            Tracer::Snoop(tool) => format!("{tool} (libbpf-tools)"),
            Tracer::Baseline => "sigtrace (baseline binary)".into(),
        }
    }
}

/// The binaries under test: this build, and the baseline when one is given.
pub(crate) struct Bins {
    pub this: PathBuf,
    pub baseline: Option<PathBuf>,
}

/// A running tracer, stopped (SIGTERM, then SIGKILL) when dropped.
pub(crate) struct Running(pub Option<Child>);

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            // SAFETY: plain kill(2) on our own child.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Waits until `path` exists (a ready file) or, `nonempty`, has content (a tool's first
/// output line).
fn wait_for_file(path: &Path, nonempty: bool, child: &mut Child, log: &Path) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if std::fs::metadata(path).is_ok_and(|m| !nonempty || m.len() > 0) {
            return Ok(());
        }
        if let Some(status) = child.try_wait()? {
            let stderr = std::fs::read_to_string(log).unwrap_or_default();
            bail!("tracer exited early with {status}: {stderr}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    bail!("tracer not ready after 30 s")
}

pub(crate) fn start(tracer: Tracer, bins: &Bins, tmp: &Path, journal: bool) -> Result<Running> {
    start_with(tracer, bins, tmp, journal, &[])
}

/// [`start`], with `extra` arguments for sigtrace's `run` (`--metrics ADDR`).
pub(crate) fn start_with(
    tracer: Tracer,
    bins: &Bins,
    tmp: &Path,
    journal: bool,
    extra: &[&str],
) -> Result<Running> {
    let ready = tmp.join("ready");
    let _ = std::fs::remove_file(&ready);
    let log = tmp.join(format!("{tracer:?}.log"));
    let stderr = || {
        std::fs::File::create(&log)
            .map(Stdio::from)
            .unwrap_or_else(|_| Stdio::null())
    };
    let mut child = match tracer {
        Tracer::None => return Ok(Running(None)),
        Tracer::Floor | Tracer::Sigtrace | Tracer::Baseline => {
            let bin = match (tracer, &bins.baseline) {
                (Tracer::Baseline, Some(b)) => b,
                _ => &bins.this,
            };
            let mut c = Command::new(bin);
            c.arg("run")
                .arg("--ready-file")
                .arg(&ready)
                .arg("--log")
                .arg("warn");
            if journal {
                let dir = tmp.join("journal");
                let _ = std::fs::remove_dir_all(&dir);
                c.arg("--data-dir")
                    .arg(dir)
                    .args(["--journal-total-mib", "512"]);
            } else {
                c.arg("--no-record");
            }
            if tracer == Tracer::Floor {
                c.arg("--floor");
            } else {
                c.arg("--json");
            }
            c.args(extra);
            c.stdout(Stdio::null())
                .stderr(stderr())
                .spawn()
                .context("starting sigtrace")?
        }
        Tracer::Bpftrace(probe) => {
            let script = format!(
                "tracepoint:{probe} {{ @n = count(); }} BEGIN {{ system(\"echo > {}\"); }}",
                ready.display()
            );
            Command::new("bpftrace")
                .arg("--unsafe")
                .arg("-e")
                .arg(script)
                .stdout(Stdio::null())
                .stderr(stderr())
                .spawn()
                .context("starting bpftrace")?
        }
        // Ready once its header line is out; every event is printed to a file.
        Tracer::Snoop(tool) => Command::new("stdbuf")
            .arg("-oL")
            .arg(format!("/usr/sbin/{tool}"))
            .stdout(std::fs::File::create(&ready).map(Stdio::from)?)
            .stderr(stderr())
            .spawn()
            .with_context(|| format!("starting {tool}"))?,
    };
    if let Err(e) = wait_for_file(&ready, matches!(tracer, Tracer::Snoop(_)), &mut child, &log) {
        drop(Running(Some(child)));
        return Err(e.context(format!("starting {}", tracer.name())));
    }
    // Let the tracer settle (bpftrace prints, sigtrace starts its reader).
    std::thread::sleep(Duration::from_millis(300));
    Ok(Running(Some(child)))
}

pub(crate) fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Mounts tracefs if it is not (bpftrace's tracepoints need it); unmounts it on drop if it
/// mounted it.
pub(crate) struct Tracefs(bool);

impl Tracefs {
    pub(crate) fn ensure() -> Result<Self> {
        if Path::new("/sys/kernel/tracing/events").exists() {
            return Ok(Self(false));
        }
        eprintln!(
            "xtask: mounting tracefs at /sys/kernel/tracing (bpftrace's tracepoints need it)"
        );
        run_checked(Command::new("mount").args(["-t", "tracefs", "nodev", "/sys/kernel/tracing"]))?;
        Ok(Self(true))
    }
}

impl Drop for Tracefs {
    fn drop(&mut self) {
        if self.0 {
            let _ = Command::new("umount").arg("/sys/kernel/tracing").status();
        }
    }
}

const SPAWNS: u32 = 4_000;
const EXEC_ROUNDS: usize = 5;

/// Pins this process (and the children it spawns) to CPU 0.
pub(crate) fn pin_cpu0() {
    // SAFETY: sched_setaffinity on this process with a zeroed then filled cpu_set_t.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(0, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// Nanoseconds per `posix_spawn` + `waitpid` of `/bin/busybox true`.
fn spawn_loop() -> Result<f64> {
    let prog = std::ffi::CString::new("/bin/busybox")?;
    let arg1 = std::ffi::CString::new("true")?;
    let argv = [
        prog.as_ptr() as *mut libc::c_char,
        arg1.as_ptr() as *mut libc::c_char,
        std::ptr::null_mut(),
    ];
    let envp = [std::ptr::null_mut::<libc::c_char>()];
    let start = Instant::now();
    for _ in 0..SPAWNS {
        let mut pid = 0;
        // SAFETY: posix_spawn with NUL-terminated argv/envp that outlive the call; waitpid on
        // the child just spawned.
        let rc = unsafe {
            libc::posix_spawn(
                &mut pid,
                prog.as_ptr(),
                std::ptr::null(),
                std::ptr::null(),
                argv.as_ptr(),
                envp.as_ptr(),
            )
        };
        if rc != 0 {
            bail!("posix_spawn /bin/busybox: error {rc}");
        }
        let mut status = 0;
        // SAFETY: see above.
        unsafe { libc::waitpid(pid, &mut status, 0) };
    }
    Ok(start.elapsed().as_nanos() as f64 / SPAWNS as f64)
}

/// (run_time_ns, run_cnt) of every loaded BPF program with one of `names`, by name.
pub(crate) fn prog_stats(names: &[&str]) -> Result<std::collections::HashMap<String, (u64, u64)>> {
    let out = Command::new("bpftool")
        .args(["prog", "show", "-j"])
        .output()
        .context("bpftool")?;
    let progs: serde_json::Value = serde_json::from_slice(&out.stdout).context("bpftool JSON")?;
    let mut m = std::collections::HashMap::new();
    for p in progs.as_array().into_iter().flatten() {
        let name = p["name"].as_str().unwrap_or_default();
        if names.contains(&name) {
            let e = m.entry(name.to_string()).or_insert((0, 0));
            e.0 += p["run_time_ns"].as_u64().unwrap_or(0);
            e.1 += p["run_cnt"].as_u64().unwrap_or(0);
        }
    }
    Ok(m)
}

/// Each program's cost per run between two [`prog_stats`] readings (programs that ran).
pub(crate) fn ns_per_run<'a>(
    names: &[&'a str],
    before: &std::collections::HashMap<String, (u64, u64)>,
    after: &std::collections::HashMap<String, (u64, u64)>,
) -> Vec<(&'a str, f64)> {
    names
        .iter()
        .filter_map(|&p| {
            let (a, b) = (after.get(p)?, before.get(p)?);
            let runs = a.1.saturating_sub(b.1);
            (runs > 0).then(|| (p, a.0.saturating_sub(b.0) as f64 / runs as f64))
        })
        .collect()
}

/// Restores `kernel.bpf_stats_enabled` on drop.
pub(crate) struct BpfStats(String);

impl BpfStats {
    pub(crate) fn enable() -> Result<Self> {
        let old = std::fs::read_to_string("/proc/sys/kernel/bpf_stats_enabled")?
            .trim()
            .to_string();
        std::fs::write("/proc/sys/kernel/bpf_stats_enabled", "1")?;
        Ok(Self(old))
    }
}

impl BpfStats {
    /// Turns the counting on or off (restored on drop all the same).
    pub(crate) fn set(&self, on: bool) -> Result<()> {
        std::fs::write(
            "/proc/sys/kernel/bpf_stats_enabled",
            if on { "1" } else { "0" },
        )?;
        Ok(())
    }
}

impl Drop for BpfStats {
    fn drop(&mut self) {
        let _ = std::fs::write("/proc/sys/kernel/bpf_stats_enabled", &self.0);
    }
}

pub(crate) fn min_med_max(v: &mut [f64]) -> (f64, f64, f64) {
    v.sort_by(|a, b| a.total_cmp(b));
    (v[0], v[v.len() / 2], v[v.len() - 1])
}

fn exec_storm() -> Result<()> {
    if !bootstrap::is_root() {
        bail!("the exec benchmark attaches eBPF programs: run it as root");
    }
    bootstrap::test_deps()?;
    if !Path::new("/bin/busybox").exists() {
        bail!("/bin/busybox (Debian busybox-static) is missing");
    }
    let _tracefs = Tracefs::ensure()?;
    let _stats = BpfStats::enable()?;
    let bins = Bins {
        this: build_sigtrace(true)?,
        baseline: None,
    };
    let tmp = std::env::temp_dir().join(format!("sigtrace-bench-exec-{}", std::process::id()));
    std::fs::create_dir_all(&tmp)?;
    pin_cpu0();
    let tracers = [
        Tracer::None,
        Tracer::Floor,
        Tracer::Sigtrace,
        Tracer::Bpftrace("sched:sched_process_exec"),
    ];
    let progs = [
        "sched_process_exec",
        "floor_sched_process_exec",
        "sched_process_exit",
        "floor_sched_process_exit",
    ];
    let mut wall: Vec<Vec<f64>> = vec![Vec::new(); tracers.len()];
    // Per round: in-kernel ns per run of each program.
    let mut per_run: std::collections::HashMap<&str, Vec<f64>> = Default::default();
    let mut ratios = Vec::new();
    spawn_loop()?; // warm-up
    for round in 0..EXEC_ROUNDS {
        let mut this_round: std::collections::HashMap<&str, f64> = Default::default();
        for k in 0..tracers.len() {
            let t = (k + round) % tracers.len();
            let _running = start(tracers[t], &bins, &tmp, false)?;
            let before = prog_stats(&progs)?;
            wall[t].push(spawn_loop()?);
            let after = prog_stats(&progs)?;
            for (p, ns) in ns_per_run(&progs, &before, &after) {
                per_run.entry(p).or_default().push(ns);
                this_round.insert(p, ns);
            }
        }
        if let (Some(s), Some(f)) = (
            this_round.get("sched_process_exec"),
            this_round.get("floor_sched_process_exec"),
        ) {
            ratios.push(s / f.max(1.0));
        }
        eprintln!("xtask: round {}/{EXEC_ROUNDS} done", round + 1);
    }
    let _ = std::fs::remove_dir_all(&tmp);
    let mut report = format!(
        "exec storm: posix_spawn + waitpid of /bin/busybox true, {SPAWNS} per run, pinned to CPU 0, \
         {EXEC_ROUNDS} interleaved rounds\n\n| tracer | min | median | max | added (median) |\n|---|---|---|---|---|\n"
    );
    let base = min_med_max(&mut wall[0].clone()).1;
    for (t, tracer) in tracers.iter().enumerate() {
        let (lo, med, hi) = min_med_max(&mut wall[t]);
        report.push_str(&format!(
            "| {} | {lo:.0} | {med:.0} | {hi:.0} | {:.0} |\n",
            tracer.name(),
            med - base
        ));
    }
    report.push_str("\nin-kernel cost per run (bpf_stats run_time_ns / run_cnt), over the rounds:\n\n| program | min | median | max |\n|---|---|---|---|\n");
    for p in progs {
        if let Some(v) = per_run.get_mut(p) {
            let (lo, med, hi) = min_med_max(v);
            report.push_str(&format!("| {p} | {lo:.0} | {med:.0} | {hi:.0} |\n"));
        }
    }
    let worst = ratios.iter().copied().fold(0.0, f64::max);
    report.push_str(&format!(
        "\nnot-emitted exec: sigtrace's exec program / the floor's, per run, worst round = {worst:.2} \
         (rounds: {}; target <= 1.5: {})\n",
        ratios.iter().map(|r| format!("{r:.2}")).collect::<Vec<_>>().join(", "),
        if !ratios.is_empty() && worst <= 1.5 { "met" } else { "NOT met" }
    ));
    print!("{report}");
    let out = workspace_root().join("target").join("bench-exec.md");
    std::fs::write(&out, &report)?;
    eprintln!("xtask: report written to {}", out.display());
    Ok(())
}

/// CPU time (user + system) of process `pid` so far, in nanoseconds.
pub fn cpu_ns(pid: u32) -> Result<u64> {
    let stat = procfs::process::Process::new(pid as i32)?.stat()?;
    let hz = procfs::ticks_per_second().max(1);
    Ok((stat.utime + stat.stime) * 1_000_000_000 / hz)
}
