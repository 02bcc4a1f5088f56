//! The agent under its own DaemonSet: the sigtrace binary runs as a CRI container built from
//! `deploy/kustomize/base/daemonset.yaml` (read here: args, env, capabilities, read-only root
//! filesystem, user, hostPID, every hostPath mount with its read-only flag, the grace period),
//! with an image built from the binary and `deploy/Dockerfile`'s entrypoint and stop signal.
//! It must attach, attribute a stop of another pod, serve `/metrics`, and exit 0 within the
//! manifest's `terminationGracePeriodSeconds` when stopped.
//!
//! Two things differ from a cluster, on purpose and only these: the pod uses the host network
//! (there is no CNI here; the metrics port is the manifest's), and hostPaths that name a real
//! runtime's state or the journal are mapped to the test's private containerd state and to
//! temporary directories, so that the test reads its own containerd and writes nothing on the
//! host.
use std::{
    collections::HashMap,
    fs,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use k8s_cri::v1 as cri;
use serde_json::Value;
use tests::{
    cri::{ContainerSpec, Kubelet, PodSpec},
    metrics::http_get,
    oci::ImageSpec,
    records::wait_handles_term,
    runtime::{busybox_rootfs, copy_binary},
    sigtrace_bin, wait_until, workspace, TempDir,
};

const AGENT_IMAGE: &str = "localhost/sigtrace-test/sigtrace:ci";
const NODE: &str = "node-ci-1";

/// (nice, scheduling policy) of the agent's thread that empties the ring buffer.
fn ring_thread_sched(pid: u32) -> Option<(i64, u32)> {
    let tasks = fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    tasks.flatten().find_map(|t| {
        let comm = fs::read_to_string(t.path().join("comm")).ok()?;
        if comm.trim() != "sigtrace-ring" {
            return None;
        }
        let stat = fs::read_to_string(t.path().join("stat")).ok()?;
        // Fields after the parenthesised comm: state is field 3, nice 19, policy 41.
        let rest: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        Some((rest.get(16)?.parse().ok()?, rest.get(38)?.parse().ok()?))
    })
}

fn manifest() -> Value {
    let path = workspace().join("deploy/kustomize/base/daemonset.yaml");
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml_ng::from_str(&text).expect("daemonset.yaml parses")
}

/// `ENTRYPOINT`, `CMD` and `STOPSIGNAL` of the Dockerfile's final stage.
fn dockerfile() -> (Vec<String>, Vec<String>, Option<String>) {
    let text = fs::read_to_string(workspace().join("deploy/Dockerfile")).expect("Dockerfile");
    let (mut entry, mut cmd, mut stop) = (Vec::new(), Vec::new(), None);
    for line in text.lines() {
        let json = |rest: &str| -> Vec<String> { serde_json::from_str(rest.trim()).unwrap() };
        if let Some(rest) = line.strip_prefix("ENTRYPOINT ") {
            entry = json(rest);
        } else if let Some(rest) = line.strip_prefix("CMD ") {
            cmd = json(rest);
        } else if let Some(rest) = line.strip_prefix("STOPSIGNAL ") {
            stop = Some(rest.trim().to_string());
        }
    }
    assert!(!entry.is_empty(), "the Dockerfile has an ENTRYPOINT");
    (entry, cmd, stop)
}

/// kubelet's `$(VAR)` expansion of container args.
fn expand(arg: &str, env: &HashMap<String, String>) -> String {
    let mut out = arg.to_string();
    for (k, v) in env {
        out = out.replace(&format!("$({k})"), v);
    }
    out
}

/// kubelet's defaults for an unprivileged container.
fn masked_and_readonly() -> (Vec<String>, Vec<String>) {
    let s = |v: &[&str]| v.iter().map(|p| p.to_string()).collect();
    (
        s(&[
            "/proc/acpi",
            "/proc/asound",
            "/proc/kcore",
            "/proc/keys",
            "/proc/latency_stats",
            "/proc/timer_list",
            "/proc/timer_stats",
            "/proc/sched_debug",
            "/proc/scsi",
            "/sys/firmware",
            "/sys/devices/virtual/powercap",
        ]),
        s(&[
            "/proc/bus",
            "/proc/fs",
            "/proc/irq",
            "/proc/sys",
            "/proc/sysrq-trigger",
        ]),
    )
}

/// The manifest's securityContext as kubelet hands it to the runtime.
fn security(sc: &Value) -> cri::LinuxContainerSecurityContext {
    let names = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    let profile = |v: &Value| {
        let t = match v["type"].as_str() {
            Some("Unconfined") => cri::security_profile::ProfileType::Unconfined,
            Some("RuntimeDefault") | None => cri::security_profile::ProfileType::RuntimeDefault,
            Some(other) => panic!("profile type {other} is not handled by this test"),
        };
        Some(cri::SecurityProfile {
            profile_type: t as i32,
            localhost_ref: String::new(),
        })
    };
    let (masked, readonly) = masked_and_readonly();
    let privileged = sc["privileged"].as_bool().unwrap_or(false);
    cri::LinuxContainerSecurityContext {
        capabilities: Some(cri::Capability {
            add_capabilities: names(&sc["capabilities"]["add"]),
            drop_capabilities: names(&sc["capabilities"]["drop"]),
            add_ambient_capabilities: Vec::new(),
        }),
        privileged,
        run_as_user: sc["runAsUser"]
            .as_i64()
            .map(|v| cri::Int64Value { value: v }),
        run_as_group: sc["runAsGroup"]
            .as_i64()
            .map(|v| cri::Int64Value { value: v }),
        readonly_rootfs: sc["readOnlyRootFilesystem"].as_bool().unwrap_or(false),
        no_new_privs: !sc["allowPrivilegeEscalation"].as_bool().unwrap_or(true),
        seccomp: profile(&sc["seccompProfile"]),
        apparmor: profile(&sc["appArmorProfile"]),
        masked_paths: if privileged { Vec::new() } else { masked },
        readonly_paths: if privileged { Vec::new() } else { readonly },
        ..Default::default()
    }
}

/// hostPaths that would name the node's real runtime state or journal, mapped to the test's.
fn host_path(path: &str, state: &Path, scratch: &Path) -> PathBuf {
    let mapped = match path {
        // The private containerd's state, which holds its socket as the node's does.
        "/run/containerd" => return state.to_owned(),
        "/run/crio" => "crio-run",
        "/run/containers" => "crio-state",
        "/var/lib/docker/containers" => "docker-containers",
        "/var/lib/sigtrace" => "journal",
        // Kernel interfaces are used as they are.
        p if p.starts_with("/sys/") => return PathBuf::from(p),
        other => panic!("hostPath {other} is new: decide here how the test provides it"),
    };
    let dir = scratch.join(mapped);
    fs::create_dir_all(&dir).unwrap();
    dir
}

fn agent_lines(k: &Kubelet, pod: &tests::cri::Pod) -> Vec<Value> {
    k.logs(pod, "sigtrace")
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .collect()
}

#[test]
fn agent_runs_under_its_daemonset_manifest() {
    let ds = manifest();
    let spec = &ds["spec"]["template"]["spec"];
    let c = &spec["containers"][0];
    assert_eq!(c["name"], "sigtrace");
    let grace = spec["terminationGracePeriodSeconds"]
        .as_i64()
        .expect("terminationGracePeriodSeconds");

    let k = Kubelet::start();
    let scratch = TempDir::new("daemonset");
    // The image: the binary at the Dockerfile's entrypoint path, its config from the Dockerfile.
    let (entry, cmd, stop_signal) = dockerfile();
    let img = TempDir::new("agent-image");
    let rootfs = busybox_rootfs(img.path());
    copy_binary(&rootfs, &sigtrace_bin(), entry[0].trim_start_matches('/'));
    let (entry_s, cmd_s): (Vec<&str>, Vec<&str>) = (
        entry.iter().map(String::as_str).collect(),
        cmd.iter().map(String::as_str).collect(),
    );
    k.import(&ImageSpec {
        name: AGENT_IMAGE,
        rootfs: &rootfs,
        entrypoint: &entry_s,
        cmd: &cmd_s,
        stop_signal: stop_signal.as_deref(),
    });

    // env (fieldRef spec.nodeName is the node's name), then kubelet's $(VAR) expansion.
    let mut env = HashMap::new();
    for e in c["env"].as_array().into_iter().flatten() {
        let value = match (
            &e["value"],
            e["valueFrom"]["fieldRef"]["fieldPath"].as_str(),
        ) {
            (Value::String(v), _) => v.clone(),
            (_, Some("spec.nodeName")) => NODE.to_string(),
            (_, other) => panic!("env {e} ({other:?}) is not handled by this test"),
        };
        env.insert(e["name"].as_str().unwrap().to_string(), value);
    }
    let args: Vec<String> = c["args"]
        .as_array()
        .expect("args")
        .iter()
        .map(|a| expand(a.as_str().unwrap(), &env))
        .collect();
    let metrics_addr = args
        .iter()
        .skip_while(|a| *a != "--metrics")
        .nth(1)
        .expect("--metrics in the manifest's args")
        .replace("0.0.0.0", "127.0.0.1");

    // Mounts: every volumeMount, its volume's hostPath (mapped, see the module docs) or a
    // fresh directory for an emptyDir, with the manifest's read-only flag.
    let volumes: HashMap<&str, &Value> = spec["volumes"]
        .as_array()
        .expect("volumes")
        .iter()
        .map(|v| (v["name"].as_str().unwrap(), v))
        .collect();
    let mut mounts = Vec::new();
    let mut readonly = HashMap::new();
    for m in c["volumeMounts"].as_array().expect("volumeMounts") {
        let name = m["name"].as_str().unwrap();
        let v = volumes[name];
        let host = if let Some(p) = v["hostPath"]["path"].as_str() {
            host_path(p, k.state_dir(), scratch.path())
        } else if v.get("emptyDir").is_some() {
            let d = scratch.path().join(format!("empty-{name}"));
            fs::create_dir_all(&d).unwrap();
            d
        } else {
            panic!("volume {name} is neither hostPath nor emptyDir");
        };
        let ro = m["readOnly"].as_bool().unwrap_or(false);
        readonly.insert(m["mountPath"].as_str().unwrap().to_string(), ro);
        mounts.push(cri::Mount {
            container_path: m["mountPath"].as_str().unwrap().into(),
            host_path: host.display().to_string(),
            readonly: ro,
            ..Default::default()
        });
    }
    let journal = scratch.path().join("journal");

    let labels = ds["spec"]["template"]["metadata"]["labels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default();
    let mut agent_pod = k.run_pod(PodSpec {
        host_pid: spec["hostPID"].as_bool().unwrap_or(false),
        labels,
        termination_grace_s: grace,
        ..PodSpec::new(
            "sigtrace-k7d2q",
            ds["metadata"]["namespace"].as_str().unwrap(),
        )
    });
    let agent_id = k.start_container(
        &mut agent_pod,
        &ContainerSpec {
            name: "sigtrace".into(),
            image: AGENT_IMAGE.into(),
            args,
            envs: env.clone().into_iter().collect(),
            mounts,
            security: Some(security(&c["securityContext"])),
            ..Default::default()
        },
    );
    let exited =
        || k.container_status(&agent_id).state == cri::ContainerState::ContainerExited as i32;
    let ready = wait_until(Duration::from_secs(60), || {
        exited() || http_get(&metrics_addr, "/readyz").is_ok_and(|(code, _)| code == 200)
    }) && !exited();
    assert!(
        ready,
        "the agent never got ready under its manifest; it printed:\n{}\nstatus: {:?}",
        k.logs(&agent_pod, "sigtrace"),
        k.container_status(&agent_id).state
    );

    // The securityContext reached the process: exactly the added capabilities, no new
    // privileges, a read-only root filesystem, the host's PID namespace.
    let pid = k.init_pid(&agent_id, false);
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim_start_matches(':').trim().to_string())
            .unwrap_or_default()
    };
    let want: u64 = c["securityContext"]["capabilities"]["add"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| match n.as_str().unwrap() {
            "DAC_READ_SEARCH" => 1u64 << 2,
            "SYS_PTRACE" => 1 << 19,
            "SYS_ADMIN" => 1 << 21,
            "SYS_NICE" => 1 << 23,
            "SYS_RESOURCE" => 1 << 24,
            "PERFMON" => 1 << 38,
            "BPF" => 1 << 39,
            other => panic!("capability {other} is not known to this test"),
        })
        .sum();
    assert_eq!(
        u64::from_str_radix(&field("CapEff"), 16).unwrap(),
        want,
        "effective capabilities of the agent: {status}"
    );
    assert_eq!(field("NoNewPrivs"), "1", "{status}");
    // SYS_NICE reached the ring thread: real time where the container's cgroup has real-time
    // run time, else nice -10 (`--ring-priority`'s default).
    let raised = |r: Option<(i64, u32)>| {
        r.is_some_and(|(nice, policy)| policy == libc::SCHED_FIFO as u32 || nice == -10)
    };
    wait_until(Duration::from_secs(5), || raised(ring_thread_sched(pid)));
    let ring = ring_thread_sched(pid);
    assert!(
        raised(ring),
        "the ring thread's (nice, policy) under the manifest: {ring:?}; agent log:\n{}",
        k.logs(&agent_pod, "sigtrace")
    );
    let mountinfo = fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap();
    let root = mountinfo
        .lines()
        .find(|l| l.split(' ').nth(4) == Some("/"))
        .expect("a root mount");
    assert!(
        root.split(' ')
            .nth(5)
            .is_some_and(|o| o.split(',').any(|f| f == "ro")),
        "read-only root filesystem: {root}"
    );
    let ns = |p: &str| fs::read_link(format!("/proc/{p}/ns/pid")).unwrap();
    assert_eq!(ns(&pid.to_string()), ns("self"), "hostPID");

    // Another pod, stopped the way kubelet does it.
    let mut web = k.run_pod(PodSpec {
        termination_grace_s: 5,
        ..PodSpec::new("web-7d4b9c8f6d-x2k9p", "shop")
    });
    let web_id = k.start_container(
        &mut web,
        &ContainerSpec::new("app", &["/bin/victim", "--handle", "TERM:0:200"]),
    );
    wait_handles_term(k.init_pid(&web_id, false));
    k.delete_pod(&web);
    let mut rec = None;
    wait_until(Duration::from_secs(20), || {
        rec = agent_lines(&k, &agent_pod)
            .into_iter()
            .find(|l| l["type"] == "pod_stop" && l["pod_uid"] == web.spec.uid.as_str());
        rec.is_some()
    });
    let rec = rec.unwrap_or_else(|| {
        panic!(
            "the agent printed no pod_stop for the web pod:\n{}",
            k.logs(&agent_pod, "sigtrace")
        )
    });
    assert_eq!(rec["pod"], "web-7d4b9c8f6d-x2k9p", "{rec:#}");
    assert_eq!(rec["namespace"], "shop", "{rec:#}");
    assert_eq!(rec["workload"], "web", "{rec:#}");
    assert_eq!(rec["workload_type"], "deployment", "{rec:#}");
    let app = &rec["containers"][0];
    assert_eq!(app["container"]["name"], "app", "{rec:#}");
    assert_eq!(app["container"]["id"], web_id, "{rec:#}");
    assert_eq!(app["diagnosis"], "graceful", "{rec:#}");
    // The mounted CRI socket answered: the declared grace.
    assert_eq!(app["container"]["facts_source"], "cri", "{rec:#}");
    assert_eq!(app["termination_grace_source"], "cri", "{rec:#}");
    // Executable paths were readable (SYS_PTRACE): the sender is named.
    assert_eq!(app["sender"]["comm"], "runc", "{rec:#}");

    let (code, body) = http_get(&metrics_addr, "/metrics").expect("/metrics answers");
    assert_eq!(code, 200);
    let series = body
        .lines()
        .find(|l| {
            l.starts_with("sigtrace_container_stops_total{")
                && l.contains(r#"pod="web-7d4b9c8f6d-x2k9p""#)
        })
        .unwrap_or_else(|| panic!("no container stop series for the web pod:\n{body}"));
    for label in [
        r#"namespace="shop""#,
        r#"workload="web""#,
        r#"container="app""#,
        r#"diagnosis="graceful""#,
    ] {
        assert!(series.contains(label), "{label} in {series}");
    }
    assert!(
        body.contains(&format!(r#"node="{NODE}""#)),
        "the node name reached the agent through $(NODE_NAME)"
    );

    // Stopped like kubelet stops it: its stop signal, the manifest's grace, then SIGKILL.
    let t = Instant::now();
    k.stop_container(&agent_id, grace);
    let took = t.elapsed();
    let status = k.container_status(&agent_id);
    assert_eq!(
        status.exit_code,
        0,
        "the agent must exit 0 on its stop signal; it printed:\n{}",
        k.logs(&agent_pod, "sigtrace")
    );
    assert!(
        took < Duration::from_secs(grace as u64),
        "stopping took {took:?}, the grace is {grace} s"
    );
    // Its journal went to the mounted directory (the root filesystem is read-only).
    assert!(
        readonly.get("/var/lib/sigtrace") == Some(&false),
        "the journal mount is writable"
    );
    let journaled = fs::read_dir(&journal)
        .map(|d| {
            d.flatten()
                .any(|e| e.file_name().to_string_lossy().ends_with(".journal"))
        })
        .unwrap_or(false);
    assert!(
        journaled,
        "no journal file in the journal mount: {:?}",
        fs::read_dir(&journal).map(|d| d.flatten().map(|e| e.file_name()).collect::<Vec<_>>())
    );
    k.remove_pod(&agent_pod);
}
