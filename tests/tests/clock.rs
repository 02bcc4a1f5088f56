//! The wall clock moves under a running agent (NTP sets it after a node booted with it wrong;
//! an operator steps it): the records of later stops carry the right time, the step is logged
//! and counted, and a replay of the journal finds them by that time. The test steps this
//! machine's `CLOCK_REALTIME` an hour back for the agent's start, then forward again (a guard
//! puts it back whatever happens).
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tests::*;

const T: Duration = Duration::from_secs(15);

fn shift_realtime(delta_ns: i64) {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid timespec for both calls; CLOCK_REALTIME exists.
    unsafe {
        libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts);
        let ns = ts.tv_sec * 1_000_000_000 + ts.tv_nsec + delta_ns;
        ts.tv_sec = ns.div_euclid(1_000_000_000) as _;
        ts.tv_nsec = ns.rem_euclid(1_000_000_000) as _;
        assert_eq!(
            libc::clock_settime(libc::CLOCK_REALTIME, &ts),
            0,
            "clock_settime (needs CAP_SYS_TIME)"
        );
    }
}

/// The wall clock shifted by `delta_ns` until `undo` or drop.
struct Shifted(Option<i64>);

impl Shifted {
    fn by(delta_ns: i64) -> Self {
        shift_realtime(delta_ns);
        Self(Some(delta_ns))
    }

    fn undo(&mut self) {
        if let Some(d) = self.0.take() {
            shift_realtime(-d);
        }
    }
}

impl Drop for Shifted {
    fn drop(&mut self) {
        self.undo();
    }
}

/// Seconds of the UTC day of an RFC 3339 time ("…THH:MM:SS.ffffffZ").
fn day_s(rfc3339: &str) -> f64 {
    let hms: Vec<f64> = rfc3339[11..rfc3339.len() - 1]
        .split(':')
        .map(|x| x.parse().unwrap())
        .collect();
    hms[0] * 3600.0 + hms[1] * 60.0 + hms[2]
}

fn now_day_s() -> f64 {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    (d.as_secs() % 86_400) as f64 + f64::from(d.subsec_micros()) / 1e6
}

#[test]
fn records_follow_the_clock_when_it_is_set_right() {
    let top = TempDir::new("clock");
    let data = top.path().join("j");
    let data_s = data.to_str().unwrap().to_string();
    let mut behind = Shifted::by(-3_600_000_000_000);
    let agent = Agent::start(&["run", "--json", "--data-dir", &data_s]);
    behind.undo();
    // The agent follows the clock at its next tick (twice a second).
    std::thread::sleep(Duration::from_millis(1500));
    let mut v = Proc::victim(&["--handle", "TERM:0:50"]);
    tests::records::wait_handles_term(v.pid);
    kill(v.pid, libc::SIGTERM);
    assert_eq!(v.wait_exit(T).and_then(|s| s.code()), Some(0));
    let rec = agent.process_stop(T, v.pid);
    let skew = (day_s(rec["time"].as_str().unwrap()) - now_day_s()).rem_euclid(86_400.0);
    let skew = skew.min(86_400.0 - skew);
    assert!(skew < 1.0, "the record is {skew} s off the clock: {rec}");
    let out = agent.stop();
    assert_eq!(out.status.and_then(|s| s.code()), Some(0), "{}", out.stderr);
    assert!(
        out.stderr.contains("the wall clock stepped by +3600."),
        "{}",
        out.stderr
    );
    let replay = std::process::Command::new(sigtrace_bin())
        .args(["replay", "--json", "--since", "10m", &data_s])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("replay");
    let lines = parse_lines(&String::from_utf8_lossy(&replay.stdout));
    let found = lines
        .iter()
        .find(|l| l["type"] == "process_stop" && l["pid"] == v.pid)
        .unwrap_or_else(|| panic!("replay --since 10m did not find {}: {lines:?}", v.pid));
    assert_eq!(found["time"], rec["time"], "{found}");
}

/// Bytes of the journal files in `dir`.
fn journal_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with(".journal"))
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// One agent session on `data` with a tight journal budget: a victim's stop, then SIGTERMs
/// at a handler that keeps running until the session has written `bytes` more journal (or
/// 30 s pass). Returns the victim's pid.
fn session_with_stop(data: &str, bytes: u64) -> u32 {
    let dir = std::path::Path::new(data);
    let agent = Agent::start(&[
        "run",
        "--json",
        "--data-dir",
        data,
        "--journal-file-mib",
        "1",
        "--journal-total-mib",
        "3",
    ]);
    let mut v = Proc::victim(&["--handle", "TERM:0:50"]);
    tests::records::wait_handles_term(v.pid);
    kill(v.pid, libc::SIGTERM);
    assert_eq!(v.wait_exit(T).and_then(|s| s.code()), Some(0));
    agent.process_stop(T, v.pid);
    let flood = Proc::victim(&["--handle", "TERM:0:600000"]);
    tests::records::wait_handles_term(flood.pid);
    let (start, goal) = (std::time::Instant::now(), journal_bytes(dir) + bytes);
    while journal_bytes(dir) < goal && start.elapsed() < Duration::from_secs(30) {
        for _ in 0..2_000 {
            kill(flood.pid, libc::SIGTERM);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(flood);
    let out = agent.stop();
    assert_eq!(out.status.and_then(|s| s.code()), Some(0), "{}", out.stderr);
    v.pid
}

/// Retention follows the order the data was written, not the clock: a second session written
/// with the clock an hour behind and a journal budget that forces pruning keeps its own data
/// (older files go first), and a replay gives its stop last.
#[test]
fn the_newest_session_survives_pruning_with_the_clock_behind() {
    let top = TempDir::new("retention");
    let data = top.path().join("j");
    let data_s = data.to_str().unwrap().to_string();
    let first = session_with_stop(&data_s, 2 << 20);
    let second = {
        let _behind = Shifted::by(-3_600_000_000_000);
        session_with_stop(&data_s, 3 << 19)
    };
    assert!(
        journal_bytes(&data) <= 4 << 20,
        "pruning kept {} bytes",
        journal_bytes(&data)
    );
    let replay = std::process::Command::new(sigtrace_bin())
        .args(["replay", "--json", &data_s])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("replay");
    let lines = parse_lines(&String::from_utf8_lossy(&replay.stdout));
    let ours: Vec<u64> = lines
        .iter()
        .filter(|l| l["type"] == "process_stop")
        .filter_map(|l| l["pid"].as_u64())
        .filter(|p| *p == u64::from(first) || *p == u64::from(second))
        .collect();
    assert_eq!(
        ours.last(),
        Some(&u64::from(second)),
        "the second session's stop must survive and replay last: {ours:?}"
    );
    // The first session's oldest data was pruned to make room.
    assert!(!ours.contains(&u64::from(first)), "{ours:?}");
}
