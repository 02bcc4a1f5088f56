//! The grace budget through the CRI, the way kubelet does it: a preStop exec hook
//! (`ExecSync`) then `StopContainer` with what is left of the grace; exec probes that repeat.
//! The agent must see the runtime's execs into the container, name the hook, and tell a slow
//! hook (`slow_prestop`) from a slow app.
use serde_json::Value;
use tests::{
    cri::{ContainerSpec, Kubelet, PodSpec},
    records::{f64_of, k8s_agent, member, pod_stop, process, wait_handles_term},
};

/// The execs of a container record, as (comm, path).
fn execs(c: &Value) -> Vec<(String, String)> {
    c["execs"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            (
                e["comm"].as_str().unwrap_or_default().to_string(),
                e["path"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// S15: a preStop hook `sleep 3` with a 5 s grace; the app's SIGTERM handler needs 3 s. kubelet
/// gives the app the 2 s left: the container is `slow_prestop`, the app `slow_handler`.
#[test]
fn s15_slow_prestop_leaves_the_app_too_little() {
    let k = Kubelet::start();
    let journal = tests::TempDir::new("prestop-journal");
    let state = k.state_dir().display().to_string();
    let dir = journal.path().display().to_string();
    let agent = tests::records::agent(&["--containerd-state", &state, "--data-dir", &dir]);
    let mut p = k.run_pod(PodSpec {
        termination_grace_s: 5,
        ..PodSpec::new("shop-api-7d4b9c8f6d-x2k9p", "shop")
    });
    let id = k.start_container(
        &mut p,
        &ContainerSpec::new("api", &["/bin/victim", "--handle", "TERM:0:3000"]),
    );
    let init = k.init_pid(&id, false);
    wait_handles_term(init);
    let hook = k.stop_with_prestop(&id, &["/bin/sleep", "3"], 5);
    assert!(hook.as_secs_f64() >= 3.0, "the hook ran {hook:?}");
    k.remove_pod(&p);
    let rec = pod_stop(&agent, &p);
    let c = member(&rec, "api");
    assert_eq!(c["diagnosis"], "slow_prestop", "{c:#}");
    let pre = &c["prestop"];
    assert_eq!(pre["comm"], "sleep", "{c:#}");
    assert_eq!(pre["path"], "/bin/sleep", "{c:#}");
    assert_eq!(pre["exit"]["code"], 0, "{c:#}");
    let pre_s = f64_of(&c["prestop_s"]);
    assert!((3.0..3.5).contains(&pre_s), "preStop {pre_s} s: {c:#}");
    let eff = f64_of(&c["effective_grace_s"]);
    assert!((2.0..2.3).contains(&eff), "effective grace {eff} s: {c:#}");
    let term = f64_of(&c["termination_grace_s"]);
    assert!(
        (5.0..5.8).contains(&term),
        "termination grace {term} s: {c:#}"
    );
    assert_eq!(c["termination_grace_source"], "inferred", "{c:#}");
    let hint = c["hint"].as_str().unwrap_or_default();
    assert!(
        hint.starts_with("the preStop hook took 3.") && hint.contains("leaving the app 2."),
        "{hint}"
    );
    assert_eq!(c["killed"], true, "{c:#}");
    let app = process(c, init);
    assert_eq!(app["diagnosis"], "slow_handler", "{app:#}");
    // The pod takes the container's diagnosis; its termination includes the hook.
    assert_eq!(rec["diagnosis"], "slow_prestop", "{rec:#}");
    let total = f64_of(&rec["duration_s"]);
    assert!(
        (5.0..6.5).contains(&total),
        "pod termination {total} s: {rec:#}"
    );
    assert_eq!(
        execs(c),
        vec![("sleep".to_string(), "/bin/sleep".to_string())],
        "{c:#}"
    );

    // The terminal line of the container shows the hook and the budget.
    agent.stop();
    let text = tests::records::replayed_timeline(&dir, &p.spec.name);
    let line = tests::records::line_with(&text, "CONTAINER STOP");
    for part in [
        "preStop sleep 3.",
        "app had 2.",
        "inferred grace",
        "slow_prestop",
    ] {
        assert!(line.contains(part), "{part:?} in {line}");
    }
}

/// A preStop hook that outlives the whole grace (`sleep 30`, grace 4 s) and an app that handles
/// SIGTERM at once: kubelet gives up on the hook after 4 s and stops the app with the 2 s
/// minimum; the hook runs on until the namespace teardown kills it. The container and the pod
/// are `slow_prestop` (not `orphan_killed`: the hook is not an orphan of the app), the app
/// `graceful`, and the hook's phase is about the grace.
#[test]
fn a_prestop_hook_that_outlives_the_grace_is_slow_prestop_not_an_orphan() {
    let k = Kubelet::start();
    let agent = k8s_agent(&k);
    let mut p = k.run_pod(PodSpec {
        termination_grace_s: 4,
        ..PodSpec::new("shop-api-7d4b9c8f6d-q7w2e", "shop")
    });
    let id = k.start_container(
        &mut p,
        &ContainerSpec::new("api", &["/bin/victim", "--handle", "TERM:0:0"]),
    );
    let init = k.init_pid(&id, false);
    wait_handles_term(init);
    k.stop_with_outliving_prestop(&id, &["/bin/sleep", "30"], 4);
    k.remove_pod(&p);
    let rec = pod_stop(&agent, &p);
    let c = member(&rec, "api");
    assert_eq!(c["diagnosis"], "slow_prestop", "{c:#}");
    let hint = c["hint"].as_str().unwrap_or_default();
    assert!(
        hint.contains("still running when kubelet gave up on it"),
        "{hint}"
    );
    assert_eq!(c["prestop"]["path"], "/bin/sleep", "{c:#}");
    // About the grace: from the exec's start (containerd takes a few tens of ms to start it
    // after the call) to the teardown right after the app's exit.
    let pre_s = f64_of(&c["prestop_s"]);
    assert!((3.5..5.5).contains(&pre_s), "preStop {pre_s} s: {c:#}");
    let app = process(c, init);
    assert_eq!(app["diagnosis"], "graceful", "{app:#}");
    assert_eq!(rec["diagnosis"], "slow_prestop", "{rec:#}");
}

/// S16: a fast preStop hook and a graceful app: `graceful`, with the hook shown.
#[test]
fn s16_fast_prestop_graceful_app() {
    let k = Kubelet::start();
    let agent = k8s_agent(&k);
    let mut p = k.run_pod(PodSpec {
        termination_grace_s: 10,
        ..PodSpec::new("web-0", "shop")
    });
    let id = k.start_container(
        &mut p,
        &ContainerSpec::new("web", &["/bin/victim", "--handle", "TERM:0:100"]),
    );
    wait_handles_term(k.init_pid(&id, false));
    k.stop_with_prestop(&id, &["/bin/true"], 10);
    k.remove_pod(&p);
    let rec = pod_stop(&agent, &p);
    let c = member(&rec, "web");
    assert_eq!(c["diagnosis"], "graceful", "{c:#}");
    assert_eq!(c["prestop"]["path"], "/bin/true", "{c:#}");
    assert!(f64_of(&c["prestop_s"]) < 1.0, "{c:#}");
    assert_eq!(c["killed"], false, "{c:#}");
    assert_eq!(rec["diagnosis"], "graceful", "{rec:#}");
}

/// S19: an exec probe every second, then a normal stop: no probe is taken for a preStop hook.
#[test]
fn s19_exec_probes_are_not_a_prestop() {
    let k = Kubelet::start();
    let agent = k8s_agent(&k);
    let mut p = k.run_pod(PodSpec {
        termination_grace_s: 5,
        ..PodSpec::new("cache-0", "shop")
    });
    let id = k.start_container(
        &mut p,
        &ContainerSpec::new("cache", &["/bin/victim", "--handle", "TERM:0:100"]),
    );
    wait_handles_term(k.init_pid(&id, false));
    for _ in 0..4 {
        assert_eq!(
            k.exec_sync(&id, &["/bin/cat", "/proc/self/stat"], 5),
            Some(0)
        );
        std::thread::sleep(std::time::Duration::from_millis(1000));
    }
    k.delete_pod(&p);
    let rec = pod_stop(&agent, &p);
    let c = member(&rec, "cache");
    assert_eq!(c["prestop"], Value::Null, "{c:#}");
    assert_eq!(c["diagnosis"], "graceful", "{c:#}");
    // The probe's runs are execs of the container all the same (the last one is within the
    // second before the stop signal).
    assert!(
        execs(c).iter().all(|(comm, _)| comm == "cat"),
        "only the probe: {c:#}"
    );
}
