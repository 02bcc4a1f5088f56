//! End-to-end: the release scenarios S1–S9 and S12–S14 of shutdowns, reproduced with real
//! processes and PID namespaces (`unshare --pid --fork --mount-proc`) and no container runtime:
//! the runtime player ([`tests::stop::stop`]) sends the stop signal, waits the grace period and
//! SIGKILLs. Each test asserts the `process_stop` records `sigtrace run --json` prints for the
//! PIDs it created: diagnosis, exit, duration, escalation and overrun, signal results,
//! forwarding.
use std::{process::Command, time::Duration};

use serde_json::Value;
use tests::{stop::stop, *};

const T: Duration = Duration::from_secs(10);
const GRACE: Duration = Duration::from_secs(2);

/// The `process_stop` records printed so far for `pid`.
fn records_for(lines: &[Value], pid: u32) -> Vec<Value> {
    lines
        .iter()
        .filter(|l| l["type"] == "process_stop" && l["pid"] == pid)
        .cloned()
        .collect()
}

/// Waits (bounded) for the `process_stop` record of `pid`.
fn record(agent: &Agent, pid: u32) -> Value {
    agent.process_stop(T, pid)
}

/// Waits (bounded) until `pid` runs the program named `name` (after its exec).
fn wait_comm(pid: u32, name: &str) {
    assert!(
        wait_until(T, || comm(pid) == name),
        "pid {pid} never became {name:?} (is {:?})",
        comm(pid)
    );
}

/// `victim ARGS` as PID 1 of a new PID namespace, set up (ready) before this returns.
/// Returns the unshare process (guard), the victim's host PID and the dir of its ready file.
fn ns_victim(args: &[&str]) -> (Proc, u32, TempDir) {
    ns_cmd(&[], args)
}

/// `PREFIX... victim ARGS` in a new PID namespace (e.g. PREFIX = tini -s --), waiting until the
/// victim is ready. Returns the unshare guard, the host PID of the namespace's init, and the
/// ready file's directory.
fn ns_cmd(prefix: &[&str], args: &[&str]) -> (Proc, u32, TempDir) {
    let dir = TempDir::new("nsvictim");
    let ready = dir.path().join("ready");
    let victim = victim_bin();
    let mut cmd: Vec<&str> = prefix.to_vec();
    cmd.push(victim.to_str().unwrap());
    cmd.extend_from_slice(args);
    cmd.extend_from_slice(&["--ready", ready.to_str().unwrap()]);
    let (p, init) = in_pid_namespace(&cmd);
    assert!(
        wait_until(T, || ready.exists()),
        "victim in the PID namespace did not get ready"
    );
    (p, init, dir)
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

fn assert_duration(rec: &Value, lo: f64, hi: f64) {
    let d = f(&rec["duration_s"]);
    assert!(
        (lo..=hi).contains(&d),
        "duration_s {d} not in [{lo}, {hi}]: {rec}"
    );
}

/// diagnosis, exit code, exit signal, killed, overrun.
fn assert_outcome(
    rec: &Value,
    diagnosis: &str,
    code: Option<i64>,
    signal: Option<&str>,
    killed: bool,
    overrun: bool,
) {
    assert_eq!(rec["diagnosis"], diagnosis, "diagnosis: {rec}");
    assert_eq!(rec["exit"]["code"].as_i64(), code, "exit code: {rec}");
    assert_eq!(rec["exit"]["signal"].as_str(), signal, "exit signal: {rec}");
    assert_eq!(rec["killed"], killed, "killed: {rec}");
    assert_eq!(rec["overrun"], overrun, "overrun: {rec}");
    assert_eq!(rec["complete"], true, "complete: {rec}");
    assert_eq!(
        rec["hint"].is_null(),
        matches!(diagnosis, "graceful" | "force_killed"),
        "hint: {rec}"
    );
}

fn signals(rec: &Value) -> &Vec<Value> {
    rec["signals"]
        .as_array()
        .unwrap_or_else(|| panic!("no signals: {rec}"))
}

/// The record's signals named `sig`.
fn signals_named<'a>(rec: &'a Value, sig: &str) -> Vec<&'a Value> {
    signals(rec).iter().filter(|s| s["signal"] == sig).collect()
}

fn forwarded_to(rec: &Value, pid: u32, sig: &str) -> bool {
    rec["forwarded"].as_array().is_some_and(|fw| {
        fw.iter()
            .any(|x| x["target"]["pid"] == pid && x["signal"] == sig)
    })
}

fn me() -> u32 {
    std::process::id()
}

/// S1: PID 1 with a SIGTERM handler that exits 0 after ~200 ms; stop -t 5.
#[test]
fn s1_pid1_with_handler_is_graceful() {
    let agent = Agent::start(&["run", "--json"]);
    let (_ns, pid, _d) = ns_victim(&["--handle", "TERM:0:200"]);
    let out = stop(pid, libc::SIGTERM, Duration::from_secs(5));
    assert!(out.exited_in_grace && !out.killed, "{out:?}");
    let rec = record(&agent, pid);
    assert_outcome(&rec, "graceful", Some(0), None, false, false);
    assert_duration(&rec, 0.15, 1.0);
    assert_eq!(rec["ns_init"], true);
    assert_eq!(rec["ns_pid"], 1);
    assert_eq!(rec["stop_signal"], "SIGTERM");
    let term = signals_named(&rec, "SIGTERM");
    assert_eq!(term.len(), 1, "{rec}");
    assert_eq!(term[0]["result"], "delivered");
    assert_eq!(term[0]["disposition"], "handler");
    assert_eq!(term[0]["sender"]["pid"], me());
    assert!(
        signals_named(&rec, "SIGKILL").is_empty(),
        "no SIGKILL: {rec}"
    );
    assert_eq!(rec["killed_at"], Value::Null);
}

/// S2: PID 1 is `sleep 1000`; stop -t 2.
#[test]
fn s2_pid1_without_handler_is_ignored_by_pid1() {
    let agent = Agent::start(&["run", "--json"]);
    let (_ns, pid) = in_pid_namespace(&["sleep", "1000"]);
    wait_comm(pid, "sleep");
    let out = stop(pid, libc::SIGTERM, GRACE);
    assert!(out.killed && out.dead, "{out:?}");
    let rec = record(&agent, pid);
    assert_outcome(&rec, "ignored_by_pid1", None, Some("SIGKILL"), true, true);
    assert_duration(&rec, 2.0, 2.5);
    assert_eq!(rec["ns_init"], true);
    let term = signals_named(&rec, "SIGTERM");
    assert_eq!(term.len(), 1, "{rec}");
    assert_eq!(term[0]["result"], "ignored");
    assert_eq!(term[0]["disposition"], "default");
    assert_eq!(term[0]["delivered_at"], Value::Null);
    let kill = signals_named(&rec, "SIGKILL");
    assert_eq!(kill.len(), 1, "{rec}");
    assert_eq!(kill[0]["sender"]["pid"], me());
    assert_eq!(rec["grace_source"], "observed");
    let grace = f(&rec["grace_s"]);
    assert!((2.0..2.5).contains(&grace), "grace_s {grace}: {rec}");
    assert!(rec["killed_at"].is_string());
    assert!(f(&rec["overrun_s"]) < 0.5, "{rec}");
}

/// S3: PID 1 is `/bin/sh -c 'sleep 1000; true'` (dash keeps the shell as PID 1); stop -t 2.
#[test]
fn s3_shell_as_pid1_does_not_forward() {
    let agent = Agent::start(&["run", "--json"]);
    let (_ns, sh) = in_pid_namespace(&["/bin/sh", "-c", "sleep 1000; true"]);
    wait_comm(sh, "sh");
    let sleep = child_named(sh, "sleep");
    let out = stop(sh, libc::SIGTERM, GRACE);
    assert!(out.killed && out.dead, "{out:?}");
    assert!(
        wait_until(T, || !pid_alive(sleep)),
        "the sleep child outlived its namespace's init"
    );
    let rec = record(&agent, sh);
    assert_outcome(
        &rec,
        "shell_not_forwarding",
        None,
        Some("SIGKILL"),
        true,
        true,
    );
    assert_duration(&rec, 2.0, 2.5);
    assert_eq!(rec["ns_init"], true);
    assert_eq!(signals_named(&rec, "SIGTERM")[0]["result"], "ignored");
    assert_eq!(rec["forwarded"].as_array().map(Vec::len), Some(0), "{rec}");
    let unsignalled = rec["children_not_signalled"]
        .as_array()
        .expect("children_not_signalled");
    assert!(
        unsignalled.iter().any(|c| c["pid"] == sleep),
        "the sleep child is not listed as unsignalled: {rec}"
    );

    let child = record(&agent, sleep);
    assert_outcome(&child, "orphan_killed", None, Some("SIGKILL"), false, false);
    assert!(
        signals_named(&child, "SIGTERM").is_empty(),
        "the sleep child got no SIGTERM: {child}"
    );
    let kill = signals_named(&child, "SIGKILL");
    assert_eq!(kill.len(), 1, "{child}");
    assert_eq!(kill[0]["si_code"], 128, "kernel SIGKILL: {child}");
    assert_eq!(
        kill[0]["sender"]["pid"], sh,
        "sent by the dying init: {child}"
    );
    assert_eq!(child["ppid"], sh);
}

/// S4: as S3 with `exec sleep 1000`: the shell is gone, sleep is PID 1 with no handler.
#[test]
fn s4_exec_sleep_as_pid1_is_ignored_by_pid1() {
    let agent = Agent::start(&["run", "--json"]);
    let (_ns, pid) = in_pid_namespace(&["/bin/sh", "-c", "exec sleep 1000"]);
    wait_comm(pid, "sleep");
    let out = stop(pid, libc::SIGTERM, GRACE);
    assert!(out.killed && out.dead, "{out:?}");
    let rec = record(&agent, pid);
    assert_outcome(&rec, "ignored_by_pid1", None, Some("SIGKILL"), true, true);
    assert_duration(&rec, 2.0, 2.5);
    assert_eq!(rec["comm"], "sleep");
    assert_eq!(signals_named(&rec, "SIGTERM")[0]["result"], "ignored");
}

/// S5: tini as PID 1 with `sleep 1000`; stop -t 5: tini forwards, sleep dies by the default
/// action within milliseconds.
#[test]
fn s5_tini_forwards_to_sleep() {
    let agent = Agent::start(&["run", "--json"]);
    let (_ns, tini) = in_pid_namespace(&["tini", "-s", "--", "sleep", "1000"]);
    wait_comm(tini, "tini");
    let sleep = child_named(tini, "sleep");
    let out = stop(tini, libc::SIGTERM, Duration::from_secs(5));
    assert!(out.exited_in_grace && !out.killed, "{out:?}");
    let child = record(&agent, sleep);
    assert_outcome(
        &child,
        "default_action",
        None,
        Some("SIGTERM"),
        false,
        false,
    );
    assert_duration(&child, 0.0, 0.2);
    let term = signals_named(&child, "SIGTERM");
    assert_eq!(term.len(), 1, "{child}");
    assert_eq!(term[0]["sender"]["pid"], tini, "forwarded by tini: {child}");
    assert_eq!(term[0]["result"], "delivered");
    assert_eq!(term[0]["disposition"], "default");

    let rec = record(&agent, tini);
    assert!(
        forwarded_to(&rec, sleep, "SIGTERM"),
        "tini → sleep forwarding missing: {rec}"
    );
    // tini exits with 128 + the child's terminating signal.
    assert_outcome(&rec, "graceful", Some(143), None, false, false);
    assert_duration(&rec, 0.0, 0.5);
    assert_eq!(signals_named(&rec, "SIGTERM")[0]["sender"]["pid"], me());
    assert_eq!(
        rec["children_not_signalled"].as_array().map(Vec::len),
        Some(0),
        "{rec}"
    );
}

/// S6: a shell script (PID 1) trapping TERM and forwarding it to two children with handlers,
/// then waiting for them.
#[test]
fn s6_shell_trap_forwards_to_both_children() {
    let agent = Agent::start(&["run", "--json"]);
    let dir = TempDir::new("s6");
    let (r1, r2) = (dir.path().join("r1"), dir.path().join("r2"));
    let v = victim_bin();
    let script = format!(
        "{v} --handle TERM:0:100 --ready {r1} & p1=$!; {v} --handle TERM:0:150 --ready {r2} & p2=$!; \
         trap 'kill -TERM $p1 $p2; wait' TERM; wait",
        v = v.display(),
        r1 = r1.display(),
        r2 = r2.display()
    );
    let (_ns, sh) = in_pid_namespace(&["/bin/sh", "-c", &script]);
    assert!(
        wait_until(T, || r1.exists() && r2.exists()),
        "children not ready"
    );
    let kids: Vec<u32> = children_of(sh)
        .into_iter()
        .filter(|&c| comm(c) == "victim")
        .collect();
    assert_eq!(kids.len(), 2, "two victim children of the shell");
    let out = stop(sh, libc::SIGTERM, GRACE);
    assert!(out.exited_in_grace && !out.killed, "{out:?}");

    let rec = record(&agent, sh);
    assert_eq!(rec["diagnosis"], "graceful", "{rec}");
    assert_eq!(rec["exit"]["signal"], Value::Null, "{rec}");
    assert!(rec["exit"]["code"].is_i64(), "{rec}");
    assert!(
        !rec["killed"].as_bool().unwrap() && !rec["overrun"].as_bool().unwrap(),
        "{rec}"
    );
    assert_duration(&rec, 0.1, 1.0);
    assert_eq!(signals_named(&rec, "SIGTERM")[0]["disposition"], "handler");
    for &k in &kids {
        assert!(
            forwarded_to(&rec, k, "SIGTERM"),
            "forwarding to {k} missing: {rec}"
        );
    }
    assert_eq!(
        rec["children_not_signalled"].as_array().map(Vec::len),
        Some(0),
        "{rec}"
    );
    for &k in &kids {
        let c = record(&agent, k);
        assert_outcome(&c, "graceful", Some(0), None, false, false);
        assert_duration(&c, 0.05, 1.0);
        let term = signals_named(&c, "SIGTERM");
        assert_eq!(term.len(), 1, "{c}");
        assert_eq!(term[0]["sender"]["pid"], sh, "{c}");
        assert_eq!(term[0]["disposition"], "handler");
    }
}

/// S7: a handler that sleeps 5 s before exiting, grace 2 s.
#[test]
fn s7_slow_handler_overruns_the_grace() {
    let agent = Agent::start(&["run", "--json"]);
    let v = Proc::victim(&["--handle", "TERM:0:5000"]);
    let out = stop(v.pid, libc::SIGTERM, GRACE);
    assert!(out.killed && out.dead, "{out:?}");
    let rec = record(&agent, v.pid);
    assert_outcome(&rec, "slow_handler", None, Some("SIGKILL"), true, true);
    assert_duration(&rec, 2.0, 2.5);
    assert_eq!(rec["ns_init"], false);
    let term = signals_named(&rec, "SIGTERM");
    assert_eq!(term[0]["disposition"], "handler");
    assert!(term[0]["delivered_at"].is_string(), "{rec}");
    assert_eq!(rec["grace_source"], "observed");
    let grace = f(&rec["grace_s"]);
    assert!((2.0..2.5).contains(&grace), "grace_s {grace}: {rec}");
    let overrun_s = f(&rec["overrun_s"]);
    assert!(
        (0.0..0.5).contains(&overrun_s),
        "overrun_s {overrun_s}: {rec}"
    );
    assert!(rec["killed_at"].is_string());
}

/// S8: a program handling only SIGINT, not PID 1 (under tini), gets SIGTERM.
#[test]
fn s8_handles_sigint_but_gets_sigterm() {
    let agent = Agent::start(&["run", "--json"]);
    let (_ns, tini, _d) = ns_cmd(&["tini", "-s", "--"], &["--handle", "INT:0:0"]);
    let v = child_named(tini, "victim");
    let out = stop(tini, libc::SIGTERM, GRACE);
    assert!(out.exited_in_grace, "{out:?}");
    let rec = record(&agent, v);
    assert_outcome(&rec, "wrong_signal", None, Some("SIGTERM"), false, false);
    assert_duration(&rec, 0.0, 0.2);
    assert_eq!(rec["ns_init"], false);
    assert_eq!(rec["ns_pid"], 2);
    assert_eq!(rec["dispositions"]["SIGINT"], "handler", "{rec}");
    assert_eq!(rec["dispositions"]["SIGTERM"], "default", "{rec}");
    assert_eq!(signals_named(&rec, "SIGTERM")[0]["sender"]["pid"], tini);
    let init = record(&agent, tini);
    assert!(forwarded_to(&init, v, "SIGTERM"), "{init}");
}

/// S9: a program with SIGTERM set to SIG_IGN (a plain process): SIGTERM, then SIGKILL after 1 s.
#[test]
fn s9_ignored_sigterm() {
    let agent = Agent::start(&["run", "--json"]);
    let v = Proc::victim(&["--ignore", "TERM"]);
    let out = stop(v.pid, libc::SIGTERM, Duration::from_secs(1));
    assert!(out.killed && out.dead, "{out:?}");
    let rec = record(&agent, v.pid);
    assert_outcome(&rec, "signal_ignored", None, Some("SIGKILL"), true, true);
    assert_duration(&rec, 1.0, 1.5);
    let term = signals_named(&rec, "SIGTERM");
    assert_eq!(term[0]["result"], "ignored");
    assert_eq!(term[0]["disposition"], "ignore");
}

/// S9 under an init: the program (PID 2 under tini) ignores SIGTERM; the runtime signals it
/// directly, SIGTERM then SIGKILL after 1 s.
#[test]
fn s9_ignored_sigterm_under_tini() {
    let agent = Agent::start(&["run", "--json"]);
    let (mut ns, tini, _d) = ns_cmd(&["tini", "-s", "--"], &["--ignore", "TERM"]);
    let v = child_named(tini, "victim");
    let out = stop(v, libc::SIGTERM, Duration::from_secs(1));
    assert!(out.killed && out.dead, "{out:?}");
    let rec = record(&agent, v);
    assert_outcome(&rec, "signal_ignored", None, Some("SIGKILL"), true, true);
    assert_duration(&rec, 1.0, 1.5);
    assert_eq!(rec["ns_init"], false);
    assert_eq!(signals_named(&rec, "SIGTERM")[0]["result"], "ignored");
    // tini exits on its own once its child is gone.
    assert!(
        ns.wait_exit(T).is_some(),
        "tini did not exit after its child"
    );
}

/// S12: PID 1 with a handler that exits at once, leaving a child running.
#[test]
fn s12_init_exits_and_its_child_is_orphan_killed() {
    let agent = Agent::start(&["run", "--json"]);
    let (_ns, init, _d) = ns_victim(&["--handle", "TERM:0:0", "--children", "1"]);
    let child = child_named(init, "victim");
    let out = stop(init, libc::SIGTERM, GRACE);
    assert!(out.exited_in_grace && !out.killed, "{out:?}");
    assert!(
        wait_until(T, || !pid_alive(child)),
        "the child outlived its namespace's init"
    );
    let rec = record(&agent, init);
    assert_outcome(&rec, "graceful", Some(0), None, false, false);
    assert_duration(&rec, 0.0, 0.5);
    let unsignalled = rec["children_not_signalled"]
        .as_array()
        .expect("children_not_signalled");
    assert!(unsignalled.iter().any(|c| c["pid"] == child), "{rec}");
    let c = record(&agent, child);
    assert_outcome(&c, "orphan_killed", None, Some("SIGKILL"), false, false);
    let kill = signals_named(&c, "SIGKILL");
    assert_eq!(kill.len(), 1, "{c}");
    assert_eq!(kill[0]["sender"]["pid"], init);
    assert_eq!(kill[0]["si_code"], 128);
    assert!(signals_named(&c, "SIGTERM").is_empty(), "{c}");
}

/// S13: a plain host process (no container) with a handler, `kill -TERM`.
#[test]
fn s13_host_process_is_graceful_without_container() {
    let agent = Agent::start(&["run", "--json"]);
    let mut v = Proc::victim(&["--handle", "TERM:0:50"]);
    let st = Command::new("kill")
        .args(["-TERM", &v.pid.to_string()])
        .status()
        .expect("kill");
    assert!(st.success());
    assert_eq!(v.wait_exit(T).and_then(|s| s.code()), Some(0));
    let rec = record(&agent, v.pid);
    assert_outcome(&rec, "graceful", Some(0), None, false, false);
    assert_duration(&rec, 0.03, 1.0);
    assert_eq!(rec["container"], Value::Null, "{rec}");
    assert_eq!(rec["ns_init"], false);
    assert_eq!(rec["ppid"], me());
    assert_eq!(signals_named(&rec, "SIGTERM")[0]["sender"]["comm"], "kill");
}

/// S14: SIGTERM twice quickly to a process whose handler is slow: the second is
/// already_pending, and there is one shutdown record.
#[test]
fn s14_second_sigterm_is_already_pending() {
    let agent = Agent::start(&["run", "--json"]);
    // SIGTERM stays blocked for 500 ms so that the second kill surely finds the first pending.
    let mut v = Proc::victim(&[
        "--handle",
        "TERM:0:300",
        "--block",
        "TERM",
        "--unblock-ms",
        "500",
    ]);
    kill(v.pid, libc::SIGTERM);
    kill(v.pid, libc::SIGTERM);
    assert_eq!(v.wait_exit(T).and_then(|s| s.code()), Some(0));
    let rec = record(&agent, v.pid);
    assert_outcome(&rec, "graceful", Some(0), None, false, false);
    assert_duration(&rec, 0.25, 1.5);
    let term = signals_named(&rec, "SIGTERM");
    assert_eq!(term.len(), 2, "{rec}");
    assert_eq!(term[0]["result"], "delivered");
    assert_eq!(term[1]["result"], "already_pending");
    // Let any late record show up before counting.
    std::thread::sleep(Duration::from_millis(1200));
    let out = agent.stop();
    assert_eq!(
        records_for(&out.lines, v.pid).len(),
        1,
        "one shutdown record for {}",
        v.pid
    );
}

/// `--stop-signal SIGWINCH` alone (no `--signals`): an init of a PID namespace that handles
/// WINCH (httpd's graceful stop), stopped with WINCH by a supervisor that is no container
/// runtime, gives a `graceful` record with WINCH as its stop signal.
#[test]
fn a_stop_signal_outside_the_default_signals_is_traced_without_signals() {
    let agent = Agent::start(&["run", "--json", "--stop-signal", "SIGWINCH"]);
    let (_ns, pid, _d) = ns_victim(&["--handle", "WINCH:0:100"]);
    let out = stop(pid, libc::SIGWINCH, Duration::from_secs(5));
    assert!(out.exited_in_grace && !out.killed, "{out:?}");
    let rec = record(&agent, pid);
    assert_outcome(&rec, "graceful", Some(0), None, false, false);
    assert_eq!(rec["stop_signal"], "SIGWINCH", "{rec}");
    let winch = signals_named(&rec, "SIGWINCH");
    assert_eq!(winch.len(), 1, "{rec}");
    assert_eq!(winch[0]["disposition"], "handler", "{rec}");
    assert_eq!(winch[0]["sender"]["pid"], me(), "{rec}");
}

/// An agent started while a shell forks and SIGTERMs children a few hundred times a second:
/// the hooks attach one after the other, and a child whose signal was seen but whose exit fell
/// in between must give no record (it would say "still running", or `signal_blocked` after the
/// episode timeout). Ten starts; no record of the loop's children is `signal_blocked` or
/// `slow_handler`, and each is complete, except: its signal was sent before the hooks were all
/// attached (a child that had not run yet takes it after: its record says the generation was
/// not seen, which is true), or in the agent's last moments (its exit came after the trace).
#[test]
fn an_agent_started_during_a_kill_loop_gives_no_false_record() {
    let looper = Proc::spawn(Command::new("sh").args([
        "-c",
        "while :; do sleep 5 & kill -TERM $!; wait $! 2>/dev/null; done",
    ]));
    // Seconds of the UTC day, of now and of a record's RFC 3339 time.
    let day_s = |t: std::time::SystemTime| {
        let d = t.duration_since(std::time::UNIX_EPOCH).unwrap();
        (d.as_secs() % 86_400) as f64 + f64::from(d.subsec_micros()) / 1e6
    };
    let rec_s = |r: &Value| {
        let t = r["time"].as_str().unwrap_or_default();
        let hms: Vec<f64> = t[11..t.len() - 1]
            .split(':')
            .map(|x| x.parse().unwrap())
            .collect();
        hms[0] * 3600.0 + hms[1] * 60.0 + hms[2]
    };
    let mut seen = 0;
    for round in 0..10 {
        let agent = Agent::start(&["run", "--json"]);
        std::thread::sleep(Duration::from_millis(400));
        let stopping = day_s(std::time::SystemTime::now());
        let out = agent.stop();
        let ours: Vec<&Value> = out
            .lines
            .iter()
            .filter(|l| l["type"] == "process_stop" && l["ppid"] == looper.pid)
            .collect();
        seen += ours.len();
        for r in ours {
            assert!(
                r["diagnosis"] != "signal_blocked" && r["diagnosis"] != "slow_handler",
                "round {round}: {r}"
            );
            let at_the_end = r["incomplete_reason"] == "still running when the trace ended" && {
                // From 0.3 s before the agent was asked to stop to its end.
                let d = (rec_s(r) - stopping).rem_euclid(86_400.0);
                !(60.0..86_399.7).contains(&d)
            };
            assert!(
                r["complete"] == true
                    || at_the_end
                    || r["incomplete_reason"]
                        == "the stop signal's generation was not seen (sent before the trace started, or lost)",
                "round {round}, stopping at {stopping:.6} (s of the day), record at {:.6}: {r}\n{}",
                rec_s(r),
                out.stderr
            );
        }
    }
    assert!(seen >= 10, "only {seen} records of the loop's children");
}
