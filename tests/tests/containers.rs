//! End-to-end: container stops through real runtimes — a private dockerd (scenarios S1–S7,
//! S9–S12 of the release scenarios), a private containerd driven with `ctr`, and runc with a
//! kubepods-style cgroup path and CRI annotations. Each test starts its own daemon(s) and the
//! agent (`sigtrace run --json`, pointed at the runtimes' state dirs), stops a container, and
//! asserts on the `container_stop` record of that container id. Everything (containers,
//! daemons, cgroups, directories) is torn down by guards, also when an assertion fails.
use std::{
    collections::BTreeMap,
    fs,
    process::{Command, Stdio},
    time::Duration,
};

use serde_json::Value;
use tests::{
    records::*,
    runc::RuncContainer,
    runtime::{busybox_rootfs, remove_cgroup_tree, Containerd, Docker},
    *,
};

/// How long a record may take to appear after the container is gone.
const T: Duration = Duration::from_secs(15);

// ---------------------------------------------------------------------------------------------
// docker

/// S1: PID 1 handles SIGTERM and exits 0 after 200 ms.
#[test]
fn docker_s1_graceful_handler() {
    let d = Docker::start();
    let agent = docker_agent(&d);
    let id = d.run("s1", &[], &["/bin/victim", "--handle", "TERM:0:200"]);
    let init = d.init_pid(&id);
    wait_handles_term(init);
    let took = docker_stop(&d, &id, 5);
    let rec = agent.container_stop(T, &id);
    assert_docker_container(&d, &rec, &id, "s1");
    assert_runtime_sender(&rec, "SIGTERM");
    assert_eq!(rec["init_pid"], init, "{rec:#}");
    assert_eq!(rec["diagnosis"], "graceful", "{rec:#}");
    assert_eq!(rec["hint"], Value::Null, "{rec:#}");
    assert_eq!(rec["exit"]["code"], 0, "{rec:#}");
    assert_eq!(rec["killed"], false, "{rec:#}");
    assert_eq!(rec["overrun"], false, "{rec:#}");
    let dur = f64_of(&rec["duration_s"]);
    assert!(
        (0.19..0.5).contains(&dur),
        "duration {dur} s, the handler takes 0.2 s (docker stop took {took:?}): {rec:#}"
    );
    assert_eq!(processes(&rec).len(), 1, "{rec:#}");
    let p = process(&rec, init);
    assert_eq!(p["ns_init"], true);
    assert_eq!(p["ns_pid"], 1);
    assert!(signals(p, "SIGKILL").is_empty(), "no SIGKILL: {p:#}");
    let term = signals(p, "SIGTERM");
    assert_eq!(term.len(), 1, "{p:#}");
    assert_eq!(term[0]["result"], "delivered");
    assert_eq!(term[0]["disposition"], "handler");
    assert_eq!(term[0]["sender_class"], "runtime");
}

/// S2: `sleep` as PID 1 has no handler: the kernel drops SIGTERM, docker SIGKILLs it after -t 2.
#[test]
fn docker_s2_pid1_without_handler() {
    let d = Docker::start();
    let agent = docker_agent(&d);
    let id = d.run("s2", &[], &["sleep", "1000"]);
    let init = d.init_pid(&id);
    docker_stop(&d, &id, 2);
    let rec = agent.container_stop(T, &id);
    assert_docker_container(&d, &rec, &id, "s2");
    assert_runtime_sender(&rec, "SIGTERM");
    assert_eq!(rec["init_pid"], init);
    assert_eq!(rec["diagnosis"], "ignored_by_pid1", "{rec:#}");
    assert!(
        rec["hint"].as_str().is_some_and(|h| h.contains("init")),
        "{rec:#}"
    );
    assert_overrun_after(&rec, 2.0);
    let p = process(&rec, init);
    assert_eq!(p["comm"], "sleep");
    assert_eq!(p["signals"][0]["signal"], "SIGTERM", "{p:#}");
    assert_eq!(p["signals"][0]["result"], "ignored", "{p:#}");
    assert_eq!(p["signals"][0]["disposition"], "default", "{p:#}");
    assert_eq!(p["signals"][0]["sender_class"], "runtime", "{p:#}");
    assert_runtime_sigkill(p);
}

/// S3: a shell as PID 1 that does not exec its workload (`; true` keeps busybox sh from
/// exec'ing the last command): SIGTERM to the shell is dropped, the sleep never gets one and
/// dies of SIGKILL when docker kills the shell after -t 2.
#[test]
fn docker_s3_shell_not_forwarding() {
    let d = Docker::start();
    let agent = docker_agent(&d);
    let id = d.run("s3", &[], &["/bin/sh", "-c", "sleep 1000; true"]);
    let init = d.init_pid(&id);
    let sleep = wait_children(init, 1)[0];
    assert_eq!(comm(init), "sh", "busybox sh must stay PID 1");
    assert_eq!(comm(sleep), "sleep");
    docker_stop(&d, &id, 2);
    let rec = agent.container_stop(T, &id);
    assert_docker_container(&d, &rec, &id, "s3");
    assert_runtime_sender(&rec, "SIGTERM");
    assert_eq!(rec["init_pid"], init);
    assert_eq!(rec["diagnosis"], "shell_not_forwarding", "{rec:#}");
    assert!(
        rec["hint"].as_str().is_some_and(|h| h.contains("exec")),
        "{rec:#}"
    );
    assert_overrun_after(&rec, 2.0);
    let sh = process(&rec, init);
    assert_eq!(sh["comm"], "sh");
    assert_eq!(sh["diagnosis"], "shell_not_forwarding", "{sh:#}");
    assert_eq!(sh["forwarded"].as_array().map(Vec::len), Some(0), "{sh:#}");
    assert_runtime_sigkill(sh);
    let child = process(&rec, sleep);
    assert!(
        signals(child, "SIGTERM").is_empty(),
        "the sleep got no SIGTERM: {child:#}"
    );
    assert_eq!(child["exit"]["signal"], "SIGKILL", "{child:#}");
}

/// S4: `exec sleep` fixes forwarding, but sleep as PID 1 has no handler.
#[test]
fn docker_s4_exec_sleep_is_ignored_by_pid1() {
    let d = Docker::start();
    let agent = docker_agent(&d);
    let id = d.run("s4", &[], &["/bin/sh", "-c", "exec sleep 1000"]);
    let init = d.init_pid(&id);
    assert!(
        wait_until(T, || comm(init) == "sleep"),
        "sh did not exec sleep"
    );
    docker_stop(&d, &id, 2);
    let rec = agent.container_stop(T, &id);
    assert_docker_container(&d, &rec, &id, "s4");
    assert_runtime_sender(&rec, "SIGTERM");
    assert_eq!(rec["diagnosis"], "ignored_by_pid1", "{rec:#}");
    assert_overrun_after(&rec, 2.0);
    assert_eq!(processes(&rec).len(), 1, "{rec:#}");
    let p = process(&rec, init);
    assert_eq!(p["comm"], "sleep");
    assert_eq!(p["signals"][0]["result"], "ignored", "{p:#}");
    assert_runtime_sigkill(p);
}

/// S5: `--init` puts tini in front; it forwards SIGTERM to sleep, whose default action ends it
/// at once (143), and tini follows.
#[test]
fn docker_s5_init_forwards_to_sleep() {
    let d = Docker::start();
    let agent = docker_agent(&d);
    let id = d.run("s5", &["--init"], &["sleep", "1000"]);
    let init = d.init_pid(&id);
    let sleep = wait_children(init, 1)[0];
    assert!(
        wait_until(T, || comm(sleep) == "sleep"),
        "tini's child is {}",
        comm(sleep)
    );
    let init_comm = comm(init);
    docker_stop(&d, &id, 5);
    let rec = agent.container_stop(T, &id);
    assert_docker_container(&d, &rec, &id, "s5");
    assert_runtime_sender(&rec, "SIGTERM");
    assert_eq!(rec["init_pid"], init);
    assert_eq!(rec["diagnosis"], "default_action", "{rec:#}");
    assert_eq!(rec["killed"], false, "{rec:#}");
    assert_eq!(rec["overrun"], false, "{rec:#}");
    // tini exits with 128 + the child's signal.
    assert_eq!(rec["exit"]["code"], 143, "{rec:#}");
    let dur = f64_of(&rec["duration_s"]);
    assert!(dur < 0.2, "tini + sleep took {dur} s: {rec:#}");
    let tini = process(&rec, init);
    assert_eq!(tini["comm"], init_comm);
    assert_eq!(tini["signals"][0]["sender_class"], "runtime", "{tini:#}");
    assert_eq!(tini["signals"][0]["result"], "delivered", "{tini:#}");
    let fwd = tini["forwarded"].as_array().expect("forwarded");
    assert!(
        fwd.iter()
            .any(|f| f["target"]["pid"] == sleep && f["signal"] == "SIGTERM"),
        "tini → sleep forwarding: {tini:#}"
    );
    let s = process(&rec, sleep);
    assert_eq!(s["diagnosis"], "default_action", "{s:#}");
    assert_eq!(s["exit"]["signal"], "SIGTERM", "{s:#}");
    assert!(signals(s, "SIGKILL").is_empty(), "{s:#}");
    let term = signals(s, "SIGTERM");
    assert_eq!(term.len(), 1, "{s:#}");
    assert_eq!(term[0]["sender"]["pid"], init);
    assert_eq!(term[0]["sender_class"], "container_init");
    assert!(f64_of(&s["duration_s"]) < 0.05, "{s:#}");
}

/// S6: a shell script that traps SIGTERM, forwards it to its two children (which handle it)
/// and waits for them.
#[test]
fn docker_s6_trap_and_forward() {
    let d = Docker::start();
    let agent = docker_agent(&d);
    let script = "trap 'kill -TERM $a $b; wait $a; wait $b; exit 0' TERM; \
                  /bin/victim --handle TERM:0:100 & a=$!; \
                  /bin/victim --handle TERM:0:200 & b=$!; \
                  wait";
    let id = d.run("s6", &[], &["/bin/sh", "-c", script]);
    let init = d.init_pid(&id);
    let kids = wait_children(init, 2);
    for &k in &kids {
        wait_handles_term(k);
    }
    wait_handles_term(init);
    docker_stop(&d, &id, 5);
    let rec = agent.container_stop(T, &id);
    assert_docker_container(&d, &rec, &id, "s6");
    assert_runtime_sender(&rec, "SIGTERM");
    assert_eq!(rec["diagnosis"], "graceful", "{rec:#}");
    assert_eq!(rec["killed"], false, "{rec:#}");
    assert_eq!(rec["exit"]["code"], 0, "{rec:#}");
    let dur = f64_of(&rec["duration_s"]);
    assert!(
        (0.19..1.0).contains(&dur),
        "the slower child takes 0.2 s: {dur} s: {rec:#}"
    );
    assert_eq!(processes(&rec).len(), 3, "{rec:#}");
    let sh = process(&rec, init);
    assert_eq!(sh["diagnosis"], "graceful", "{sh:#}");
    let fwd = sh["forwarded"].as_array().expect("forwarded");
    for &k in &kids {
        assert!(
            fwd.iter()
                .any(|f| f["target"]["pid"] == k && f["signal"] == "SIGTERM"),
            "sh → {k} forwarding: {sh:#}"
        );
        let v = process(&rec, k);
        assert_eq!(v["diagnosis"], "graceful", "{v:#}");
        assert_eq!(v["exit"]["code"], 0, "{v:#}");
        let term = signals(v, "SIGTERM");
        assert_eq!(term.len(), 1, "{v:#}");
        assert_eq!(term[0]["sender"]["pid"], init, "{v:#}");
        assert_eq!(term[0]["sender_class"], "container_init", "{v:#}");
        assert_eq!(term[0]["disposition"], "handler", "{v:#}");
        assert!(signals(v, "SIGKILL").is_empty(), "{v:#}");
    }
}

/// S7: the handler runs but needs 5 s; docker SIGKILLs after -t 2.
#[test]
fn docker_s7_slow_handler() {
    let d = Docker::start();
    let agent = docker_agent(&d);
    let id = d.run("s7", &[], &["/bin/victim", "--handle", "TERM:0:5000"]);
    let init = d.init_pid(&id);
    wait_handles_term(init);
    docker_stop(&d, &id, 2);
    let rec = agent.container_stop(T, &id);
    assert_docker_container(&d, &rec, &id, "s7");
    assert_runtime_sender(&rec, "SIGTERM");
    assert_eq!(rec["diagnosis"], "slow_handler", "{rec:#}");
    assert!(rec["hint"].is_string(), "{rec:#}");
    assert_overrun_after(&rec, 2.0);
    let p = process(&rec, init);
    assert_eq!(p["signals"][0]["result"], "delivered", "{p:#}");
    assert_eq!(p["signals"][0]["disposition"], "handler", "{p:#}");
    assert_runtime_sigkill(p);
}

/// S9: under tini, the workload set SIGTERM to SIG_IGN: tini forwards, the kernel drops it,
/// docker SIGKILLs tini after -t 1 and the kernel kills the workload.
#[test]
fn docker_s9_signal_ignored() {
    let d = Docker::start();
    let agent = docker_agent(&d);
    let id = d.run("s9", &["--init"], &["/bin/victim", "--ignore", "TERM"]);
    let init = d.init_pid(&id);
    let v = wait_children(init, 1)[0];
    assert!(
        wait_until(T, || has_mask(v, "SigIgn", libc::SIGTERM)),
        "victim did not ignore SIGTERM"
    );
    docker_stop(&d, &id, 1);
    let rec = agent.container_stop(T, &id);
    assert_docker_container(&d, &rec, &id, "s9");
    assert_runtime_sender(&rec, "SIGTERM");
    assert_eq!(rec["diagnosis"], "signal_ignored", "{rec:#}");
    assert_overrun_after(&rec, 1.0);
    let p = process(&rec, v);
    assert_eq!(p["diagnosis"], "signal_ignored", "{p:#}");
    let term = signals(p, "SIGTERM");
    assert_eq!(term.len(), 1, "{p:#}");
    assert_eq!(term[0]["result"], "ignored", "{p:#}");
    assert_eq!(term[0]["disposition"], "ignore", "{p:#}");
    assert_eq!(term[0]["sender_class"], "container_init", "{p:#}");
    assert_eq!(p["exit"]["signal"], "SIGKILL", "{p:#}");
    // tini took SIGTERM (sigwait) and forwarded it: it outlived the grace waiting for its child.
    let tini = process(&rec, init);
    assert_eq!(tini["diagnosis"], "slow_handler", "{tini:#}");
    assert!(
        tini["forwarded"]
            .as_array()
            .is_some_and(|f| f.iter().any(|f| f["target"]["pid"] == v)),
        "{tini:#}"
    );
    assert_runtime_sigkill(tini);
}

/// S10: `docker kill` sends SIGKILL with no stop signal before it.
#[test]
fn docker_s10_kill_is_force_killed() {
    let d = Docker::start();
    let agent = docker_agent(&d);
    let id = d.run("s10", &[], &["/bin/victim", "--handle", "TERM:0:0"]);
    let init = d.init_pid(&id);
    wait_handles_term(init);
    d.output(&["kill", &id]);
    let rec = agent.container_stop(T, &id);
    assert_docker_container(&d, &rec, &id, "s10");
    assert_runtime_sender(&rec, "SIGKILL");
    assert_eq!(rec["diagnosis"], "force_killed", "{rec:#}");
    assert_eq!(rec["overrun"], false, "{rec:#}");
    assert_eq!(rec["exit"]["signal"], "SIGKILL", "{rec:#}");
    assert!(f64_of(&rec["duration_s"]) < 0.2, "{rec:#}");
    let p = process(&rec, init);
    assert!(signals(p, "SIGTERM").is_empty(), "{p:#}");
    assert_eq!(signals(p, "SIGKILL").len(), 1, "{p:#}");
    assert_eq!(p["signals"][0]["sender_class"], "runtime", "{p:#}");
}

/// S12: PID 1 handles SIGTERM and exits at once, leaving its child: the kernel kills the
/// child when the namespace's init dies.
#[test]
fn docker_s12_init_exits_child_orphan_killed() {
    let d = Docker::start();
    let agent = docker_agent(&d);
    let id = d.run(
        "s12",
        &[],
        &["/bin/victim", "--handle", "TERM:0:0", "--children", "1"],
    );
    let init = d.init_pid(&id);
    wait_handles_term(init);
    let child = wait_children(init, 1)[0];
    docker_stop(&d, &id, 5);
    let rec = agent.container_stop(T, &id);
    assert_docker_container(&d, &rec, &id, "s12");
    assert_runtime_sender(&rec, "SIGTERM");
    assert_eq!(rec["init_pid"], init);
    assert_eq!(rec["exit"]["code"], 0, "{rec:#}");
    assert_eq!(rec["diagnosis"], "orphan_killed", "{rec:#}");
    assert_eq!(rec["killed"], false, "no runtime SIGKILL: {rec:#}");
    assert_eq!(rec["overrun"], false, "{rec:#}");
    assert!(f64_of(&rec["duration_s"]) < 0.5, "{rec:#}");
    assert_eq!(processes(&rec).len(), 2, "{rec:#}");
    let p1 = process(&rec, init);
    assert_eq!(p1["diagnosis"], "graceful", "{p1:#}");
    let c = process(&rec, child);
    assert_eq!(c["diagnosis"], "orphan_killed", "{c:#}");
    assert_eq!(c["exit"]["signal"], "SIGKILL", "{c:#}");
    let kills = signals(c, "SIGKILL");
    assert_eq!(kills.len(), 1, "{c:#}");
    assert_eq!(kills[0]["sender_class"], "kernel", "{c:#}");
    assert_eq!(
        kills[0]["sender"]["pid"], init,
        "the dying init sends the teardown SIGKILL: {c:#}"
    );
}

/// S11: a container with a memory limit (`docker run -m`, here the cgroup v1 memory
/// controller) whose shell doubles a string until the OOM killer ends it.
#[test]
fn docker_s11_oom_killed() {
    let d = Docker::start();
    let addr = format!("127.0.0.1:{}", tests::metrics::free_port());
    let agent = docker_agent_with(&d, &["--metrics", &addr]);
    let id = d.run(
        "s11",
        &["-m", "32m", "--memory-swap", "32m"],
        &[
            "/bin/sh",
            "-c",
            "sleep 0.5; x=a; while true; do x=$x$x; done",
        ],
    );
    // Ground truth from docker itself: the OOM killer ended it (else this machine cannot limit
    // a container's memory, and the test says so).
    assert!(
        wait_until(T, || d.output(&["inspect", "-f", "{{.State.Running}}", &id]).trim() == "false"),
        "the container never hit its 32 MiB limit: this kernel/cgroup setup does not enforce `docker run -m`"
    );
    assert_eq!(
        d.output(&["inspect", "-f", "{{.State.OOMKilled}}", &id])
            .trim(),
        "true",
        "docker does not report an OOM kill"
    );
    let rec = agent.container_stop(T, &id);
    assert_docker_container(&d, &rec, &id, "s11");
    assert_eq!(rec["diagnosis"], "oom_killed", "{rec:#}");
    assert!(
        rec["hint"].as_str().is_some_and(|h| h.contains("memory")),
        "{rec:#}"
    );
    assert_eq!(
        rec["overrun"], false,
        "an OOM kill is not a grace overrun: {rec:#}"
    );
    assert_eq!(rec["exit"]["signal"], "SIGKILL", "{rec:#}");
    let init = rec["init_pid"].as_u64().expect("init pid") as u32;
    let p = process(&rec, init);
    assert_eq!(p["comm"], "sh");
    assert_eq!(p["diagnosis"], "oom_killed", "{p:#}");
    assert_eq!(p["overrun"], false, "{p:#}");
    let kills = signals(p, "SIGKILL");
    assert!(!kills.is_empty(), "{p:#}");
    assert_eq!(kills[0]["sender_class"], "kernel", "{p:#}");
    assert!(signals(p, "SIGTERM").is_empty(), "{p:#}");
    // The metrics count it as this container's OOM kill, and not as an overrun.
    let name = rec["container"]["name"].as_str().expect("container name");
    let series = [("container", name)];
    let text = tests::metrics::wait_metrics(&addr, "the OOM kill", |t| {
        tests::metrics::value(t, "sigtrace_oom_kills_total", &series) == Some(1.0)
    });
    let container_stops = tests::metrics::value(
        &text,
        "sigtrace_container_stops_total",
        &[("container", name), ("diagnosis", "oom_killed")],
    );
    assert_eq!(container_stops, Some(1.0), "{text}");
    assert_eq!(
        tests::metrics::value(&text, "sigtrace_grace_overruns_total", &series),
        None,
        "{text}"
    );
}

// ---------------------------------------------------------------------------------------------
// containerd (ctr)

/// A `ctr run` container: task and container deleted, its cgroup tree removed on drop.
struct CtrContainer<'a> {
    c: &'a Containerd,
    ns: &'static str,
    id: String,
    cgroup_top: String,
}

impl Drop for CtrContainer<'_> {
    fn drop(&mut self) {
        let quiet = |cmd: &mut Command| {
            let _ = cmd.stdout(Stdio::null()).stderr(Stdio::null()).status();
        };
        quiet(
            self.c
                .ctr(self.ns)
                .args(["task", "kill", "-s", "SIGKILL", &self.id]),
        );
        wait_until(Duration::from_secs(5), || {
            self.c
                .ctr(self.ns)
                .args(["task", "delete", "-f", &self.id])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
                || !self
                    .c
                    .ctr(self.ns)
                    .args(["task", "ls", "-q"])
                    .output()
                    .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(&self.id))
        });
        quiet(self.c.ctr(self.ns).args(["container", "delete", &self.id]));
        remove_cgroup_tree(&self.cgroup_top);
    }
}

fn ctr_ok(cmd: &mut Command) {
    let out = cmd.stdin(Stdio::null()).output().expect("ctr");
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// containerd via `ctr`: `sleep` as PID 1 ignores the shim's SIGTERM; SIGKILL 1 s later.
#[test]
fn containerd_ctr_stop() {
    let c = Containerd::start();
    let img = TempDir::new("ctr-rootfs");
    let rootfs = busybox_rootfs(img.path());
    let id = hex_id(1);
    let top = format!("sigtrace-ctr-{}", std::process::id());
    let cgroup = format!("/{top}/{id}");
    let state = c.state.to_string_lossy().to_string();
    let agent = agent(&["--containerd-state", &state]);
    let ns = "sigtrace";
    let guard = CtrContainer {
        c: &c,
        ns,
        id: id.clone(),
        cgroup_top: top.clone(),
    };
    ctr_ok(
        c.ctr(ns)
            .args(["run", "-d", "--null-io", "--cgroup", &cgroup, "--rootfs"])
            .arg(&rootfs)
            .arg(&id)
            .args(["/bin/sleep", "1000"]),
    );
    let mut init = 0u32;
    assert!(
        wait_until(T, || {
            let out = c
                .ctr(ns)
                .args(["task", "ls"])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
                .unwrap_or_default();
            init = out
                .lines()
                .find(|l| l.starts_with(&id))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|p| p.parse().ok())
                .unwrap_or(0);
            init != 0 && comm(init) == "sleep"
        }),
        "ctr task did not start"
    );
    ctr_ok(c.ctr(ns).args(["task", "kill", "-s", "SIGTERM", &id]));
    std::thread::sleep(Duration::from_secs(1));
    assert!(pid_alive(init), "sleep as PID 1 must survive SIGTERM");
    ctr_ok(c.ctr(ns).args(["task", "kill", "-s", "SIGKILL", &id]));
    let rec = agent.container_stop(T, &id);
    assert_complete(&rec);
    let cinfo = &rec["container"];
    assert_eq!(cinfo["runtime"], "containerd", "{rec:#}");
    assert_eq!(cinfo["cgroup_path"], cgroup, "{rec:#}");
    assert_eq!(cinfo["pod"], Value::Null, "{rec:#}");
    assert_eq!(rec["init_pid"], init, "{rec:#}");
    assert_eq!(rec["diagnosis"], "ignored_by_pid1", "{rec:#}");
    assert_runtime_sender(&rec, "SIGTERM");
    assert_eq!(rec["killed"], true, "{rec:#}");
    let dur = f64_of(&rec["duration_s"]);
    assert!(
        (1.0..1.5).contains(&dur),
        "SIGKILL 1 s after SIGTERM, took {dur} s: {rec:#}"
    );
    let p = process(&rec, init);
    assert_eq!(p["signals"][0]["result"], "ignored", "{p:#}");
    assert_runtime_sigkill(p);
    drop(guard);
}

// ---------------------------------------------------------------------------------------------
// runc with a Kubernetes-style cgroup path and CRI annotations

/// runc, kubepods-style `linux.cgroupsPath` and CRI annotations in config.json, the bundle where
/// containerd's CRI plugin keeps it: `runc kill TERM`, then `runc kill KILL` 2 s later.
#[test]
fn runc_kubepods_cri_annotations() {
    let pod_uid = format!(
        "5e1a7c2d-{:04x}-4b6e-9a3f-0123456789ab",
        std::process::id() & 0xffff
    );
    let id = hex_id(2);
    let cgroups_path = format!(
        "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice/cri-containerd-{id}.scope",
        pod_uid.replace('-', "_")
    );
    let ann: BTreeMap<String, String> = [
        ("io.kubernetes.cri.container-type", "container"),
        ("io.kubernetes.cri.container-name", "web"),
        ("io.kubernetes.cri.sandbox-name", "web-7d4b9c-x2x9z"),
        ("io.kubernetes.cri.sandbox-namespace", "shop"),
        ("io.kubernetes.cri.sandbox-uid", pod_uid.as_str()),
        ("io.kubernetes.cri.sandbox-id", "0".repeat(64).as_str()),
        ("io.kubernetes.cri.image-name", "registry.example/web:1.2"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let ctr = RuncContainer::run("k8s.io", &id, &cgroups_path, &ann, &["sleep", "1000"]);
    // The container landed exactly at the path in the v2 hierarchy.
    let v2 = fs::read_to_string(format!("/proc/{}/cgroup", ctr.pid)).unwrap();
    assert!(
        v2.lines().any(|l| l == format!("0::{cgroups_path}")),
        "container cgroup: {v2}"
    );
    let state = ctr.state.to_string_lossy().to_string();
    let agent = agent(&["--containerd-state", &state]);
    ctr.kill("TERM");
    std::thread::sleep(Duration::from_secs(2));
    assert!(pid_alive(ctr.pid), "sleep as PID 1 must survive SIGTERM");
    ctr.kill("KILL");
    let rec = agent.container_stop(T, &id);
    assert_complete(&rec);
    let c = &rec["container"];
    assert_eq!(c["runtime"], "containerd", "{rec:#}");
    assert_eq!(c["name"], "web", "{rec:#}");
    assert_eq!(c["pod"], "web-7d4b9c-x2x9z", "{rec:#}");
    assert_eq!(c["namespace"], "shop", "{rec:#}");
    assert_eq!(c["pod_uid"], pod_uid, "{rec:#}");
    assert_eq!(c["qos"], "burstable", "{rec:#}");
    assert_eq!(c["container_type"], "container", "{rec:#}");
    assert_eq!(c["image"], "registry.example/web:1.2", "{rec:#}");
    assert_eq!(c["cgroup_path"], cgroups_path, "{rec:#}");
    assert_eq!(rec["init_pid"], ctr.pid, "{rec:#}");
    assert_eq!(rec["diagnosis"], "ignored_by_pid1", "{rec:#}");
    assert_runtime_sender(&rec, "SIGTERM");
    assert_eq!(rec["killed"], true, "{rec:#}");
    let dur = f64_of(&rec["duration_s"]);
    assert!(
        (2.0..2.5).contains(&dur),
        "SIGKILL 2 s after SIGTERM, took {dur} s: {rec:#}"
    );
    let p = process(&rec, ctr.pid);
    assert_eq!(p["signals"][0]["result"], "ignored", "{p:#}");
    assert_eq!(p["signals"][0]["sender_class"], "runtime", "{p:#}");
    assert_runtime_sigkill(p);
}
