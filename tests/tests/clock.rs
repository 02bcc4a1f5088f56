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
