//! End-to-end: the raw event stream (`sigtrace run --raw`) against real processes, PID
//! namespaces, a hand-made cgroup, and an independent tracer (killsnoop).
use std::{process::Command, time::Duration};

use serde_json::Value;
use tests::*;

const T: Duration = Duration::from_secs(10);

fn find<'a>(evs: &[&'a Value], event: &str, f: impl Fn(&Value) -> bool) -> Option<&'a Value> {
    evs.iter().copied().find(|e| e["event"] == event && f(e))
}

fn exit_of(agent: &Agent, pid: u32) -> Value {
    agent
        .wait_for(T, |l| l["event"] == "exit" && l["task"]["pid"] == pid)
        .unwrap_or_else(|| panic!("no exit event for {pid}: {}", agent.stderr()))
}

#[test]
fn sigterm_to_a_process_with_a_handler() {
    let agent = Agent::start(&["run", "--raw"]);
    let mut v = Proc::victim(&["--handle", "TERM:3:0"]);
    kill(v.pid, libc::SIGTERM);
    assert_eq!(v.wait_exit(T).and_then(|s| s.code()), Some(3));
    exit_of(&agent, v.pid);
    let out = agent.stop();
    let evs = raw_events_for(&out.lines, v.pid);
    let gen = find(&evs, "signal_generate", |e| e["signal"] == "SIGTERM").expect("generate");
    assert_eq!(gen["result"], "delivered");
    assert_eq!(gen["disposition"], "handler");
    assert_eq!(gen["stop_dispositions"]["SIGTERM"], "handler");
    assert_eq!(gen["sender"]["pid"], std::process::id());
    assert_eq!(gen["target"]["ns_init"], false);
    let del = find(&evs, "signal_deliver", |e| e["signal"] == "SIGTERM").expect("deliver");
    assert_eq!(del["disposition"], "handler");
    let exit = find(&evs, "exit", |_| true).expect("exit");
    assert_eq!(exit["exit"]["code"], 3);
    assert_eq!(exit["exit"]["signal"], Value::Null);
    assert_eq!(exit["group_dead"], true);
    assert_eq!(
        out.status.and_then(|s| s.code()),
        Some(0),
        "graceful agent stop: {}",
        out.stderr
    );
}

#[test]
fn sigterm_without_a_handler_is_not_reported_as_sigkill() {
    let agent = Agent::start(&["run", "--raw"]);
    let mut v = Proc::victim(&[]);
    kill(v.pid, libc::SIGTERM);
    v.wait_exit(T).expect("victim exit");
    exit_of(&agent, v.pid);
    let out = agent.stop();
    let evs = raw_events_for(&out.lines, v.pid);
    let gen = find(&evs, "signal_generate", |e| e["signal"] == "SIGTERM").expect("generate");
    assert_eq!(gen["result"], "delivered");
    assert_eq!(gen["disposition"], "default");
    // No SIGKILL was generated for it; the deliver-side SIGKILL is the kernel's conversion.
    assert!(find(&evs, "signal_generate", |e| e["signal"] == "SIGKILL").is_none());
    let converted: Vec<&&Value> = evs
        .iter()
        .filter(|e| e["event"] == "signal_deliver" && e["signal"] == "SIGKILL")
        .collect();
    assert!(
        !converted.is_empty(),
        "the kernel delivers the fatal SIGTERM as SIGKILL: {evs:#?}"
    );
    for d in converted {
        assert_eq!(
            d["converted_from"], "SIGTERM",
            "deliver-side SIGKILL must name SIGTERM: {d}"
        );
    }
    let exit = find(&evs, "exit", |_| true).expect("exit");
    assert_eq!(exit["exit"]["signal"], "SIGTERM");
    assert_eq!(exit["exit"]["code"], Value::Null);
}

#[test]
fn sigterm_to_a_pid_namespace_init_without_a_handler_is_ignored() {
    let agent = Agent::start(&["run", "--raw"]);
    let victim = victim_bin();
    let (mut unshare, inner) = in_pid_namespace(&[victim.to_str().unwrap()]);
    // Let the init settle, then stop it the way a runtime does.
    std::thread::sleep(Duration::from_millis(200));
    kill(inner, libc::SIGTERM);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        pid_alive(inner),
        "PID 1 without a handler must survive SIGTERM"
    );
    kill(inner, libc::SIGKILL);
    unshare.wait_exit(T);
    exit_of(&agent, inner);
    let out = agent.stop();
    let evs = raw_events_for(&out.lines, inner);
    let gen = find(&evs, "signal_generate", |e| e["signal"] == "SIGTERM").expect("generate");
    assert_eq!(gen["result"], "ignored");
    assert_eq!(gen["target"]["ns_init"], true);
    assert_eq!(gen["target"]["ns_pid"], 1);
    assert_eq!(gen["disposition"], "default");
    assert!(find(&evs, "signal_deliver", |e| e["signal"] == "SIGTERM").is_none());
    let kill_gen =
        find(&evs, "signal_generate", |e| e["signal"] == "SIGKILL").expect("SIGKILL generate");
    assert_eq!(kill_gen["result"], "delivered");
    let exit = find(&evs, "exit", |_| true).expect("exit");
    assert_eq!(exit["exit"]["signal"], "SIGKILL");
}

#[test]
fn second_quick_sigterm_is_already_pending() {
    let agent = Agent::start(&["run", "--raw"]);
    // SIGTERM stays blocked for 1 s, so both kills find it pending; then a slow handler runs.
    let mut v = Proc::victim(&[
        "--handle",
        "TERM:0:300",
        "--block",
        "TERM",
        "--unblock-ms",
        "1000",
    ]);
    kill(v.pid, libc::SIGTERM);
    kill(v.pid, libc::SIGTERM);
    assert_eq!(v.wait_exit(T).and_then(|s| s.code()), Some(0));
    exit_of(&agent, v.pid);
    let out = agent.stop();
    let evs = raw_events_for(&out.lines, v.pid);
    let gens: Vec<&&Value> = evs
        .iter()
        .filter(|e| e["event"] == "signal_generate" && e["signal"] == "SIGTERM")
        .collect();
    assert_eq!(gens.len(), 2, "two generate events");
    assert_eq!(gens[0]["result"], "delivered");
    assert_eq!(gens[0]["blocked"], true);
    assert_eq!(gens[1]["result"], "already_pending");
    let delivers = evs
        .iter()
        .filter(|e| e["event"] == "signal_deliver" && e["signal"] == "SIGTERM")
        .count();
    assert_eq!(delivers, 1, "collapsed into one delivery");
}

/// Exit codes and terminating signals of signalled processes. The exits of processes that
/// nothing signalled (and whose parent nothing signalled) are only counted in the kernel.
#[test]
fn exit_codes_and_terminating_signals() {
    let agent = Agent::start(&["run", "--raw"]);
    let mut zero = Proc::victim(&["--exit-after-ms", "50", "--code", "0"]);
    let mut three = Proc::victim(&["--exit-after-ms", "50", "--code", "3"]);
    let mut four = Proc::victim(&["--handle", "TERM:4:0"]);
    let mut nine = Proc::victim(&[]);
    let mut fifteen = Proc::victim(&[]);
    kill(four.pid, libc::SIGTERM);
    kill(nine.pid, libc::SIGKILL);
    kill(fifteen.pid, libc::SIGTERM);
    for p in [&mut zero, &mut three, &mut four, &mut nine, &mut fifteen] {
        p.wait_exit(T).expect("exit");
    }
    // Every exit above happened before this one's signal.
    let mut last = Proc::victim(&[]);
    kill(last.pid, libc::SIGKILL);
    last.wait_exit(T).expect("exit");
    for p in [four.pid, nine.pid, fifteen.pid, last.pid] {
        exit_of(&agent, p);
    }
    let out = agent.stop();
    let exit = |pid| {
        find(&raw_events_for(&out.lines, pid), "exit", |_| true).expect("exit")["exit"].clone()
    };
    assert_eq!(exit(four.pid)["code"], 4);
    assert_eq!(exit(nine.pid)["signal"], "SIGKILL");
    assert_eq!(exit(fifteen.pid)["signal"], "SIGTERM");
    assert_eq!(exit(fifteen.pid)["core_dumped"], false);
    for pid in [zero.pid, three.pid] {
        let evs = raw_events_for(&out.lines, pid);
        assert!(
            find(&evs, "exit", |_| true).is_none(),
            "the exit of {pid}, which nothing signalled, was emitted: {evs:?}"
        );
    }
}

/// A signalled process's direct children keep their exits on record, even when nothing
/// signalled them: a shell's workload exiting during its stop is part of the story.
#[test]
fn the_exit_of_a_signalled_process_child_is_emitted() {
    let agent = Agent::start(&["run", "--raw"]);
    let mut sh =
        Proc::spawn(Command::new("sh").args(["-c", "trap 'exit 5' TERM; /bin/sleep 0.5; exit 0"]));
    tests::records::wait_handles_term(sh.pid);
    let sleep = tests::records::wait_children(sh.pid, 1)[0];
    kill(sh.pid, libc::SIGTERM);
    assert_eq!(sh.wait_exit(T).and_then(|s| s.code()), Some(5));
    exit_of(&agent, sh.pid);
    let out = agent.stop();
    let exit = find(&raw_events_for(&out.lines, sleep), "exit", |_| true)
        .unwrap_or_else(|| panic!("no exit event for the shell's child {sleep}"));
    assert_eq!(exit["task"]["ppid"], sh.pid);
    assert_eq!(exit["exit"]["code"], 0);
}

#[test]
fn cgroup_id_is_the_cgroup_directory_inode() {
    let cg = Cgroup::create(&format!("sigtrace-test-{}/raw", std::process::id()));
    let agent = Agent::start(&["run", "--raw"]);
    let mut v = Proc::victim(&[]);
    cg.add(v.pid);
    kill(v.pid, libc::SIGTERM);
    v.wait_exit(T).expect("exit");
    exit_of(&agent, v.pid);
    let out = agent.stop();
    let evs = raw_events_for(&out.lines, v.pid);
    let gen = find(&evs, "signal_generate", |_| true).expect("generate");
    assert_eq!(gen["target"]["cgroup_id"].as_u64(), Some(cg.id()));
    assert_ne!(gen["sender"]["cgroup_id"].as_u64(), Some(cg.id()));
    let exit = find(&evs, "exit", |_| true).expect("exit");
    assert_eq!(exit["task"]["cgroup_id"].as_u64(), Some(cg.id()));
}

#[test]
fn raw_tracepoint_fallback_reports_the_same_fields() {
    let agent = Agent::start(&["run", "--raw", "--force-raw-tracepoints"]);
    let mut v = Proc::victim(&["--handle", "TERM:7:0"]);
    kill(v.pid, libc::SIGTERM);
    v.wait_exit(T).expect("exit");
    exit_of(&agent, v.pid);
    let out = agent.stop();
    let evs = raw_events_for(&out.lines, v.pid);
    let gen = find(&evs, "signal_generate", |e| e["signal"] == "SIGTERM").expect("generate");
    assert_eq!(
        (gen["result"].as_str(), gen["disposition"].as_str()),
        (Some("delivered"), Some("handler"))
    );
    assert_eq!(
        find(&evs, "exit", |_| true).expect("exit")["exit"]["code"],
        7
    );
}

/// An event without what legitimately differs between two agents seeing it (timestamps, CPU).
fn fields(e: &Value) -> Value {
    let mut e = e.clone();
    if let Some(o) = e.as_object_mut() {
        for k in ["mono_ns", "wall_ns", "cpu"] {
            o.remove(k);
        }
    }
    e
}

/// The BTF tracepoint programs (plain loads at offsets patched in at load time) and the raw
/// tracepoint programs (probe reads at the same offsets) see the same events, field by field:
/// a PID-namespace init (namespace PID, init flag), in a hand-made cgroup, with a handler, an
/// ignored signal and a blocked one.
#[test]
fn btf_and_raw_tracepoint_programs_read_the_same_fields() {
    let btf = Agent::start(&["run", "--raw"]);
    let raw = Agent::start(&["run", "--raw", "--force-raw-tracepoints"]);
    let cg = Cgroup::create("sigtrace-test-fields");
    let victim = victim_bin();
    let (mut ns, pid) = in_pid_namespace(&[
        victim.to_str().expect("path"),
        "--handle",
        "TERM:9:0",
        "--ignore",
        "INT",
        "--block",
        "QUIT",
        "--unblock-ms",
        "60000",
    ]);
    cg.add(pid);
    // Let the victim install its dispositions before it is signalled.
    std::thread::sleep(Duration::from_millis(300));
    kill(pid, libc::SIGINT);
    // QUIT stays blocked (and pending) until the TERM handler ends the process.
    kill(pid, libc::SIGQUIT);
    kill(pid, libc::SIGTERM);
    ns.wait_exit(T).expect("the namespace's init exits");
    let (b, r) = (exit_of(&btf, pid), exit_of(&raw, pid));
    assert_eq!(fields(&b), fields(&r), "exit");
    let (btf, raw) = (btf.stop(), raw.stop());
    let kinds = |lines: &[Value]| -> Vec<Value> {
        raw_events_for(lines, pid).into_iter().map(fields).collect()
    };
    let (b, r) = (kinds(&btf.lines), kinds(&raw.lines));
    let generated = |sig: &str| {
        b.iter()
            .find(|e| e["event"] == "signal_generate" && e["signal"] == sig)
            .unwrap_or_else(|| panic!("no {sig} generate: {b:?}"))
    };
    let gen = generated("SIGTERM");
    assert_eq!(gen["target"]["ns_pid"], 1);
    assert_eq!(gen["target"]["ns_init"], true);
    assert_eq!(gen["target"]["cgroup_id"].as_u64(), Some(cg.id()));
    assert_eq!(gen["stop_dispositions"]["SIGTERM"], "handler");
    assert_eq!(gen["stop_dispositions"]["SIGINT"], "ignore");
    assert_eq!(gen["sender"]["pid"], std::process::id());
    assert_eq!(gen["blocked"], false);
    let quit = generated("SIGQUIT");
    assert_eq!(quit["blocked"], true, "{quit}");
    assert_eq!(quit["result"], "delivered", "{quit}");
    let int = generated("SIGINT");
    assert_eq!(int["result"], "ignored", "{int}");
    assert_eq!(
        b, r,
        "the same events with the same fields from both program flavours"
    );
}

/// With BTF available, every hook is attached as a BTF tracepoint: the raw tracepoint
/// fallback (which would also work) must not hide a refused BTF program.
#[test]
fn doctor_attaches_every_hook_as_a_btf_tracepoint() {
    let out = Command::new(sigtrace_bin())
        .arg("doctor")
        .output()
        .expect("running sigtrace doctor");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "doctor failed:\n{text}");
    let programs = text
        .lines()
        .find(|l| l.contains("programs"))
        .unwrap_or_else(|| panic!("no programs check:\n{text}"));
    for hook in [
        "signal_generate",
        "signal_deliver",
        "sched_process_exit",
        "mark_victim",
        "sched_process_exec",
        "cgroup_mkdir",
    ] {
        assert!(
            programs.contains(&format!("{hook} (tp_btf)")),
            "{hook} not attached as tp_btf: {programs}"
        );
    }
}

/// (sender pid, target pid, signal number) for our victims, from killsnoop's output.
fn killsnoop_triples(text: &str, targets: &[u32]) -> Vec<(u32, u32, i64)> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            // TIME PID COMM SIG TPID RESULT (COMM has no spaces for our processes)
            let (pid, sig, tpid) = (
                f.get(1)?.parse().ok()?,
                f.get(3)?.parse().ok()?,
                f.get(4)?.parse().ok()?,
            );
            targets.contains(&tpid).then_some((pid, tpid, sig))
        })
        .collect()
}

#[test]
fn signal_sequence_matches_killsnoop() {
    let _tracefs = Tracefs::ensure();
    let dir = TempDir::new("killsnoop");
    let ks_out = std::fs::File::create(dir.path().join("ks.txt")).unwrap();
    let mut ks = Proc::spawn(
        Command::new("stdbuf")
            .args(["-oL", "killsnoop"])
            .stdout(ks_out)
            .stderr(std::process::Stdio::null()),
    );
    let agent = Agent::start(&["run", "--raw"]);
    // killsnoop prints its header once attached.
    assert!(
        wait_until(T, || std::fs::read_to_string(dir.path().join("ks.txt"))
            .is_ok_and(|s| s.contains("TPID"))),
        "killsnoop not ready"
    );
    let mut a = Proc::victim(&[]);
    // SIGUSR1 meets the default action (it ends b): a non-stop signal that a handler or
    // SIG_IGN would take is only counted, by design (it cannot affect a shutdown).
    let mut b = Proc::victim(&[]);
    let mut c = Proc::victim(&["--handle", "TERM:0:2000"]);
    kill(a.pid, libc::SIGTERM);
    kill(b.pid, libc::SIGUSR1);
    kill(c.pid, libc::SIGTERM);
    kill(c.pid, libc::SIGKILL);
    for p in [&mut a, &mut b, &mut c] {
        p.wait_exit(T).expect("exit");
    }
    for p in [a.pid, b.pid, c.pid] {
        exit_of(&agent, p);
    }
    let targets = [a.pid, b.pid, c.pid];
    let out = agent.stop();
    kill(ks.pid, libc::SIGINT);
    ks.wait_exit(T);
    let ks_text = std::fs::read_to_string(dir.path().join("ks.txt")).unwrap();
    let ours: Vec<(u32, u32, i64)> = out
        .lines
        .iter()
        .filter(|l| l["event"] == "signal_generate")
        .filter_map(|l| {
            let t = l["target"]["pid"].as_u64()? as u32;
            let sig = match l["signal"].as_str()? {
                "SIGTERM" => 15,
                "SIGUSR1" => 10,
                "SIGKILL" => 9,
                _ => return None,
            };
            (targets.contains(&t) && l["sender"]["pid"] == std::process::id()).then_some((
                l["sender"]["pid"].as_u64()? as u32,
                t,
                sig,
            ))
        })
        .collect();
    let theirs: Vec<(u32, u32, i64)> = killsnoop_triples(&ks_text, &targets)
        .into_iter()
        .filter(|t| t.0 == std::process::id())
        .collect();
    let expected = vec![
        (std::process::id(), a.pid, 15),
        (std::process::id(), b.pid, 10),
        (std::process::id(), c.pid, 15),
        (std::process::id(), c.pid, 9),
    ];
    assert_eq!(ours, expected, "sigtrace's sequence");
    assert_eq!(theirs, ours, "killsnoop and sigtrace disagree");
}
