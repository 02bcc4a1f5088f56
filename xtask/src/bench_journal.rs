//! `cargo xtask bench journal`: `summary` and `report` over a full default journal directory.
//! The agent records (`--journal-total-mib 512`, the default) while two threads send
//! themselves handled SIGTERMs (every call two records, journaled, no flood budget) and a
//! third forks children and stops them with SIGTERM (a few hundred stop records a second),
//! until the directory holds about 512 MiB. Then, over rounds, `sigtrace summary DIR` and
//! `sigtrace report DIR -o FILE`: wall time and peak RSS (`wait4`'s `ru_maxrss`).
use std::{
    path::Path,
    process::{Command, Stdio},
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};

use crate::{
    bench::{min_med_max, start_with, Bins, Tracer},
    bench_agent::{on_sigterm, storm_thread, Storm},
    bootstrap, build_sigtrace, workspace_root,
};

/// How full the directory gets before the storm stops (the cap is 512 MiB).
const FULL_BYTES: u64 = 500 << 20;
/// The storm stops anyway after this long.
const MAX_STORM: Duration = Duration::from_secs(180);
const ROUNDS: usize = 3;

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// Forks children that take SIGTERM's default action and stops them, until `stop`.
fn stopper(stop: Arc<AtomicBool>, stops: Arc<AtomicU64>) {
    while !stop.load(Ordering::Relaxed) {
        // SAFETY: the child only resets SIGTERM, unblocks it and pauses until it is killed;
        // the parent kills and reaps it (SIGKILL if SIGTERM did not end it in 100 ms).
        unsafe {
            let child = libc::fork();
            if child == 0 {
                libc::signal(libc::SIGTERM, libc::SIG_DFL);
                let mut set: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut set);
                libc::sigaddset(&mut set, libc::SIGTERM);
                libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
                loop {
                    libc::pause();
                }
            }
            if child < 0 {
                return;
            }
            std::thread::sleep(Duration::from_millis(2));
            libc::kill(child, libc::SIGTERM);
            let t = Instant::now();
            while libc::waitpid(child, std::ptr::null_mut(), libc::WNOHANG) == 0 {
                if t.elapsed() > Duration::from_millis(100) {
                    libc::kill(child, libc::SIGKILL);
                    libc::waitpid(child, std::ptr::null_mut(), 0);
                    break;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        stops.fetch_add(1, Ordering::Relaxed);
    }
}

/// Runs `cmd` to its end: (wall seconds, peak RSS in MiB).
fn timed(cmd: &mut Command) -> Result<(f64, f64)> {
    let t = Instant::now();
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting sigtrace")?;
    let mut status = 0;
    // SAFETY: waits for our own child; `usage` is a valid out-parameter.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::wait4(child.id() as i32, &mut status, 0, &mut usage);
        usage
    };
    if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        bail!("{cmd:?} failed (status {status})");
    }
    Ok((t.elapsed().as_secs_f64(), usage.ru_maxrss as f64 / 1024.0))
}

pub fn journal() -> Result<()> {
    if !bootstrap::is_root() {
        bail!("the journal benchmark runs the agent: run it as root");
    }
    let bins = Bins {
        this: build_sigtrace(true)?,
        baseline: None,
    };
    let tmp = std::env::temp_dir().join(format!("sigtrace-bench-journal-{}", std::process::id()));
    std::fs::create_dir_all(&tmp)?;
    let dir = tmp.join("journal");
    let agent = start_with(Tracer::Sigtrace, &bins, &tmp, true, &[])?;
    // SAFETY: the storms' handler does nothing; installed before any storm thread runs.
    unsafe { libc::signal(libc::SIGTERM, on_sigterm as *const () as libc::sighandler_t) };
    let stop = Arc::new(AtomicBool::new(false));
    let (calls, stops) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut threads: Vec<_> = (0..2)
        .map(|cpu| {
            let (stop, calls) = (stop.clone(), calls.clone());
            std::thread::spawn(move || storm_thread(cpu, Storm::Handled, stop, calls))
        })
        .collect();
    let (s, n) = (stop.clone(), stops.clone());
    threads.push(std::thread::spawn(move || stopper(s, n)));
    let t = Instant::now();
    while dir_bytes(&dir) < FULL_BYTES && t.elapsed() < MAX_STORM {
        std::thread::sleep(Duration::from_millis(500));
    }
    stop.store(true, Ordering::Relaxed);
    for th in threads {
        let _ = th.join();
    }
    let filled_s = t.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_secs(2));
    drop(agent);
    let bytes = dir_bytes(&dir);
    let files = std::fs::read_dir(&dir)?.count();
    let html = tmp.join("report.html");
    let (mut sum_t, mut sum_m, mut rep_t, mut rep_m) = (vec![], vec![], vec![], vec![]);
    for round in 0..ROUNDS {
        let (secs, mib) = timed(Command::new(&bins.this).arg("summary").arg(&dir))?;
        sum_t.push(secs);
        sum_m.push(mib);
        let (secs, mib) = timed(
            Command::new(&bins.this)
                .arg("report")
                .arg(&dir)
                .arg("-o")
                .arg(&html),
        )?;
        rep_t.push(secs);
        rep_m.push(mib);
        eprintln!("xtask: round {}/{ROUNDS} done", round + 1);
    }
    let page = std::fs::metadata(&html).map_or(0, |m| m.len());
    let _ = std::fs::remove_dir_all(&tmp);
    let row = |what: &str, v: &mut Vec<f64>| {
        let (a, b, c) = min_med_max(v);
        format!("| {what} | {a:.2} | {b:.2} | {c:.2} |\n")
    };
    let report = format!(
        "a full journal directory: {:.0} MiB in {files} files, written in {filled_s:.0} s of a \
         handled SIGTERM storm from 2 threads ({} signals) and {} stops of forked children; \
         {ROUNDS} rounds, min / median / max\n\n\
         | what | min | median | max |\n|---|---|---|---|\n{}{}{}{}\n\
         The report's page: {:.1} MiB.\n",
        bytes as f64 / (1 << 20) as f64,
        calls.load(Ordering::Relaxed),
        stops.load(Ordering::Relaxed),
        row("`sigtrace summary DIR` (s)", &mut sum_t),
        row("`sigtrace summary DIR` peak RSS (MiB)", &mut sum_m),
        row("`sigtrace report DIR` (s)", &mut rep_t),
        row("`sigtrace report DIR` peak RSS (MiB)", &mut rep_m),
        page as f64 / (1 << 20) as f64,
    );
    print!("{report}");
    let out = workspace_root().join("target").join("bench-journal.md");
    std::fs::write(&out, &report)?;
    eprintln!("xtask: report written to {}", out.display());
    Ok(())
}
