//! Facts from the node's CRI, asked the way `crictl` does, against a private containerd driven
//! as kubelet drives it: the declared grace (`io.kubernetes.pod.terminationGracePeriod`), the
//! declared preStop hook (`io.kubernetes.container.preStopHandler`: exec, sleep, httpGet), the
//! pod's labels on its sandbox (the workload), the image's StopSignal; and the agent going on
//! from the runtime's files when the socket goes away.
use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tests::{
    cri::{ContainerSpec, Kubelet, PodSpec},
    metrics::{free_port, metrics_text, value, wait_metrics},
    oci::ImageSpec,
    records::{f64_of, k8s_cri_agent, member, pod_stop, process, wait_handles_term},
    wait_until, TempDir,
};

const APP_IMAGE: &str = "localhost/sigtrace-test/app:stopsignal";

/// A DaemonSet's pod (its labels are on the sandbox only), grace 5 s, an image whose config
/// says STOPSIGNAL SIGTERM, an app whose handler needs 4.3 s: the record carries the declared
/// grace (`cri`), `near_overrun`, no declared hook, the workload from the labels and the
/// image's stop signal. Then a Job's pod, typed from its `job-name` label.
#[test]
fn grace_labels_and_stop_signal_come_from_the_cri() {
    let k = Kubelet::start();
    let rootfs = k.rootfs.clone();
    k.import(&ImageSpec {
        name: APP_IMAGE,
        rootfs: &rootfs,
        entrypoint: &[],
        cmd: &["/bin/sh"],
        stop_signal: Some("SIGTERM"),
    });
    let agent = k8s_cri_agent(&k, &[]);
    let mut p = k.run_pod(PodSpec {
        termination_grace_s: 5,
        labels: vec![
            ("controller-revision-hash".into(), "5d8f7c9b6".into()),
            ("pod-template-generation".into(), "3".into()),
        ],
        ..PodSpec::new("node-agent-x7k2p", "ops")
    });
    let id = k.start_container(
        &mut p,
        &ContainerSpec {
            image: APP_IMAGE.into(),
            ..ContainerSpec::new("agent", &["/bin/victim", "--handle", "TERM:0:4300"])
        },
    );
    let init = k.init_pid(&id, false);
    wait_handles_term(init);
    k.delete_pod(&p);
    let rec = pod_stop(&agent, &p);
    assert_eq!(rec["workload"], "node-agent", "{rec:#}");
    assert_eq!(rec["workload_type"], "daemonset", "{rec:#}");
    assert_eq!(rec["workload_source"], "labels", "{rec:#}");
    let c = member(&rec, "agent");
    assert_eq!(c["termination_grace_source"], "cri", "{c:#}");
    assert_eq!(f64_of(&c["termination_grace_s"]), 5.0, "{c:#}");
    assert_eq!(c["container"]["facts_source"], "cri", "{c:#}");
    assert_eq!(c["container"]["prestop_hook"]["kind"], "none", "{c:#}");
    assert_eq!(c["container"]["stop_signal"], "SIGTERM", "{c:#}");
    assert_eq!(c["diagnosis"], "graceful", "{c:#}");
    let app = process(c, init);
    assert_eq!(app["near_overrun"], true, "{app:#}");
    assert_eq!(app["grace_source"], "declared", "{app:#}");

    let mut job = k.run_pod(PodSpec {
        termination_grace_s: 5,
        labels: vec![
            ("job-name".into(), "migrate-db".into()),
            ("batch.kubernetes.io/job-name".into(), "migrate-db".into()),
        ],
        ..PodSpec::new("migrate-db-k2x7p", "ops")
    });
    let id = k.start_container(
        &mut job,
        // A handler of 300 ms: this test is about the labels, and a container gone within a
        // few ms of its first signal is not always attributed yet.
        &ContainerSpec::new("migrate", &["/bin/victim", "--handle", "TERM:0:300"]),
    );
    wait_handles_term(k.init_pid(&id, false));
    k.delete_pod(&job);
    let rec = pod_stop(&agent, &job);
    assert_eq!(rec["workload"], "migrate-db", "{rec:#}");
    assert_eq!(rec["workload_type"], "job", "{rec:#}");
    assert_eq!(rec["workload_source"], "labels", "{rec:#}");
}

/// kubelet's `sleep` preStop action (3 s of a 5 s grace): no exec, the hook's phase is its
/// declared seconds, and the app's 3 s handler gets the 2 s left: `slow_prestop` naming it.
#[test]
fn a_declared_sleep_hook_is_its_seconds_of_the_grace() {
    let k = Kubelet::start();
    let agent = k8s_cri_agent(&k, &[]);
    let mut p = k.run_pod(PodSpec {
        termination_grace_s: 5,
        ..PodSpec::new("shop-api-7d4b9c8f6d-s1p2q", "shop")
    });
    let id = k.start_container(
        &mut p,
        &ContainerSpec {
            prestop: Some(r#"{"sleep":{"seconds":3}}"#.into()),
            ..ContainerSpec::new("api", &["/bin/victim", "--handle", "TERM:0:3000"])
        },
    );
    let init = k.init_pid(&id, false);
    wait_handles_term(init);
    k.stop_after_kubelet_hook(&id, Duration::from_secs(3), 5);
    k.remove_pod(&p);
    let rec = pod_stop(&agent, &p);
    let c = member(&rec, "api");
    assert_eq!(c["container"]["prestop_hook"]["kind"], "sleep", "{c:#}");
    assert_eq!(c["container"]["prestop_hook"]["seconds"], 3, "{c:#}");
    assert!(c["prestop"].is_null(), "no exec is the hook: {c:#}");
    assert_eq!(f64_of(&c["prestop_s"]), 3.0, "{c:#}");
    assert_eq!(c["diagnosis"], "slow_prestop", "{c:#}");
    let hint = c["hint"].as_str().unwrap_or_default();
    assert!(
        hint.starts_with("the preStop hook (sleep 3 s) took 3.0 s of the 5 s grace"),
        "{hint}"
    );
    assert_eq!(process(c, init)["diagnosis"], "slow_handler", "{c:#}");
}

/// An httpGet hook is kubelet's request: named in the record, no exec taken for it, its
/// duration not claimed; an exec probe during the stop is not the hook either.
#[test]
fn an_http_get_hook_is_named_and_no_exec_is_taken_for_it() {
    let k = Kubelet::start();
    let agent = k8s_cri_agent(&k, &[]);
    let mut p = k.run_pod(PodSpec {
        termination_grace_s: 10,
        ..PodSpec::new("shop-web-7d4b9c8f6d-h7t9p", "shop")
    });
    let id = k.start_container(
        &mut p,
        &ContainerSpec {
            prestop: Some(r#"{"httpGet":{"path":"/drain","port":8080,"scheme":"HTTP"}}"#.into()),
            ..ContainerSpec::new("web", &["/bin/victim", "--handle", "TERM:0:200"])
        },
    );
    let init = k.init_pid(&id, false);
    wait_handles_term(init);
    // An exec (a probe, say) just before the stop, which timing alone would take for the hook.
    assert_eq!(k.exec_sync(&id, &["/bin/true"], 5), Some(0));
    k.stop_after_kubelet_hook(&id, Duration::from_millis(300), 10);
    k.remove_pod(&p);
    let rec = pod_stop(&agent, &p);
    let c = member(&rec, "web");
    let hook = &c["container"]["prestop_hook"];
    assert_eq!(hook["kind"], "http_get", "{c:#}");
    assert_eq!(
        (&hook["path"], &hook["port"]),
        (&Value::from("/drain"), &Value::from("8080"))
    );
    assert!(c["prestop"].is_null() && c["prestop_s"].is_null(), "{c:#}");
    assert_eq!(c["diagnosis"], "graceful", "{c:#}");
}

/// A declared exec hook (`sleep 30`) outliving a 4 s grace: matched by its command, and
/// `slow_prestop` with the declared grace.
#[test]
fn a_declared_exec_hook_outliving_the_grace_is_slow_prestop() {
    let k = Kubelet::start();
    let agent = k8s_cri_agent(&k, &[]);
    let mut p = k.run_pod(PodSpec {
        termination_grace_s: 4,
        ..PodSpec::new("shop-api-7d4b9c8f6d-e4x8w", "shop")
    });
    let id = k.start_container(
        &mut p,
        &ContainerSpec {
            prestop: Some(r#"{"exec":{"command":["/bin/sleep","30"]}}"#.into()),
            ..ContainerSpec::new("api", &["/bin/victim", "--handle", "TERM:0:0"])
        },
    );
    let init = k.init_pid(&id, false);
    wait_handles_term(init);
    k.stop_with_outliving_prestop(&id, &["/bin/sleep", "30"], 4);
    k.remove_pod(&p);
    let rec = pod_stop(&agent, &p);
    let c = member(&rec, "api");
    assert_eq!(c["prestop"]["comm"], "sleep", "{c:#}");
    // About the grace (the exec starts a few tens of ms after the call).
    let pre_s = f64_of(&c["prestop_s"]);
    assert!((3.5..5.5).contains(&pre_s), "preStop {pre_s} s: {c:#}");
    assert_eq!(c["termination_grace_source"], "cri", "{c:#}");
    assert_eq!(f64_of(&c["termination_grace_s"]), 4.0, "{c:#}");
    assert_eq!(c["diagnosis"], "slow_prestop", "{c:#}");
    let hint = c["hint"].as_str().unwrap_or_default();
    assert!(
        hint.starts_with(
            "the preStop hook (exec sleep) was still running when kubelet gave up on it after \
             the whole 4 s grace"
        ),
        "{hint}"
    );
    assert_eq!(process(c, init)["diagnosis"], "graceful", "{c:#}");
}

/// A unix-socket relay in front of containerd's socket, which can be taken away: the socket
/// file removed and every relayed connection closed.
struct Relay {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<UnixStream>>>,
}

impl Relay {
    fn start(path: &Path, upstream: &Path) -> Self {
        let listener = UnixListener::bind(path).expect("relay socket");
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let conns = Arc::new(Mutex::new(Vec::new()));
        let (s, c, up) = (stop.clone(), conns.clone(), upstream.to_owned());
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                let Ok((client, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                };
                client.set_nonblocking(false).unwrap();
                let Ok(server) = UnixStream::connect(&up) else {
                    continue;
                };
                let mut list = c.lock().unwrap();
                list.push(client.try_clone().unwrap());
                list.push(server.try_clone().unwrap());
                pipe(client.try_clone().unwrap(), server.try_clone().unwrap());
                pipe(server, client);
            }
        });
        Self {
            path: path.to_owned(),
            stop,
            conns,
        }
    }

    fn take_away(&self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = std::fs::remove_file(&self.path);
        for c in self.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.take_away();
    }
}

fn pipe(mut from: UnixStream, mut to: UnixStream) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 << 10];
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 || to.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = to.shutdown(std::net::Shutdown::Both);
    });
}

/// The CRI socket goes away while the agent runs: later stops are still recorded and
/// attributed from containerd's files (grace inferred, no declared facts), the failure is
/// counted in `sigtrace_metadata_errors_total{source="cri"}`, `sigtrace_metadata_up` drops to
/// 0, and the agent logs it once.
#[test]
fn losing_the_cri_socket_degrades_to_the_runtime_files() {
    let k = Kubelet::start();
    let dir = TempDir::new("cri-relay");
    let socket = dir.path().join("cri.sock");
    let relay = Relay::start(&socket, k.socket());
    let addr = format!("127.0.0.1:{}", free_port());
    let state = k.state_dir().display().to_string();
    let agent = tests::records::agent(&[
        "--containerd-state",
        &state,
        "--cri-socket",
        socket.to_str().unwrap(),
        "--metrics",
        &addr,
    ]);
    let run = |name: &str| {
        let mut p = k.run_pod(PodSpec {
            termination_grace_s: 3,
            ..PodSpec::new(name, "shop")
        });
        let id = k.start_container(
            &mut p,
            &ContainerSpec::new("api", &["/bin/victim", "--handle", "TERM:0:5000"]),
        );
        wait_handles_term(k.init_pid(&id, false));
        k.delete_pod(&p);
        pod_stop(&agent, &p)
    };
    let before = run("shop-api-7d4b9c8f6d-b4f0r");
    let c = member(&before, "api");
    assert_eq!(c["termination_grace_source"], "cri", "{c:#}");
    wait_metrics(&addr, "the CRI up", |t| {
        value(t, "sigtrace_metadata_up", &[("source", "cri")]) == Some(1.0)
    });

    relay.take_away();
    let after = run("shop-api-7d4b9c8f6d-a2f7e");
    let c = member(&after, "api");
    assert_eq!(
        c["container"]["name"], "api",
        "attributed from the files: {c:#}"
    );
    assert!(c["container"]["facts_source"].is_null(), "{c:#}");
    assert_eq!(c["termination_grace_source"], "inferred", "{c:#}");
    assert_eq!(c["killed"], true, "{c:#}");
    let text = wait_metrics(&addr, "CRI errors counted", |t| {
        value(t, "sigtrace_metadata_errors_total", &[("source", "cri")]).unwrap_or(0.0) >= 1.0
            && value(t, "sigtrace_metadata_up", &[("source", "cri")]) == Some(0.0)
    });
    assert!(
        value(
            &text,
            "sigtrace_metadata_errors_total",
            &[("source", "cri")]
        )
        .unwrap_or(0.0)
            >= 1.0,
        "{}",
        metrics_text(&addr)
    );
    let warned = |log: &str| log.matches("until it answers again").count();
    wait_until(Duration::from_secs(5), || warned(&agent.stderr()) > 0);
    let log = agent.stderr();
    assert_eq!(warned(&log), 1, "one log line for the failure: {log}");
}
