//! Waiting for and checking the records of container stops: the agent the container tests
//! run, the docker stop, and the assertions every docker or runc record shares.
use std::{
    fs,
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::{
    children_of,
    cri::{Kubelet, Pod},
    runtime::{Docker, IMAGE},
    wait_until, Agent,
};

const T: Duration = Duration::from_secs(15);

/// `sigtrace run --json ARGS` with a large ring buffer: the machine may be busy with other
/// signal-heavy work (benchmarks), and a lost event could cost a record.
pub fn agent(args: &[&str]) -> Agent {
    let mut all = vec!["run", "--json", "--ring-kib", "65536"];
    all.extend_from_slice(args);
    Agent::start(&all)
}

/// The agent, pointed at this docker's data root and its containerd's state.
pub fn docker_agent(d: &Docker) -> Agent {
    docker_agent_with(d, &[])
}

pub fn docker_agent_with(d: &Docker, extra: &[&str]) -> Agent {
    let root = d.data_root.to_string_lossy().to_string();
    let state = d.containerd_state().to_string_lossy().to_string();
    let mut args = vec!["--docker-data-root", &root, "--containerd-state", &state];
    args.extend_from_slice(extra);
    agent(&args)
}

/// The process record of host PID `pid` inside a container record.
pub fn process(rec: &Value, pid: u32) -> &Value {
    rec["processes"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["pid"] == pid))
        .unwrap_or_else(|| panic!("no process record for {pid} in {rec:#}"))
}

pub fn processes(rec: &Value) -> &Vec<Value> {
    rec["processes"].as_array().expect("processes")
}

pub fn f64_of(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// Every signal of a process record with this name ("SIGTERM", "SIGKILL").
pub fn signals<'a>(p: &'a Value, sig: &str) -> Vec<&'a Value> {
    p["signals"]
        .as_array()
        .map(|s| s.iter().filter(|e| e["signal"] == sig).collect())
        .unwrap_or_default()
}

/// Bit mask of `sig` in a /proc/PID/status signal mask line (SigCgt, SigIgn...).
pub fn has_mask(pid: u32, field: &str, sig: i32) -> bool {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| {
            l.strip_prefix(field)
                .and_then(|v| u64::from_str_radix(v.trim_start_matches(':').trim(), 16).ok())
        })
        .is_some_and(|m| m & (1u64 << (sig - 1)) != 0)
}

/// Waits until `pid` has a handler for SIGTERM (its set-up is done).
pub fn wait_handles_term(pid: u32) {
    assert!(
        wait_until(T, || has_mask(pid, "SigCgt", libc::SIGTERM)),
        "{pid} never installed a SIGTERM handler"
    );
}

/// Waits until `pid` has exactly `n` children; returns them.
pub fn wait_children(pid: u32, n: usize) -> Vec<u32> {
    let mut kids = Vec::new();
    assert!(
        wait_until(T, || {
            kids = children_of(pid);
            kids.len() == n
        }),
        "{pid} has children {kids:?}, expected {n}"
    );
    kids
}

/// `docker stop -t GRACE ID`; returns how long the client took.
pub fn docker_stop(d: &Docker, id: &str, grace: u32) -> Duration {
    let t = Instant::now();
    d.output(&["stop", "-t", &grace.to_string(), id]);
    t.elapsed()
}

/// What every docker container record must say about the container and the stop's sender.
pub fn assert_docker_container(d: &Docker, rec: &Value, id: &str, name: &str) {
    let c = &rec["container"];
    assert_eq!(c["id"], id, "{rec:#}");
    assert_eq!(c["runtime"], "docker", "{rec:#}");
    assert_eq!(c["name"], name, "{rec:#}");
    assert_eq!(c["image"], IMAGE, "{rec:#}");
    assert_eq!(
        c["cgroup_path"],
        format!("/{}/{id}", d.cgroup_parent),
        "{rec:#}"
    );
    assert!(rec["cgroup_id"].as_u64().is_some_and(|c| c > 1), "{rec:#}");
    assert_eq!(c["cgroup_id"], rec["cgroup_id"], "{rec:#}");
    assert_complete(rec);
}

/// The record is complete — or honestly says that events were lost, which happens only when
/// something else on the machine floods the ring buffer (a signal benchmark running at the
/// same time); every other assertion must then still hold.
pub fn assert_complete(rec: &Value) {
    if rec["complete"] == true {
        assert_eq!(rec["incomplete_reason"], Value::Null, "{rec:#}");
        return;
    }
    let reason = rec["incomplete_reason"].as_str().unwrap_or_default();
    assert!(reason.contains("events lost"), "incomplete record: {rec:#}");
    eprintln!("note: the machine is busy, the agent lost events: {reason}");
}

/// The stop came from the runtime (a `runc` process) with `sig`.
pub fn assert_runtime_sender(rec: &Value, sig: &str) {
    assert_eq!(rec["stop_signal"], sig, "{rec:#}");
    assert_eq!(rec["sender_class"], "runtime", "{rec:#}");
    assert_eq!(rec["sender"]["comm"], "runc", "{rec:#}");
}

/// A stop that needed the runtime's SIGKILL after a grace of `grace` s (`docker stop -t`).
pub fn assert_overrun_after(rec: &Value, grace: f64) {
    assert_eq!(rec["killed"], true, "{rec:#}");
    assert_eq!(rec["overrun"], true, "{rec:#}");
    let dur = f64_of(&rec["duration_s"]);
    assert!(
        (grace..=grace + 0.3).contains(&dur),
        "duration {dur} s for a grace of {grace} s: {rec:#}"
    );
    let g = f64_of(&rec["grace_s"]);
    assert!(
        (grace..=grace + 0.3).contains(&g),
        "observed grace {g} s for -t {grace}: {rec:#}"
    );
    assert_eq!(rec["exit"]["signal"], "SIGKILL", "{rec:#}");
    assert_eq!(rec["exit"]["code"], Value::Null, "{rec:#}");
}

/// The runtime's SIGKILL to the init: sent by runc, after `grace` s.
pub fn assert_runtime_sigkill(init: &Value) {
    let kills = signals(init, "SIGKILL");
    assert_eq!(kills.len(), 1, "one SIGKILL to the init: {init:#}");
    assert_eq!(kills[0]["sender_class"], "runtime", "{init:#}");
    assert_eq!(kills[0]["sender"]["comm"], "runc", "{init:#}");
    assert_eq!(kills[0]["result"], "delivered", "{init:#}");
}

pub fn hex_id(tag: u64) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    format!(
        "{:016x}{:016x}{:016x}{:016x}",
        0x5157_7261_6365u64,
        std::process::id(),
        tag,
        nanos
    )
}

/// The agent, pointed at this kubelet's containerd.
pub fn k8s_agent(k: &Kubelet) -> Agent {
    let state = k.state_dir().display().to_string();
    agent(&["--containerd-state", &state])
}

/// The agent, reading this containerd's bundles and asking its CRI socket.
pub fn k8s_cri_agent(k: &Kubelet, extra: &[&str]) -> Agent {
    let state = k.state_dir().display().to_string();
    let socket = k.socket().display().to_string();
    let mut args = vec!["--containerd-state", &state, "--cri-socket", &socket];
    args.extend_from_slice(extra);
    agent(&args)
}

/// Waits for the `pod_stop` record of `pod`; on timeout, fails with every record about it.
pub fn pod_stop(agent: &Agent, pod: &Pod) -> Value {
    let uid = pod.spec.uid.as_str();
    agent
        .wait_for(Duration::from_secs(20), |l| {
            l["type"] == "pod_stop" && l["pod_uid"] == uid
        })
        .unwrap_or_else(|| {
            let related: Vec<String> = agent
                .lines()
                .iter()
                .filter(|l| {
                    l["container"]["pod_uid"] == uid
                        || l["pod_uid"] == uid
                        || l["container"]["cgroup_path"]
                            .as_str()
                            .is_some_and(|c| c.contains("kubepods"))
                })
                .map(|l| l.to_string())
                .collect();
            panic!(
                "no pod_stop for {}; its records:\n{}\nagent stderr: {}",
                pod.spec.name,
                related.join("\n"),
                agent.stderr()
            )
        })
}

/// The record of container `name` inside a pod record.
pub fn member<'a>(rec: &'a Value, name: &str) -> &'a Value {
    rec["containers"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["container"]["name"] == name))
        .unwrap_or_else(|| panic!("no container {name} in {rec:#}"))
}

/// The terminal timeline of a pod's stop, replayed from the journal in `dir`
/// (`--containers-only`, no colour).
pub fn replayed_timeline(dir: &str, pod: &str) -> String {
    let out = std::process::Command::new(crate::sigtrace_bin())
        .args(["replay", dir, "--containers-only", "--pod", pod])
        .env("NO_COLOR", "1")
        .output()
        .expect("sigtrace replay");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    println!("{text}");
    text
}

/// The line of `text` that contains `what` (a `POD STOP`, a `CONTAINER STOP`), or a failure
/// showing the text.
pub fn line_with<'a>(text: &'a str, what: &str) -> &'a str {
    text.lines()
        .find(|l| l.contains(what))
        .unwrap_or_else(|| panic!("no {what} line:\n{text}"))
}
