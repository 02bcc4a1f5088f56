//! The agent's own restart (a DaemonSet update, a crash) loses no stop: a stop that began
//! before the restart and ended after gives one complete record from the new agent, which
//! rebuilt its beginning from the journal, marked `agent_restarted_during`; the old agent
//! emitted none for it, and a replay of the data dir gives the same one record.
use std::time::Duration;

use serde_json::Value;
use tests::*;

const T: Duration = Duration::from_secs(15);

fn agent_on(data: &std::path::Path) -> Agent {
    Agent::start(&["run", "--json", "--data-dir", data.to_str().expect("path")])
}

fn stops_of(lines: &[Value], pid: u32) -> Vec<Value> {
    lines
        .iter()
        .filter(|l| l["type"] == "process_stop" && l["pid"] == pid)
        .cloned()
        .collect()
}

fn replayed(data: &std::path::Path) -> Vec<Value> {
    let out = std::process::Command::new(sigtrace_bin())
        .args(["replay", "--json"])
        .arg(data)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("replay");
    parse_lines(&String::from_utf8_lossy(&out.stdout))
}

/// A handler needing `handler_ms` is sent SIGTERM; after `before_restart` the old agent is
/// ended by `end`, a new one started on the same data dir; returns (the new agent's record,
/// the old agent's records of it, the replay's records of it).
fn across_restart(
    handler_ms: u64,
    before_restart: Duration,
    end: fn(Agent) -> AgentOutput,
) -> (Value, Vec<Value>, Vec<Value>) {
    let top = TempDir::new("restart");
    let data = top.path().join("j");
    let old = agent_on(&data);
    let handle = format!("TERM:0:{handler_ms}");
    let mut v = Proc::victim(&["--handle", &handle]);
    records_wait_handles(v.pid);
    kill(v.pid, libc::SIGTERM);
    std::thread::sleep(before_restart);
    let old_out = end(old);
    let new = agent_on(&data);
    assert_eq!(v.wait_exit(T).and_then(|s| s.code()), Some(0));
    let rec = new.process_stop(T, v.pid);
    let out = new.stop();
    assert_eq!(out.status.and_then(|s| s.code()), Some(0), "{}", out.stderr);
    (
        rec,
        stops_of(&old_out.lines, v.pid),
        stops_of(&replayed(&data), v.pid),
    )
}

fn records_wait_handles(pid: u32) {
    tests::records::wait_handles_term(pid);
}

fn assert_whole(rec: &Value, handler_s: f64) {
    assert_eq!(rec["complete"], true, "{rec:#}");
    assert_eq!(rec["diagnosis"], "graceful", "{rec:#}");
    assert_eq!(rec["agent_restarted_during"], true, "{rec:#}");
    assert_eq!(rec["signals"][0]["signal"], "SIGTERM", "{rec:#}");
    assert_eq!(rec["signals"][0]["disposition"], "handler", "{rec:#}");
    assert_eq!(rec["exit"]["code"], 0, "{rec:#}");
    let d = rec["duration_s"].as_f64().unwrap_or(0.0);
    assert!(
        (handler_s - 0.05..handler_s + 0.6).contains(&d),
        "duration {d} s: {rec:#}"
    );
}

/// The old agent stopped with SIGTERM (a rolling update) 1 s into a 3 s handler.
#[test]
fn a_stop_spanning_a_graceful_agent_restart_gives_one_complete_record() {
    let (rec, old, replay) = across_restart(3000, Duration::from_secs(1), Agent::stop);
    assert_whole(&rec, 3.0);
    assert!(old.is_empty(), "the old agent emitted {old:#?}");
    assert_eq!(replay.len(), 1, "{replay:#?}");
    assert_whole(&replay[0], 3.0);
}

/// The old agent SIGKILLed 1.5 s into a 4 s handler: what it had flushed (the signal) is
/// enough for one complete record.
#[test]
fn a_stop_spanning_an_agent_killed_gives_one_complete_record() {
    let (rec, old, replay) = across_restart(4000, Duration::from_millis(1500), Agent::sigkill);
    assert_whole(&rec, 4.0);
    assert!(old.is_empty(), "the old agent emitted {old:#?}");
    assert_eq!(replay.len(), 1, "{replay:#?}");
    assert_whole(&replay[0], 4.0);
}
