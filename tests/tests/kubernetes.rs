//! Kubernetes stops for real: pods run and deleted through containerd's CRI plugin the way
//! kubelet does it (`tests::cri`), traced by the agent. Every assertion is about the test's
//! own pods (by container id or pod uid).
use std::time::Duration;

use serde_json::Value;
use tests::{
    cri::{CgroupDriver, ContainerSpec, Kubelet, Pod, PodSpec},
    records::{
        agent, assert_complete, assert_overrun_after, assert_runtime_sender,
        assert_runtime_sigkill, f64_of, k8s_agent, member, pod_stop, process, signals,
        wait_children, wait_handles_term,
    },
    Agent,
};

const T: Duration = Duration::from_secs(20);

fn pod(name: &str, driver: CgroupDriver, qos: &'static str, grace: i64) -> PodSpec {
    PodSpec {
        driver,
        qos,
        termination_grace_s: grace,
        ..PodSpec::new(name, "shop")
    }
}

/// What every container record of a CRI pod must say about where it ran.
fn assert_attributed(rec: &Value, pod: &Pod, name: &str, workload: (&str, &str)) {
    let c = &rec["container"];
    assert_eq!(c["id"], pod.container_id(name), "{rec:#}");
    assert_eq!(c["runtime"], "containerd", "{rec:#}");
    assert_eq!(c["container_type"], "container", "{rec:#}");
    assert_eq!(c["name"], name, "{rec:#}");
    assert_eq!(c["pod"], pod.spec.name, "{rec:#}");
    assert_eq!(c["namespace"], pod.spec.namespace, "{rec:#}");
    assert_eq!(c["pod_uid"], pod.spec.uid, "{rec:#}");
    assert_eq!(c["qos"], pod.spec.qos, "{rec:#}");
    assert_eq!(c["workload"], workload.0, "{rec:#}");
    assert_eq!(c["workload_type"], workload.1, "{rec:#}");
    assert_eq!(
        c["cgroup_path"],
        pod.spec.container_cgroup(pod.container_id(name)),
        "{rec:#}"
    );
    assert_complete(rec);
}

/// What every pod record must say: the pod, its workload, the sandbox's end by the runtime's
/// SIGKILL, and that no record of the sandbox left the engine on its own.
fn assert_pod(agent: &Agent, rec: &Value, pod: &Pod, workload: (&str, &str), containers: usize) {
    assert_eq!(rec["pod"], pod.spec.name, "{rec:#}");
    assert_eq!(rec["namespace"], pod.spec.namespace, "{rec:#}");
    assert_eq!(rec["workload"], workload.0, "{rec:#}");
    assert_eq!(rec["workload_type"], workload.1, "{rec:#}");
    assert_eq!(
        rec["containers"].as_array().map(Vec::len),
        Some(containers),
        "{rec:#}"
    );
    assert_eq!(rec["sandbox"]["id"], pod.sandbox_id, "{rec:#}");
    assert_eq!(rec["sandbox"]["stop_signal"], "SIGKILL", "{rec:#}");
    assert_eq!(rec["sandbox"]["exit"]["signal"], "SIGKILL", "{rec:#}");
    let sandbox_records = agent
        .lines()
        .into_iter()
        .filter(|l| l["container"]["id"] == pod.sandbox_id.as_str())
        .count();
    assert_eq!(sandbox_records, 0, "the sandbox has no records of its own");
    assert!(
        f64_of(&rec["duration_s"]) >= f64_of(&rec["held_up_s"]),
        "{rec:#}"
    );
}

/// S1 (cgroupfs driver, a Deployment's pod): the app handles SIGTERM in 200 ms.
#[test]
fn k8s_s1_graceful() {
    let k = Kubelet::start();
    let agent = k8s_agent(&k);
    let mut p = k.run_pod(pod(
        "web-7d4b9c8f6d-x2k9p",
        CgroupDriver::Cgroupfs,
        "burstable",
        5,
    ));
    let id = k.start_container(
        &mut p,
        &ContainerSpec::new("app", &["/bin/victim", "--handle", "TERM:0:200"]),
    );
    let init = k.init_pid(&id, false);
    wait_handles_term(init);
    let codes = k.delete_pod(&p);
    assert_eq!(codes["app"], 0);
    let rec = pod_stop(&agent, &p);
    let wl = ("web", "deployment");
    assert_pod(&agent, &rec, &p, wl, 1);
    let app = member(&rec, "app");
    assert_attributed(app, &p, "app", wl);
    assert_runtime_sender(app, "SIGTERM");
    assert_eq!(app["diagnosis"], "graceful", "{app:#}");
    assert_eq!(app["exit"]["code"], 0, "{app:#}");
    assert_eq!(app["killed"], false, "{app:#}");
    let dur = f64_of(&app["duration_s"]);
    assert!((0.19..0.6).contains(&dur), "duration {dur}: {app:#}");
    assert_eq!(rec["diagnosis"], "graceful", "{rec:#}");
    assert_eq!(rec["held_up_by"], "app", "{rec:#}");
    assert_eq!(rec["killed_at_teardown"], serde_json::json!([]), "{rec:#}");
    assert_eq!(rec["overrun"], false, "{rec:#}");
    // The container record went out on its own too, and the process record inside it.
    let own = agent.container_stop(T, &id);
    assert_eq!(own["diagnosis"], "graceful", "{own:#}");
    assert_eq!(process(&own, init)["ns_pid"], 1);
}

/// S2 (systemd-shaped cgroup parent, a StatefulSet's pod): `sleep` as PID 1 has no handler;
/// the kernel drops SIGTERM and the runtime SIGKILLs after the 2 s grace.
#[test]
fn k8s_s2_pid1_ignores() {
    let k = Kubelet::start();
    let agent = k8s_agent(&k);
    let mut p = k.run_pod(pod("db-0", CgroupDriver::Systemd, "burstable", 2));
    let id = k.start_container(&mut p, &ContainerSpec::new("db", &["sleep", "1000"]));
    let init = k.init_pid(&id, false);
    let codes = k.delete_pod(&p);
    assert_eq!(codes["db"], 137, "the runtime reports the SIGKILL");
    let rec = pod_stop(&agent, &p);
    let wl = ("db", "statefulset");
    assert_pod(&agent, &rec, &p, wl, 1);
    let db = member(&rec, "db");
    assert_attributed(db, &p, "db", wl);
    assert_runtime_sender(db, "SIGTERM");
    assert_eq!(db["diagnosis"], "ignored_by_pid1", "{db:#}");
    assert_overrun_after(db, 2.0);
    let sleep = process(db, init);
    assert_eq!(sleep["signals"][0]["result"], "ignored", "{sleep:#}");
    assert_runtime_sigkill(sleep);
    assert_eq!(rec["diagnosis"], "ignored_by_pid1", "{rec:#}");
    assert_eq!(rec["overrun"], true, "{rec:#}");
    assert_eq!(rec["held_up_by"], "db", "{rec:#}");
}

/// S3 (cgroupfs, guaranteed QoS: no QoS level in the path; a DaemonSet-style name, which the
/// name alone cannot tell from a Job's): a shell as PID 1 that does not forward SIGTERM.
#[test]
fn k8s_s3_shell_not_forwarding() {
    let k = Kubelet::start();
    let agent = k8s_agent(&k);
    let mut p = k.run_pod(pod(
        "node-agent-x8vfl",
        CgroupDriver::Cgroupfs,
        "guaranteed",
        2,
    ));
    let id = k.start_container(
        &mut p,
        &ContainerSpec::new("agent", &["/bin/sh", "-c", "sleep 1000; true"]),
    );
    let init = k.init_pid(&id, false);
    let sleep = wait_children(init, 1)[0];
    k.delete_pod(&p);
    let rec = pod_stop(&agent, &p);
    let wl = ("node-agent", "unknown");
    assert_pod(&agent, &rec, &p, wl, 1);
    let c = member(&rec, "agent");
    assert_attributed(c, &p, "agent", wl);
    assert_eq!(c["diagnosis"], "shell_not_forwarding", "{c:#}");
    assert_overrun_after(c, 2.0);
    let child = process(c, sleep);
    assert!(signals(child, "SIGTERM").is_empty(), "{child:#}");
    assert_eq!(child["exit"]["signal"], "SIGKILL", "{child:#}");
    assert_eq!(rec["diagnosis"], "shell_not_forwarding", "{rec:#}");
}

/// S7 (systemd-shaped, besteffort; a CronJob's pod): the handler needs 5 s of a 2 s grace.
#[test]
fn k8s_s7_slow_handler() {
    let k = Kubelet::start();
    let agent = k8s_agent(&k);
    let mut p = k.run_pod(pod(
        "backup-29447520-7cxzt",
        CgroupDriver::Systemd,
        "besteffort",
        2,
    ));
    let id = k.start_container(
        &mut p,
        &ContainerSpec::new("dump", &["/bin/victim", "--handle", "TERM:0:5000"]),
    );
    let init = k.init_pid(&id, false);
    wait_handles_term(init);
    k.delete_pod(&p);
    let rec = pod_stop(&agent, &p);
    let wl = ("backup", "cronjob");
    assert_pod(&agent, &rec, &p, wl, 1);
    let c = member(&rec, "dump");
    assert_attributed(c, &p, "dump", wl);
    assert_eq!(c["diagnosis"], "slow_handler", "{c:#}");
    assert_overrun_after(c, 2.0);
    let app = process(c, init);
    assert_eq!(app["signals"][0]["disposition"], "handler", "{app:#}");
    assert_runtime_sigkill(app);
    assert_eq!(rec["diagnosis"], "slow_handler", "{rec:#}");
}

/// Two containers stopped in parallel: the sidecar is done in 100 ms, the app overruns its
/// 2 s grace. The pod record names the app as the one that held the pod up; the journal
/// replays it, and the terminal shows it as one `POD STOP` line.
#[test]
fn k8s_two_containers_one_overruns() {
    let k = Kubelet::start();
    let journal = tests::TempDir::new("k8s-journal");
    let state = k.state_dir().display().to_string();
    let dir = journal.path().display().to_string();
    let agent = agent(&["--containerd-state", &state, "--data-dir", &dir]);
    let mut p = k.run_pod(pod(
        "api-6f7b8c9d4-zq5wp",
        CgroupDriver::Cgroupfs,
        "burstable",
        2,
    ));
    let app = k.start_container(
        &mut p,
        &ContainerSpec::new("app", &["/bin/victim", "--handle", "TERM:0:6000"]),
    );
    let side = k.start_container(
        &mut p,
        &ContainerSpec::new("proxy", &["/bin/victim", "--handle", "TERM:0:100"]),
    );
    wait_handles_term(k.init_pid(&app, false));
    wait_handles_term(k.init_pid(&side, false));
    k.delete_pod(&p);
    let rec = pod_stop(&agent, &p);
    let wl = ("api", "deployment");
    assert_pod(&agent, &rec, &p, wl, 2);
    assert_attributed(member(&rec, "app"), &p, "app", wl);
    assert_attributed(member(&rec, "proxy"), &p, "proxy", wl);
    assert_eq!(member(&rec, "proxy")["diagnosis"], "graceful", "{rec:#}");
    assert_eq!(member(&rec, "app")["diagnosis"], "slow_handler", "{rec:#}");
    assert_eq!(rec["held_up_by"], "app", "{rec:#}");
    let held = f64_of(&rec["held_up_s"]);
    assert!((2.0..2.4).contains(&held), "held up {held} s: {rec:#}");
    let total = f64_of(&rec["duration_s"]);
    assert!((2.0..4.0).contains(&total), "pod took {total} s: {rec:#}");
    assert_eq!(rec["diagnosis"], "slow_handler", "{rec:#}");
    assert_eq!(rec["overrun"], true, "{rec:#}");
    assert_eq!(rec["killed_at_teardown"], serde_json::json!([]), "{rec:#}");

    agent.stop();
    let text = tests::records::replayed_timeline(&dir, &p.spec.name);
    let line = tests::records::line_with(&text, "POD STOP");
    for part in [
        "shop/api-6f7b8c9d4-zq5wp",
        "(deployment api)",
        "2 container(s)",
        "held up by app",
        "slow_handler",
    ] {
        assert!(line.contains(part), "{part:?} in {line}");
    }
    assert_eq!(
        text.lines()
            .filter(|l| l.contains("CONTAINER STOP"))
            .count(),
        2,
        "two container lines, no sandbox line:\n{text}"
    );
}

/// `StopPodSandbox` with a container still running (its StopContainer never came): it is
/// SIGKILLed with no stop signal before, and the pod record says so.
#[test]
fn k8s_sandbox_teardown_kills_a_running_container() {
    let k = Kubelet::start();
    let agent = k8s_agent(&k);
    let mut p = k.run_pod(pod(
        "worker-5d89c47f76-b2mzl",
        CgroupDriver::Systemd,
        "burstable",
        5,
    ));
    let app = k.start_container(
        &mut p,
        &ContainerSpec::new("app", &["/bin/victim", "--handle", "TERM:0:100"]),
    );
    let side = k.start_container(
        &mut p,
        &ContainerSpec::new("logs", &["/bin/victim", "--handle", "TERM:0:100"]),
    );
    wait_handles_term(k.init_pid(&app, false));
    let side_init = k.init_pid(&side, false);
    wait_handles_term(side_init);
    k.stop_container(&app, 5);
    k.remove_pod(&p);
    let rec = pod_stop(&agent, &p);
    let wl = ("worker", "deployment");
    assert_pod(&agent, &rec, &p, wl, 2);
    assert_eq!(
        rec["killed_at_teardown"],
        serde_json::json!(["logs"]),
        "{rec:#}"
    );
    let logs = member(&rec, "logs");
    assert_attributed(logs, &p, "logs", wl);
    assert_eq!(logs["stop_signal"], "SIGKILL", "{logs:#}");
    assert_eq!(logs["diagnosis"], "force_killed", "{logs:#}");
    let proc_ = process(logs, side_init);
    assert!(signals(proc_, "SIGTERM").is_empty(), "{proc_:#}");
    assert_runtime_sigkill(proc_);
    assert_eq!(member(&rec, "app")["diagnosis"], "graceful", "{rec:#}");
    assert_eq!(rec["diagnosis"], "force_killed", "{rec:#}");
    assert!(
        rec["hint"].as_str().is_some_and(|h| h.contains("teardown")),
        "{rec:#}"
    );
}

/// S17: two containers, one graceful, one with `sleep` as PID 1; StopContainer on both with
/// timeout 3, then StopPodSandbox. The pod record is held up by the sleep container.
#[test]
fn k8s_s17_pod_held_up_by_pid1_that_ignores() {
    let k = Kubelet::start();
    let agent = k8s_agent(&k);
    let mut p = k.run_pod(pod("queue-0", CgroupDriver::Cgroupfs, "burstable", 3));
    let ok = k.start_container(
        &mut p,
        &ContainerSpec::new("worker", &["/bin/victim", "--handle", "TERM:0:100"]),
    );
    k.start_container(&mut p, &ContainerSpec::new("idle", &["sleep", "1000"]));
    wait_handles_term(k.init_pid(&ok, false));
    k.delete_pod(&p);
    let rec = pod_stop(&agent, &p);
    let wl = ("queue", "statefulset");
    assert_pod(&agent, &rec, &p, wl, 2);
    assert_eq!(rec["held_up_by"], "idle", "{rec:#}");
    assert_eq!(
        member(&rec, "idle")["diagnosis"],
        "ignored_by_pid1",
        "{rec:#}"
    );
    assert_eq!(member(&rec, "worker")["diagnosis"], "graceful", "{rec:#}");
    assert_eq!(rec["diagnosis"], "ignored_by_pid1", "{rec:#}");
    let total = f64_of(&rec["duration_s"]);
    assert!((3.0..4.5).contains(&total), "pod took {total} s: {rec:#}");
}

/// S18: StopPodSandbox only, with the container running: SIGKILLed by the runtime at the
/// teardown with no stop signal first.
#[test]
fn k8s_s18_sandbox_stop_only() {
    let k = Kubelet::start();
    let agent = k8s_agent(&k);
    let mut p = k.run_pod(pod(
        "batch-28847520-7cxzt",
        CgroupDriver::Cgroupfs,
        "besteffort",
        30,
    ));
    let id = k.start_container(
        &mut p,
        &ContainerSpec::new("job", &["/bin/victim", "--handle", "TERM:0:100"]),
    );
    let init = k.init_pid(&id, false);
    wait_handles_term(init);
    k.remove_pod(&p);
    let rec = pod_stop(&agent, &p);
    let wl = ("batch", "cronjob");
    assert_pod(&agent, &rec, &p, wl, 1);
    assert_eq!(
        rec["killed_at_teardown"],
        serde_json::json!(["job"]),
        "{rec:#}"
    );
    let c = member(&rec, "job");
    assert_attributed(c, &p, "job", wl);
    assert_eq!(c["stop_signal"], "SIGKILL", "{c:#}");
    assert_eq!(c["sender_class"], "runtime", "{c:#}");
    assert_eq!(c["diagnosis"], "force_killed", "{c:#}");
    let app = process(c, init);
    assert!(
        signals(app, "SIGTERM").is_empty(),
        "no stop signal first: {app:#}"
    );
}
