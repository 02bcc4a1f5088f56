//! Kubernetes without a cluster: plays kubelet against a private containerd over its CRI gRPC
//! socket (the `k8s-cri` client), with kubelet's call order and the metadata, labels,
//! annotations and cgroup parents it sets, and registry-free images written as OCI layouts.
//!
//! [`Kubelet::start`] starts the daemon (CRI plugin on), builds a busybox root filesystem with
//! the test helpers and imports the sandbox (pause) image and a busybox image. A [`Pod`] is a
//! sandbox plus containers; [`Kubelet::delete_pod`] stops it the way kubelet deletes a pod
//! (every container's `StopContainer` with the grace period, in parallel, then
//! `StopPodSandbox` and `RemovePodSandbox`). Everything created (pods, images, the pod cgroups,
//! runc state, the daemon) is removed on drop, also when the test fails; every call is bounded.
use std::{
    cell::RefCell,
    collections::HashMap,
    fs,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use hyper_util::rt::TokioIo;
use k8s_cri::v1::{self as cri, runtime_service_client::RuntimeServiceClient};
use tonic::transport::{Channel, Endpoint, Uri};

use crate::{
    oci::{sha256_hex, write_oci_archive, ImageSpec},
    runtime::{busybox_rootfs, remove_cgroup_tree, Containerd, SANDBOX_IMAGE},
    TempDir,
};

/// The busybox image (with `/bin/victim` and `/bin/pause`) containers run by default.
pub const BUSYBOX_IMAGE: &str = "localhost/sigtrace-test/busybox:1";

/// Bound on a CRI call, on top of any stop timeout it carries.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// How a pod's cgroup parent is spelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CgroupDriver {
    /// `/kubepods/<qos>/pod<uid>` (no QoS segment for guaranteed pods).
    Cgroupfs,
    /// `/kubepods.slice/kubepods-<qos>.slice/kubepods-<qos>-pod<uid with _>.slice`, as a plain
    /// path (there is no systemd here).
    Systemd,
}

/// What kubelet knows of a pod before it starts it.
#[derive(Clone, Debug)]
pub struct PodSpec {
    pub name: String,
    pub namespace: String,
    pub uid: String,
    /// "guaranteed", "burstable" or "besteffort".
    pub qos: &'static str,
    pub driver: CgroupDriver,
    pub host_pid: bool,
    pub labels: Vec<(String, String)>,
    pub termination_grace_s: i64,
}

impl PodSpec {
    /// A pod with a fresh uid, the cgroupfs driver, burstable QoS and a 30 s grace.
    pub fn new(name: &str, namespace: &str) -> Self {
        let n = std::process::id() as u128 * 1_000_003
            + std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos();
        let h = sha256_hex(format!("{name}/{namespace}/{n}").as_bytes());
        let uid = format!(
            "{}-{}-4{}-8{}-{}",
            &h[..8],
            &h[8..12],
            &h[13..16],
            &h[17..20],
            &h[20..32]
        );
        Self {
            name: name.into(),
            namespace: namespace.into(),
            uid,
            qos: "burstable",
            driver: CgroupDriver::Cgroupfs,
            host_pid: false,
            labels: Vec::new(),
            termination_grace_s: 30,
        }
    }

    /// The cgroup parent kubelet passes for this pod.
    pub fn cgroup_parent(&self) -> String {
        match (self.driver, self.qos) {
            (CgroupDriver::Cgroupfs, "guaranteed") => format!("/kubepods/pod{}", self.uid),
            (CgroupDriver::Cgroupfs, q) => format!("/kubepods/{q}/pod{}", self.uid),
            (CgroupDriver::Systemd, "guaranteed") => format!(
                "/kubepods.slice/kubepods-pod{}.slice",
                self.uid.replace('-', "_")
            ),
            (CgroupDriver::Systemd, q) => format!(
                "/kubepods.slice/kubepods-{q}.slice/kubepods-{q}-pod{}.slice",
                self.uid.replace('-', "_")
            ),
        }
    }

    /// Where a container of this pod lands (v2 path). With a `….slice` parent, containerd asks
    /// runc for the systemd form `<pod slice>:cri-containerd:<id>`, which runc's cgroupfs
    /// driver (there is no systemd here) creates literally at the root of every hierarchy.
    pub fn container_cgroup(&self, id: &str) -> String {
        let parent = self.cgroup_parent();
        match self.driver {
            CgroupDriver::Cgroupfs => format!("{parent}/{id}"),
            CgroupDriver::Systemd => {
                let slice = parent.rsplit('/').next().unwrap_or_default();
                format!("/{slice}:cri-containerd:{id}")
            }
        }
    }

    fn namespace_options(&self) -> cri::NamespaceOption {
        cri::NamespaceOption {
            network: cri::NamespaceMode::Node as i32,
            pid: if self.host_pid {
                cri::NamespaceMode::Node
            } else {
                cri::NamespaceMode::Container
            } as i32,
            ipc: cri::NamespaceMode::Pod as i32,
            ..Default::default()
        }
    }
}

/// A container as kubelet creates it (the fields the tests need).
#[derive(Clone, Debug, Default)]
pub struct ContainerSpec {
    pub name: String,
    pub image: String,
    pub command: Vec<String>,
    pub args: Vec<String>,
    pub envs: Vec<(String, String)>,
    pub mounts: Vec<cri::Mount>,
    /// Extra security settings (kubelet derives them from the pod's securityContext).
    pub security: Option<cri::LinuxContainerSecurityContext>,
    /// The JSON of `lifecycle.preStop`, which kubelet writes as the container's
    /// `io.kubernetes.container.preStopHandler` annotation.
    pub prestop: Option<String>,
}

impl ContainerSpec {
    /// A busybox-image container running `command`.
    pub fn new(name: &str, command: &[&str]) -> Self {
        Self {
            name: name.into(),
            image: BUSYBOX_IMAGE.into(),
            command: command.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }
}

/// A running pod.
pub struct Pod {
    pub spec: PodSpec,
    pub sandbox_id: String,
    /// (name, id) of its containers, in creation order.
    pub containers: Vec<(String, String)>,
    pub log_dir: PathBuf,
}

impl Pod {
    pub fn container_id(&self, name: &str) -> &str {
        &self
            .containers
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no container {name}"))
            .1
    }
}

/// kubelet, played against a private containerd.
pub struct Kubelet {
    rt: tokio::runtime::Runtime,
    client: RuntimeServiceClient<Channel>,
    /// Root filesystem the harness's images are built from.
    pub rootfs: PathBuf,
    images_dir: TempDir,
    logs: TempDir,
    sandboxes: RefCell<Vec<String>>,
    images: RefCell<Vec<String>>,
    cgroups: RefCell<Vec<String>>,
    // Dropped last: the daemon outlives the cleanup calls above.
    pub containerd: Containerd,
}

impl Kubelet {
    pub fn start() -> Self {
        let containerd = Containerd::start_with_cri(true);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let socket = containerd.socket.clone();
        let channel = rt
            .block_on(async {
                Endpoint::try_from("http://[::]:0")
                    .unwrap()
                    .connect_timeout(Duration::from_secs(10))
                    .connect_with_connector(tower::service_fn(move |_: Uri| {
                        let socket = socket.clone();
                        async move {
                            Ok::<_, std::io::Error>(TokioIo::new(
                                tokio::net::UnixStream::connect(socket).await?,
                            ))
                        }
                    }))
                    .await
            })
            .expect("connecting to containerd's CRI socket");
        let images_dir = TempDir::new("cri-images");
        let rootfs = busybox_rootfs(images_dir.path());
        let me = Self {
            rt,
            client: RuntimeServiceClient::new(channel),
            rootfs,
            images_dir,
            logs: TempDir::new("cri-logs"),
            sandboxes: RefCell::new(Vec::new()),
            images: RefCell::new(Vec::new()),
            cgroups: RefCell::new(Vec::new()),
            containerd,
        };
        let rootfs = me.rootfs.clone();
        me.import(&ImageSpec {
            name: SANDBOX_IMAGE,
            rootfs: &rootfs,
            entrypoint: &["/bin/pause"],
            cmd: &[],
            stop_signal: None,
        });
        me.import(&ImageSpec {
            name: BUSYBOX_IMAGE,
            rootfs: &rootfs,
            entrypoint: &[],
            cmd: &["/bin/sh"],
            stop_signal: None,
        });
        me
    }

    /// The containerd state directory (bundles) the agent reads.
    pub fn state_dir(&self) -> &Path {
        &self.containerd.state
    }

    /// Writes and imports an image into containerd's `k8s.io` namespace.
    pub fn import(&self, spec: &ImageSpec) {
        let file = self
            .images_dir
            .path()
            .join(format!("{}.tar", sha256_hex(spec.name.as_bytes())));
        write_oci_archive(spec, &file);
        let out = self
            .containerd
            .ctr("k8s.io")
            .args(["images", "import"])
            .arg(&file)
            .output()
            .expect("ctr images import");
        assert!(
            out.status.success(),
            "importing {}: {}",
            spec.name,
            String::from_utf8_lossy(&out.stderr)
        );
        self.images.borrow_mut().push(spec.name.to_string());
        let _ = fs::remove_file(file);
    }

    fn call<T, F>(&self, what: &str, extra: Duration, f: F) -> T
    where
        F: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        self.try_call(extra, f)
            .unwrap_or_else(|e| panic!("CRI {what}: {e}"))
    }

    fn try_call<T, F>(&self, extra: Duration, f: F) -> Result<T, String>
    where
        F: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        match self
            .rt
            .block_on(async { tokio::time::timeout(CALL_TIMEOUT + extra, f).await })
        {
            Ok(Ok(r)) => Ok(r.into_inner()),
            Ok(Err(status)) => Err(format!("{status}")),
            Err(_) => Err("timed out".into()),
        }
    }

    /// `RunPodSandbox` with kubelet's metadata, labels, annotations, host network and the
    /// pod's cgroup parent.
    pub fn run_pod(&self, spec: PodSpec) -> Pod {
        let log_dir = self
            .logs
            .path()
            .join(format!("{}_{}_{}", spec.namespace, spec.name, spec.uid));
        fs::create_dir_all(&log_dir).unwrap();
        let mut labels: HashMap<String, String> = spec.labels.iter().cloned().collect();
        labels.insert("io.kubernetes.pod.name".into(), spec.name.clone());
        labels.insert("io.kubernetes.pod.namespace".into(), spec.namespace.clone());
        labels.insert("io.kubernetes.pod.uid".into(), spec.uid.clone());
        let annotations = HashMap::from([
            ("kubernetes.io/config.source".to_string(), "api".to_string()),
            (
                "kubernetes.io/config.seen".to_string(),
                "2026-11-29T00:00:00Z".to_string(),
            ),
        ]);
        let config = cri::PodSandboxConfig {
            metadata: Some(cri::PodSandboxMetadata {
                name: spec.name.clone(),
                uid: spec.uid.clone(),
                namespace: spec.namespace.clone(),
                attempt: 0,
            }),
            // kubelet sets no hostname for host-network pods (they keep the node's).
            log_directory: log_dir.display().to_string(),
            labels,
            annotations,
            linux: Some(cri::LinuxPodSandboxConfig {
                cgroup_parent: spec.cgroup_parent(),
                security_context: Some(cri::LinuxSandboxSecurityContext {
                    namespace_options: Some(spec.namespace_options()),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        self.cgroups.borrow_mut().push(spec.cgroup_parent());
        let mut c = self.client.clone();
        let resp = self.call("RunPodSandbox", Duration::ZERO, async move {
            c.run_pod_sandbox(cri::RunPodSandboxRequest {
                config: Some(config),
                runtime_handler: String::new(),
            })
            .await
        });
        self.sandboxes
            .borrow_mut()
            .push(resp.pod_sandbox_id.clone());
        Pod {
            spec,
            sandbox_id: resp.pod_sandbox_id,
            containers: Vec::new(),
            log_dir,
        }
    }

    fn sandbox_config(&self, pod: &Pod) -> cri::PodSandboxConfig {
        let mut c = self.client.clone();
        let id = pod.sandbox_id.clone();
        // kubelet passes the sandbox config again; containerd needs its metadata and linux part.
        let status = self.call("PodSandboxStatus", Duration::ZERO, async move {
            c.pod_sandbox_status(cri::PodSandboxStatusRequest {
                pod_sandbox_id: id,
                verbose: false,
            })
            .await
        });
        let st = status.status.expect("sandbox status");
        cri::PodSandboxConfig {
            metadata: st.metadata,
            log_directory: pod.log_dir.display().to_string(),
            labels: st.labels,
            annotations: st.annotations,
            linux: Some(cri::LinuxPodSandboxConfig {
                cgroup_parent: pod.spec.cgroup_parent(),
                security_context: Some(cri::LinuxSandboxSecurityContext {
                    namespace_options: Some(pod.spec.namespace_options()),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// `CreateContainer` (kubelet's labels and annotations) then `StartContainer`; returns the
    /// container id.
    pub fn start_container(&self, pod: &mut Pod, spec: &ContainerSpec) -> String {
        let labels = HashMap::from([
            (
                "io.kubernetes.container.name".to_string(),
                spec.name.clone(),
            ),
            ("io.kubernetes.pod.name".to_string(), pod.spec.name.clone()),
            (
                "io.kubernetes.pod.namespace".to_string(),
                pod.spec.namespace.clone(),
            ),
            ("io.kubernetes.pod.uid".to_string(), pod.spec.uid.clone()),
        ]);
        let mut annotations = HashMap::from([
            (
                "io.kubernetes.container.hash".to_string(),
                "1a2b3c4d".to_string(),
            ),
            (
                "io.kubernetes.container.restartCount".to_string(),
                "0".to_string(),
            ),
            (
                "io.kubernetes.container.terminationMessagePath".to_string(),
                "/dev/termination-log".to_string(),
            ),
            (
                "io.kubernetes.container.terminationMessagePolicy".to_string(),
                "File".to_string(),
            ),
            (
                "io.kubernetes.pod.terminationGracePeriod".to_string(),
                pod.spec.termination_grace_s.to_string(),
            ),
        ]);
        if let Some(hook) = &spec.prestop {
            annotations.insert(
                "io.kubernetes.container.preStopHandler".to_string(),
                hook.clone(),
            );
        }
        let mut security = spec.security.clone().unwrap_or_default();
        security.namespace_options = Some(pod.spec.namespace_options());
        let config = cri::ContainerConfig {
            metadata: Some(cri::ContainerMetadata {
                name: spec.name.clone(),
                attempt: 0,
            }),
            image: Some(cri::ImageSpec {
                image: spec.image.clone(),
                ..Default::default()
            }),
            command: spec.command.clone(),
            args: spec.args.clone(),
            envs: spec
                .envs
                .iter()
                .map(|(k, v)| cri::KeyValue {
                    key: k.clone(),
                    value: v.clone(),
                })
                .collect(),
            mounts: spec.mounts.clone(),
            labels,
            annotations,
            log_path: format!("{}/0.log", spec.name),
            linux: Some(cri::LinuxContainerConfig {
                resources: Some(cri::LinuxContainerResources {
                    cpu_shares: 2,
                    oom_score_adj: 1000,
                    ..Default::default()
                }),
                security_context: Some(security),
            }),
            ..Default::default()
        };
        let sandbox_config = self.sandbox_config(pod);
        let mut c = self.client.clone();
        let sandbox = pod.sandbox_id.clone();
        let created = self.call("CreateContainer", Duration::ZERO, async move {
            c.create_container(cri::CreateContainerRequest {
                pod_sandbox_id: sandbox,
                config: Some(config),
                sandbox_config: Some(sandbox_config),
            })
            .await
        });
        let id = created.container_id;
        let mut c = self.client.clone();
        let cid = id.clone();
        self.call("StartContainer", Duration::ZERO, async move {
            c.start_container(cri::StartContainerRequest { container_id: cid })
                .await
        });
        pod.containers.push((spec.name.clone(), id.clone()));
        id
    }

    /// `ContainerStatus`: its state and, once exited, its exit code.
    pub fn container_status(&self, id: &str) -> cri::ContainerStatus {
        let mut c = self.client.clone();
        let id = id.to_string();
        self.call("ContainerStatus", Duration::ZERO, async move {
            c.container_status(cri::ContainerStatusRequest {
                container_id: id,
                verbose: false,
            })
            .await
        })
        .status
        .expect("container status")
    }

    /// Host PID of a container's (or sandbox's) init, from the verbose status.
    pub fn init_pid(&self, id: &str, sandbox: bool) -> u32 {
        let mut c = self.client.clone();
        let id = id.to_string();
        let info = if sandbox {
            self.call("PodSandboxStatus", Duration::ZERO, async move {
                c.pod_sandbox_status(cri::PodSandboxStatusRequest {
                    pod_sandbox_id: id,
                    verbose: true,
                })
                .await
            })
            .info
        } else {
            self.call("ContainerStatus", Duration::ZERO, async move {
                c.container_status(cri::ContainerStatusRequest {
                    container_id: id,
                    verbose: true,
                })
                .await
            })
            .info
        };
        let v: serde_json::Value = serde_json::from_str(info.get("info").expect("verbose info"))
            .expect("verbose info is JSON");
        v["pid"].as_u64().expect("pid in verbose info") as u32
    }

    /// `StopContainer(id, timeout)`: the stop signal, up to `timeout_s`, then SIGKILL.
    pub fn stop_container(&self, id: &str, timeout_s: i64) {
        let mut c = self.client.clone();
        let id = id.to_string();
        self.call(
            "StopContainer",
            Duration::from_secs(timeout_s.max(0) as u64),
            async move {
                c.stop_container(cri::StopContainerRequest {
                    container_id: id,
                    timeout: timeout_s,
                })
                .await
            },
        );
    }

    /// `ExecSync`: runs `cmd` in the container (through `runc exec`), bounded by `timeout_s`;
    /// returns its exit code (`None` when the call timed out: the process is not killed).
    pub fn exec_sync(&self, id: &str, cmd: &[&str], timeout_s: i64) -> Option<i32> {
        let mut c = self.client.clone();
        let req = cri::ExecSyncRequest {
            container_id: id.to_string(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            timeout: timeout_s,
        };
        self.try_call(Duration::from_secs(timeout_s.max(0) as u64), async move {
            c.exec_sync(req).await
        })
        .ok()
        .map(|r| r.exit_code)
    }

    /// Stops a container the way kubelet does when it has a preStop exec hook: the hook
    /// through `ExecSync` with the grace period as its timeout, then `StopContainer` with
    /// what is left of the grace (kubelet counts whole seconds spent), at least 2 s. Returns
    /// the hook's wall time.
    pub fn stop_with_prestop(&self, id: &str, hook: &[&str], grace_s: i64) -> Duration {
        let t = std::time::Instant::now();
        self.exec_sync(id, hook, grace_s);
        let spent = t.elapsed();
        let left = (grace_s - spent.as_secs() as i64).max(2);
        self.stop_container(id, left);
        spent
    }

    /// A hook kubelet runs itself (the `sleep` action, or an `httpGet` request) that took
    /// `hook`, then `StopContainer` with what is left of the grace, at least 2 s.
    pub fn stop_after_kubelet_hook(&self, id: &str, hook: Duration, grace_s: i64) {
        let grace = Duration::from_secs(grace_s.max(0) as u64);
        let spent = hook.min(grace);
        self.rt.block_on(async { tokio::time::sleep(spent).await });
        let left = (grace_s - spent.as_secs() as i64).max(2);
        self.stop_container(id, left);
    }

    /// The CRI socket of the private containerd.
    pub fn socket(&self) -> &Path {
        &self.containerd.socket
    }

    /// A preStop exec hook that outlives the grace, the way kubelet runs it: `ExecSync` without
    /// a timeout, which kubelet stops waiting for after the whole grace (the call and the hook
    /// go on), then `StopContainer` with the 2 s minimum.
    pub fn stop_with_outliving_prestop(&self, id: &str, hook: &[&str], grace_s: i64) {
        let mut c = self.client.clone();
        let req = cri::ExecSyncRequest {
            container_id: id.to_string(),
            cmd: hook.iter().map(|s| s.to_string()).collect(),
            timeout: 0,
        };
        // Left running on the harness's (single-threaded) runtime, which drives it during
        // this wait and every later call: it ends when the hook does, or with the runtime.
        drop(self.rt.spawn(async move { c.exec_sync(req).await }));
        let grace = Duration::from_secs(grace_s.max(0) as u64);
        self.rt.block_on(async { tokio::time::sleep(grace).await });
        self.stop_container(id, 2);
    }

    /// `StopPodSandbox` (what is left gets SIGKILL) then `RemovePodSandbox`.
    pub fn remove_pod(&self, pod: &Pod) {
        self.stop_sandbox(&pod.sandbox_id)
            .unwrap_or_else(|e| panic!("CRI StopPodSandbox: {e}"));
        self.remove_sandbox(&pod.sandbox_id)
            .unwrap_or_else(|e| panic!("CRI RemovePodSandbox: {e}"));
        self.sandboxes.borrow_mut().retain(|s| s != &pod.sandbox_id);
    }

    /// Deletes a pod the way kubelet does: `StopContainer` of every container with the pod's
    /// grace period, in parallel, then `StopPodSandbox` and `RemovePodSandbox`. Returns each
    /// container's exit code (from `ContainerStatus` after its stop), by name.
    pub fn delete_pod(&self, pod: &Pod) -> HashMap<String, i32> {
        let grace = pod.spec.termination_grace_s;
        let stops = pod.containers.iter().map(|(_, id)| {
            let mut c = self.client.clone();
            let id = id.clone();
            async move {
                c.stop_container(cri::StopContainerRequest {
                    container_id: id,
                    timeout: grace,
                })
                .await
            }
        });
        let all = async move {
            let mut set = tokio::task::JoinSet::new();
            for s in stops {
                set.spawn(s);
            }
            let mut errors = Vec::new();
            while let Some(r) = set.join_next().await {
                if let Err(e) = r.expect("stop task") {
                    errors.push(e.to_string());
                }
            }
            errors
        };
        let bound = CALL_TIMEOUT + Duration::from_secs(grace.max(0) as u64);
        let errors = self
            .rt
            .block_on(async { tokio::time::timeout(bound, all).await })
            .expect("StopContainer calls timed out");
        assert!(errors.is_empty(), "CRI StopContainer: {errors:?}");
        let codes = pod
            .containers
            .iter()
            .map(|(name, id)| (name.clone(), self.container_status(id).exit_code))
            .collect();
        self.remove_pod(pod);
        codes
    }

    fn stop_sandbox(&self, id: &str) -> Result<cri::StopPodSandboxResponse, String> {
        let mut c = self.client.clone();
        let id = id.to_string();
        self.try_call(Duration::ZERO, async move {
            c.stop_pod_sandbox(cri::StopPodSandboxRequest { pod_sandbox_id: id })
                .await
        })
    }

    fn remove_sandbox(&self, id: &str) -> Result<cri::RemovePodSandboxResponse, String> {
        let mut c = self.client.clone();
        let id = id.to_string();
        self.try_call(Duration::ZERO, async move {
            c.remove_pod_sandbox(cri::RemovePodSandboxRequest { pod_sandbox_id: id })
                .await
        })
    }

    /// What the container printed (its CRI log file, without the time/stream prefixes).
    pub fn logs(&self, pod: &Pod, container: &str) -> String {
        let text =
            fs::read_to_string(pod.log_dir.join(container).join("0.log")).unwrap_or_default();
        text.lines()
            .filter_map(|l| l.splitn(4, ' ').nth(3))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Kubelet {
    fn drop(&mut self) {
        for id in self.sandboxes.take() {
            if let Err(e) = self.stop_sandbox(&id) {
                eprintln!("cleanup: StopPodSandbox {id}: {e}");
            }
            if let Err(e) = self.remove_sandbox(&id) {
                eprintln!("cleanup: RemovePodSandbox {id}: {e}");
            }
        }
        for image in self.images.take() {
            let _ = self
                .containerd
                .ctr("k8s.io")
                .args(["images", "rm", &image])
                .output();
        }
        for parent in self.cgroups.take() {
            remove_cgroup_tree(&parent);
            // The systemd-form leaves runc made at the roots (see `container_cgroup`).
            let slice = parent.rsplit('/').next().unwrap_or_default().to_string();
            if slice.ends_with(".slice") {
                for root in cgroup_roots() {
                    for e in fs::read_dir(&root).into_iter().flatten().flatten() {
                        let name = e.file_name().to_string_lossy().to_string();
                        if name.starts_with(&format!("{slice}:")) {
                            remove_cgroup_tree(&format!("/{name}"));
                        }
                    }
                }
            }
            // The QoS and kubepods levels above, when no other pod is left in them.
            let mut p = Path::new(&parent).parent();
            while let Some(dir) = p.filter(|d| d != &Path::new("/")) {
                remove_empty_cgroup(&dir.display().to_string());
                p = dir.parent();
            }
        }
    }
}

/// The roots of every cgroup hierarchy (v2 and the v1 controllers).
fn cgroup_roots() -> Vec<PathBuf> {
    let mut roots: Vec<PathBuf> = fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .collect();
    roots.push(PathBuf::from("/sys/fs/cgroup"));
    roots
}

/// Removes `/<rel>` in every cgroup hierarchy where it has no children left.
fn remove_empty_cgroup(rel: &str) {
    for root in cgroup_roots() {
        let _ = fs::remove_dir(root.join(rel.trim_start_matches('/')));
    }
}

/// Runs `cmd` and returns its stdout, failing with its stderr.
pub fn output(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
