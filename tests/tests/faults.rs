//! End-to-end: the agent under faults of its own I/O and hostile input. A full disk, a
//! removed data dir and running out of file descriptors suspend the journal (counted) while
//! tracing goes on, and it resumes by itself; metrics clients that never finish their request cannot hold up a stop nor lock
//! others out; a second agent on the same data dir fails at once; a journal cut by SIGKILL
//! mid-write replays; a flood of harmless signals does not wipe the journal's history; a
//! data dir whose file system stops answering (frozen) does not stall tracing.
use std::{
    fs,
    io::Write,
    net::TcpStream,
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;
use tests::{metrics::*, *};

const T: Duration = Duration::from_secs(15);

fn process_stop(agent: &Agent, pid: u32) -> Value {
    agent
        .wait_for(T, |l| l["type"] == "process_stop" && l["pid"] == pid)
        .unwrap_or_else(|| panic!("no process_stop for {pid}: {}", agent.stderr()))
}

/// A process that handles SIGTERM and exits 0, stopped now; returns its pid.
fn graceful_stop() -> u32 {
    let mut v = Proc::victim(&["--handle", "TERM:0:0"]);
    // Let it install its handler.
    std::thread::sleep(Duration::from_millis(200));
    kill(v.pid, libc::SIGTERM);
    assert_eq!(v.wait_exit(T).and_then(|s| s.code()), Some(0));
    v.pid
}

/// The agent recording to a journal of its own: (its top directory, the data dir, the agent).
fn journal_agent(tag: &str, extra: &[&str]) -> (TempDir, std::path::PathBuf, Agent) {
    let top = TempDir::new(tag);
    let data = top.path().join("j");
    let mut args = vec!["run", "--json", "--data-dir", data.to_str().expect("path")];
    args.extend_from_slice(extra);
    let agent = Agent::start(&args);
    (top, data, agent)
}

fn replayed_pids(dir: &Path) -> Vec<u64> {
    let out = Command::new(sigtrace_bin())
        .args(["replay", "--json"])
        .arg(dir)
        .stdin(Stdio::null())
        .output()
        .expect("replay");
    parse_lines(&String::from_utf8_lossy(&out.stdout))
        .iter()
        .filter(|l| l["type"] == "process_stop")
        .filter_map(|l| l["pid"].as_u64())
        .collect()
}

/// A 2 MiB tmpfs, unmounted on drop.
struct Tmpfs(TempDir);

impl Tmpfs {
    fn mount() -> Self {
        let dir = TempDir::new("tmpfs");
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("mount")
            .success();
        assert!(ok, "mounting a tmpfs");
        Self(dir)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0.path()).status();
    }
}

fn journal_up(addr: &str) -> Option<f64> {
    value(&metrics_text(addr), "sigtrace_journal_up", &[])
}

/// Disk full: the journal is suspended (metric, one warning), the stop is still printed; once
/// space is freed the journal resumes and records again.
#[test]
fn a_full_disk_suspends_the_journal_and_tracing_goes_on() {
    let fs_ = Tmpfs::mount();
    let data = fs_.0.path().join("j");
    let addr = format!("127.0.0.1:{}", free_port());
    let agent = Agent::start(&[
        "run",
        "--json",
        "--data-dir",
        data.to_str().expect("path"),
        "--metrics",
        &addr,
    ]);
    // Fill the file system to the last byte.
    let filler = fs_.0.path().join("filler");
    let mut f = fs::File::create(&filler).expect("filler");
    let chunk = vec![0xAAu8; 64 << 10];
    while f.write_all(&chunk).is_ok() {}
    while f.write_all(&[0]).is_ok() {}
    drop(f);
    // Enough events to need the disk: a few stops.
    let during: Vec<u32> = (0..3).map(|_| graceful_stop()).collect();
    for &pid in &during {
        process_stop(&agent, pid);
    }
    assert!(
        wait_until(T, || journal_up(&addr) == Some(0.0)),
        "journal never reported suspended: {}",
        metrics_text(&addr)
    );
    let text = metrics_text(&addr);
    assert!(value(&text, "sigtrace_journal_errors_total", &[]).is_some_and(|v| v >= 1.0));
    assert!(
        agent.stderr().contains("journal suspended"),
        "{}",
        agent.stderr()
    );
    // Space again: it resumes by itself and records the next stop.
    fs::remove_file(&filler).expect("free the disk");
    assert!(
        wait_until(T, || journal_up(&addr) == Some(1.0)),
        "journal never resumed: {}",
        agent.stderr()
    );
    let after = graceful_stop();
    process_stop(&agent, after);
    let out = agent.stop();
    assert_eq!(out.status.and_then(|s| s.code()), Some(0), "{}", out.stderr);
    assert_eq!(
        out.stderr.matches("journal suspended").count(),
        1,
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("journal resumed"), "{}", out.stderr);
    assert!(replayed_pids(&data).contains(&u64::from(after)));
}

/// The data dir removed mid-run: made again, and the next stop is recorded there.
#[test]
fn a_removed_data_dir_is_made_again() {
    let (_top, data, agent) = journal_agent("removed", &[]);
    let before = graceful_stop();
    process_stop(&agent, before);
    fs::remove_dir_all(&data).expect("rm -r the data dir");
    assert!(
        wait_until(T, || data.is_dir()),
        "the data dir was not made again: {}",
        agent.stderr()
    );
    let after = graceful_stop();
    process_stop(&agent, after);
    let out = agent.stop();
    assert_eq!(out.status.and_then(|s| s.code()), Some(0), "{}", out.stderr);
    assert!(replayed_pids(&data).contains(&u64::from(after)));
}

/// Metrics clients that never finish their request: the agent still answers others, refuses
/// what is beyond its cap, and exits within 2 s of SIGTERM.
#[test]
fn slow_metrics_clients_cannot_block_the_stop() {
    let addr = format!("127.0.0.1:{}", free_port());
    let agent = Agent::start(&["run", "--json", "--metrics", &addr]);
    let mut stuck = Vec::new();
    for _ in 0..100 {
        if let Ok(mut s) = TcpStream::connect(&addr) {
            let _ = s.write_all(b"GET /metrics HTTP/1.1\r\n");
            stuck.push(s);
        }
    }
    // The half-open ones time out (5 s head timeout); then /metrics answers again.
    assert!(
        wait_until(T, || http_get(&addr, "/healthz")
            .is_ok_and(|(s, _)| s == 200)),
        "the agent stopped answering"
    );
    let refused = value(
        &metrics_text(&addr),
        "sigtrace_http_connections_refused_total",
        &[],
    );
    assert!(refused.is_some_and(|v| v >= 1.0), "{refused:?}");
    // A fresh batch of stuck clients, then SIGTERM.
    for _ in 0..10 {
        if let Ok(mut s) = TcpStream::connect(&addr) {
            let _ = s.write_all(b"GET / HTTP/1.1\r\n");
            stuck.push(s);
        }
    }
    let t = Instant::now();
    let out = agent.stop();
    let took = t.elapsed();
    assert_eq!(out.status.and_then(|s| s.code()), Some(0), "{}", out.stderr);
    assert!(took <= Duration::from_secs(2), "stopping took {took:?}");
    drop(stuck);
}

/// A second agent on the same data dir fails at once, saying which agent has it.
#[test]
fn a_second_agent_on_the_same_data_dir_fails_at_once() {
    let (top, data, first) = journal_agent("twice", &[]);
    let err_file = top.path().join("second.err");
    let mut second = Proc::spawn(
        Command::new(sigtrace_bin())
            .args(["run", "--json", "--data-dir"])
            .arg(&data)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&err_file).expect("stderr file")),
    );
    let status = second.wait_exit(Duration::from_secs(10));
    assert!(
        status.is_some_and(|s| !s.success()),
        "the second agent must fail at once: {status:?}"
    );
    let err = fs::read_to_string(&err_file).unwrap_or_default();
    assert!(
        err.contains("in use by another sigtrace") && err.contains(&first.pid().to_string()),
        "{err}"
    );
    let out = first.stop();
    assert_eq!(out.status.and_then(|s| s.code()), Some(0), "{}", out.stderr);
}

/// SIGKILL in the middle of writing: what was written replays.
#[test]
fn a_journal_cut_by_sigkill_replays() {
    let (_top, data, agent) = journal_agent("sigkill", &[]);
    let pid = graceful_stop();
    process_stop(&agent, pid);
    // Past the periodic flush.
    std::thread::sleep(Duration::from_millis(700));
    kill(agent.pid(), libc::SIGKILL);
    let out = agent.stop();
    assert!(out.status.is_some());
    assert!(replayed_pids(&data).contains(&u64::from(pid)));
}

/// Two processes flood themselves with an ignored SIGUSR1 for 3 s: counted in the kernel,
/// not journaled; the stop recorded before the flood is still in the journal after it.
#[test]
fn a_signal_flood_does_not_wipe_the_history() {
    let addr = format!("127.0.0.1:{}", free_port());
    let (_top, data, agent) = journal_agent(
        "flood",
        &[
            "--journal-total-mib",
            "4",
            "--journal-file-mib",
            "1",
            "--metrics",
            &addr,
        ],
    );
    let before = graceful_stop();
    process_stop(&agent, before);
    let flood = "import os, signal, time\nsignal.signal(signal.SIGUSR1, signal.SIG_IGN)\nend = time.time() + 3\nwhile time.time() < end:\n    for _ in range(1000):\n        os.kill(os.getpid(), signal.SIGUSR1)\n";
    let mut floods: Vec<Proc> = (0..2)
        .map(|_| Proc::spawn(Command::new("python3").args(["-c", flood])))
        .collect();
    for f in &mut floods {
        assert!(f.wait_exit(T).is_some_and(|s| s.success()));
    }
    let text = wait_metrics(&addr, "the flood counted", |t| {
        value(
            t,
            "sigtrace_signals_counted_only_total",
            &[("signal", "SIGUSR1")],
        )
        .is_some_and(|v| v >= 10_000.0)
    });
    let counted = value(
        &text,
        "sigtrace_signals_counted_only_total",
        &[("signal", "SIGUSR1")],
    );
    let out = agent.stop();
    assert_eq!(out.status.and_then(|s| s.code()), Some(0), "{}", out.stderr);
    let bytes: u64 = fs::read_dir(&data)
        .expect("journal dir")
        .flatten()
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum();
    assert!(
        bytes < 1 << 20,
        "the flood ({counted:?} signals) was journaled: {bytes} bytes"
    );
    assert!(replayed_pids(&data).contains(&u64::from(before)));
}

/// Out of file descriptors (EMFILE) when the journal needs a new file: suspended, tracing goes
/// on; resumed once descriptors are free again.
#[test]
fn running_out_of_file_descriptors_suspends_the_journal() {
    let (_top, data, agent) = journal_agent("emfile", &[]);
    let pid = agent.pid();
    let prlimit = |n: usize| {
        let ok = Command::new("prlimit")
            .arg(format!("--pid={pid}"))
            .arg(format!("--nofile={n}:"))
            .status()
            .expect("prlimit (util-linux)")
            .success();
        assert!(ok, "prlimit --nofile={n}");
    };
    // No new descriptor at all, whatever the agent closes meanwhile (a limit at the lowest
    // free number is not enough: a descriptor the agent held for a moment while the test
    // looked, or the journal file it drops, frees a number under it). Descriptors already
    // open stay usable.
    prlimit(0);
    // The journal file goes away: the agent needs a new one and has no descriptor for it.
    for f in fs::read_dir(&data).expect("journal dir").flatten() {
        if f.path().extension().is_some_and(|e| e == "journal") {
            fs::remove_file(f.path()).expect("rm journal file");
        }
    }
    assert!(
        wait_until(T, || agent.stderr().contains("journal suspended")),
        "{}",
        agent.stderr()
    );
    let during = graceful_stop();
    process_stop(&agent, during);
    prlimit(1024);
    assert!(
        wait_until(T, || agent.stderr().contains("journal resumed")),
        "{}",
        agent.stderr()
    );
    let after = graceful_stop();
    process_stop(&agent, after);
    let out = agent.stop();
    assert_eq!(out.status.and_then(|s| s.code()), Some(0), "{}", out.stderr);
    assert!(out.stderr.contains("Too many open files"), "{}", out.stderr);
    assert!(replayed_pids(&data).contains(&u64::from(after)));
}

/// A 64 MiB ext4 file system on a loop device, unmounted and detached on drop.
struct LoopFs {
    dir: TempDir,
    device: String,
}

impl LoopFs {
    fn mount() -> Self {
        let dir = TempDir::new("loopfs");
        let image = dir.path().join("fs.img");
        fs::File::create(&image)
            .and_then(|f| f.set_len(64 << 20))
            .expect("image file");
        let run = |cmd: &mut Command| {
            let out = cmd.stdin(Stdio::null()).output().expect("spawn");
            assert!(
                out.status.success(),
                "{cmd:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        };
        run(Command::new("mkfs.ext4").args(["-q", "-F"]).arg(&image));
        let device = run(Command::new("losetup").args(["-f", "--show"]).arg(&image));
        let mnt = dir.path().join("mnt");
        fs::create_dir(&mnt).expect("mount point");
        let me = Self { dir, device };
        run(Command::new("mount").arg(&me.device).arg(&mnt));
        me
    }

    fn mnt(&self) -> std::path::PathBuf {
        self.dir.path().join("mnt")
    }
}

impl Drop for LoopFs {
    fn drop(&mut self) {
        let _ = Command::new("fsfreeze").arg("-u").arg(self.mnt()).output();
        let _ = Command::new("umount").arg(self.mnt()).status();
        let _ = Command::new("losetup").args(["-d", &self.device]).status();
    }
}

/// The file system frozen (`fsfreeze`: every write to it blocks) until dropped.
struct Frozen(std::path::PathBuf);

impl Frozen {
    fn freeze(mnt: &Path) -> Self {
        let ok = Command::new("fsfreeze").arg("-f").arg(mnt).status();
        assert!(ok.is_ok_and(|s| s.success()), "fsfreeze -f");
        Self(mnt.to_owned())
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        let _ = Command::new("fsfreeze").arg("-u").arg(&self.0).status();
    }
}

fn stalled_drops(addr: &str) -> f64 {
    value(
        &metrics_text(addr),
        "sigtrace_journal_records_dropped_total",
        &[("reason", "stalled")],
    )
    .unwrap_or(0.0)
}

/// The data dir's file system stops answering (frozen: `write` blocks): stops are still
/// printed, `/metrics` answers within 1 s, the journal reads as down and counts what it drops;
/// once the file system answers again the journal resumes (a note says what was lost) and
/// replays what came after.
#[test]
fn a_disk_that_stops_answering_does_not_stall_tracing() {
    let disk = LoopFs::mount();
    let data = disk.mnt().join("j");
    let addr = format!("127.0.0.1:{}", free_port());
    let agent = Agent::start(&[
        "run",
        "--json",
        "--data-dir",
        data.to_str().expect("path"),
        "--metrics",
        &addr,
    ]);
    let before = graceful_stop();
    process_stop(&agent, before);
    // Dropped before `agent`: the agent's writer thread is unblocked before it is killed.
    let frozen = Frozen::freeze(&disk.mnt());
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut during = Vec::new();
    while !(journal_up(&addr) == Some(0.0) && stalled_drops(&addr) >= 1.0) {
        assert!(
            Instant::now() < deadline,
            "the journal never reported the stall: {}\n{}",
            metrics_text(&addr),
            agent.stderr()
        );
        let pid = graceful_stop();
        process_stop(&agent, pid);
        during.push(pid);
        let t = Instant::now();
        let (code, _) = http_get(&addr, "/metrics").expect("/metrics answers while stalled");
        assert_eq!(code, 200);
        assert!(
            t.elapsed() < Duration::from_secs(1),
            "/metrics took {:?}",
            t.elapsed()
        );
    }
    assert!(!during.is_empty());
    drop(frozen);
    let mut after = graceful_stop();
    process_stop(&agent, after);
    let resumed = wait_until(T, || {
        if journal_up(&addr) == Some(1.0) {
            return true;
        }
        after = graceful_stop();
        process_stop(&agent, after);
        false
    });
    assert!(resumed, "the journal never resumed: {}", agent.stderr());
    let out = agent.stop();
    assert_eq!(out.status.and_then(|s| s.code()), Some(0), "{}", out.stderr);
    assert_eq!(
        out.stderr.matches("journal writes stalled").count(),
        1,
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("journal writes resumed"),
        "{}",
        out.stderr
    );
    let replayed = replayed_pids(&data);
    for pid in [before, after] {
        assert!(
            replayed.contains(&u64::from(pid)),
            "{pid} not in {replayed:?}"
        );
    }
}
