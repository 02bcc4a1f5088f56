//! A read-only client of the node's CRI (containerd's or CRI-O's socket, the way `crictl`
//! asks): the declared grace, the declared preStop hook, the pod's labels and the image's stop
//! signal of each container ([`facts::CriFacts`]).
//!
//! It only reads: `ContainerStatus`, `PodSandboxStatus`, `ListPodSandbox` and `ImageStatus`.
//! The calls run on their own thread ("sigtrace-cri"), off the event path: [`CriSource::request`]
//! queues a container id (bounded; a full queue drops the request, which a later stop asks
//! again) and [`CriSource::answers`] hands back what arrived. Every call has a deadline. A
//! socket that is missing, refuses, times out or answers errors degrades to the runtimes'
//! files: the failure is counted ([`CriStats::errors`]) and logged once per change of state.
pub mod facts;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI8, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use facts::{image_stop_signal, CriFacts};
use hyper_util::rt::TokioIo;
use k8s_cri::v1 as cri;
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use tonic::transport::{Channel, Endpoint, Uri};
use tonic::Code;

/// The usual CRI sockets, in the order the default looks for them.
pub const DEFAULT_SOCKETS: &[&str] = &[
    "/run/containerd/containerd.sock",
    "/run/crio/crio.sock",
    "/var/run/crio/crio.sock",
    "/run/k3s/containerd/containerd.sock",
];

/// Requests waiting for the CRI thread.
const QUEUE: usize = 1024;
/// Deadline of one call.
pub const CALL_DEADLINE: Duration = Duration::from_secs(2);

/// The first of [`DEFAULT_SOCKETS`] that exists and is a socket.
pub fn find_socket() -> Option<PathBuf> {
    use std::os::unix::fs::FileTypeExt;
    DEFAULT_SOCKETS
        .iter()
        .map(PathBuf::from)
        .find(|p| std::fs::metadata(p).is_ok_and(|m| m.file_type().is_socket()))
}

/// What came back for one container id.
#[derive(Debug)]
pub struct Answer {
    pub id: String,
    /// `Ok(None)`: the CRI does not know the id (not a Kubernetes container). `Err`: the call
    /// failed (already counted).
    pub facts: Result<Option<CriFacts>, ()>,
}

/// The CRI's state, as the metrics show it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct CriStats {
    /// Calls that failed (transport, deadline, an error status other than NotFound).
    pub errors: u64,
    /// Requests dropped because the queue was full.
    pub dropped: u64,
    /// `Some(true)` after a call succeeded, `Some(false)` after one failed, `None` before any.
    pub up: Option<bool>,
}

#[derive(Debug, Default)]
struct Shared {
    errors: AtomicU64,
    dropped: AtomicU64,
    /// -1 unknown, 0 down, 1 up.
    up: AtomicI8,
}

/// The handle the container resolver keeps.
#[derive(Debug)]
pub struct CriSource {
    socket: PathBuf,
    requests: tokio::sync::mpsc::Sender<String>,
    answers: mpsc::Receiver<Answer>,
    shared: Arc<Shared>,
}

impl CriSource {
    /// Starts the client thread for `socket`. Connecting is lazy: a socket that is not there
    /// yet is tried again at each call.
    pub fn start(socket: &Path) -> std::io::Result<Self> {
        let (req_tx, req_rx) = tokio::sync::mpsc::channel(QUEUE);
        let (ans_tx, ans_rx) = mpsc::channel();
        let shared = Arc::new(Shared {
            up: AtomicI8::new(-1),
            ..Shared::default()
        });
        let worker = Worker {
            socket: socket.to_owned(),
            shared: shared.clone(),
            sandboxes: HashMap::new(),
            images: HashMap::new(),
        };
        std::thread::Builder::new()
            .name("sigtrace-cri".into())
            .spawn(move || worker.run(req_rx, ans_tx))?;
        Ok(Self {
            socket: socket.to_owned(),
            requests: req_tx,
            answers: ans_rx,
            shared,
        })
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Queues container `id`; false (counted) when the queue is full.
    pub fn request(&self, id: &str) -> bool {
        let queued = self.requests.try_send(id.to_owned()).is_ok();
        if !queued {
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
        }
        queued
    }

    /// The answers that arrived since the last call (never blocks).
    pub fn answers(&self) -> impl Iterator<Item = Answer> + '_ {
        self.answers.try_iter()
    }

    pub fn stats(&self) -> CriStats {
        CriStats {
            errors: self.shared.errors.load(Ordering::Relaxed),
            dropped: self.shared.dropped.load(Ordering::Relaxed),
            up: match self.shared.up.load(Ordering::Relaxed) {
                -1 => None,
                v => Some(v == 1),
            },
        }
    }
}

/// A lazily connecting channel to the unix socket `socket`.
pub fn channel(socket: &Path) -> Channel {
    let socket = socket.to_owned();
    Endpoint::from_static("http://[::]:0")
        .connect_timeout(CALL_DEADLINE)
        .timeout(CALL_DEADLINE)
        .connect_with_connector_lazy(tower::service_fn(move |_: Uri| {
            let socket = socket.clone();
            async move {
                Ok::<_, std::io::Error>(TokioIo::new(
                    tokio::net::UnixStream::connect(socket).await?,
                ))
            }
        }))
}

/// `Version` with a deadline: "<runtime> <version> (CRI <api>)" (doctor).
pub fn version(socket: &Path) -> Result<String, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        let mut client = RuntimeServiceClient::new(channel(socket));
        let call = client.version(cri::VersionRequest::default());
        match tokio::time::timeout(CALL_DEADLINE, call).await {
            Ok(Ok(v)) => {
                let v = v.into_inner();
                Ok(format!(
                    "{} {} (CRI {})",
                    v.runtime_name, v.runtime_version, v.runtime_api_version
                ))
            }
            Ok(Err(status)) => Err(describe(&status)),
            Err(_) => Err(format!("no answer within {CALL_DEADLINE:?}")),
        }
    })
}

fn describe(status: &tonic::Status) -> String {
    use std::error::Error;
    let mut text = format!("{:?}: {}", status.code(), status.message());
    let mut source = status.source();
    while let Some(s) = source {
        text = format!("{text}: {s}");
        source = s.source();
    }
    text
}

/// The client thread's state.
struct Worker {
    socket: PathBuf,
    shared: Arc<Shared>,
    /// Pod uid → its sandbox's labels.
    sandboxes: HashMap<String, HashMap<String, String>>,
    /// Image → its config's stop signal.
    images: HashMap<String, Option<String>>,
}

/// Bounds of the worker's caches (cleared whole when full: they are only shortcuts).
const CACHE: usize = 4096;

impl Worker {
    fn run(
        mut self,
        mut requests: tokio::sync::mpsc::Receiver<String>,
        answers: mpsc::Sender<Answer>,
    ) {
        let rt = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                tracing::warn!("CRI client disabled: no runtime for it: {e}");
                return;
            }
        };
        rt.block_on(async {
            let channel = channel(&self.socket);
            let mut runtime = RuntimeServiceClient::new(channel.clone());
            let mut images = ImageServiceClient::new(channel);
            while let Some(id) = requests.recv().await {
                let call = self.fetch(&mut runtime, &mut images, &id);
                let result = match tokio::time::timeout(CALL_DEADLINE * 3, call).await {
                    Ok(r) => r,
                    Err(_) => Err(format!("no answer within {:?}", CALL_DEADLINE * 3)),
                };
                let facts = match result {
                    Ok(f) => {
                        self.state(true, "");
                        Ok(f)
                    }
                    Err(e) => {
                        self.shared.errors.fetch_add(1, Ordering::Relaxed);
                        self.state(false, &e);
                        Err(())
                    }
                };
                if answers.send(Answer { id, facts }).is_err() {
                    return;
                }
            }
        });
    }

    /// Records the state and logs a change.
    fn state(&self, up: bool, why: &str) {
        let was = self.shared.up.swap(i8::from(up), Ordering::Relaxed);
        if was == i8::from(up) {
            return;
        }
        let socket = self.socket.display();
        if up {
            tracing::info!("CRI at {socket} answers: Kubernetes facts come from it");
        } else {
            tracing::warn!(
                "CRI at {socket} failed ({why}): Kubernetes facts come from the runtimes' \
                 files until it answers again"
            );
        }
    }

    async fn fetch(
        &mut self,
        runtime: &mut RuntimeServiceClient<Channel>,
        images: &mut ImageServiceClient<Channel>,
        id: &str,
    ) -> Result<Option<CriFacts>, String> {
        let req = cri::ContainerStatusRequest {
            container_id: id.to_owned(),
            verbose: false,
        };
        let status = match runtime.container_status(req).await {
            Ok(r) => r.into_inner().status,
            Err(s) if s.code() == Code::NotFound => return self.sandbox(runtime, id).await,
            Err(s) => return Err(describe(&s)),
        };
        let Some(status) = status else {
            return Ok(None);
        };
        let image = status.image.as_ref().map_or("", |i| i.image.as_str());
        let mut facts = CriFacts::of_container(&status.labels, &status.annotations, image);
        if let Some(uid) = facts.pod_uid.clone() {
            facts.pod_labels = self.pod_labels(runtime, &uid).await?;
        }
        let image_ref = if status.image_ref.is_empty() {
            image
        } else {
            status.image_ref.as_str()
        };
        if !image_ref.is_empty() {
            facts.stop_signal = self.stop_signal(images, image_ref).await?;
        }
        Ok(Some(facts))
    }

    /// `id` as a pod sandbox's id.
    async fn sandbox(
        &mut self,
        runtime: &mut RuntimeServiceClient<Channel>,
        id: &str,
    ) -> Result<Option<CriFacts>, String> {
        let req = cri::PodSandboxStatusRequest {
            pod_sandbox_id: id.to_owned(),
            verbose: false,
        };
        match runtime.pod_sandbox_status(req).await {
            Ok(r) => Ok(r
                .into_inner()
                .status
                .map(|s| CriFacts::of_sandbox(&s.labels))),
            Err(s) if s.code() == Code::NotFound => Ok(None),
            Err(s) => Err(describe(&s)),
        }
    }

    /// The labels of the pod with uid `uid` (on its sandbox).
    async fn pod_labels(
        &mut self,
        runtime: &mut RuntimeServiceClient<Channel>,
        uid: &str,
    ) -> Result<Option<HashMap<String, String>>, String> {
        if let Some(l) = self.sandboxes.get(uid) {
            return Ok(Some(l.clone()));
        }
        let req = cri::ListPodSandboxRequest {
            filter: Some(cri::PodSandboxFilter {
                label_selector: HashMap::from([(
                    "io.kubernetes.pod.uid".to_owned(),
                    uid.to_owned(),
                )]),
                ..Default::default()
            }),
        };
        let items = runtime
            .list_pod_sandbox(req)
            .await
            .map_err(|s| describe(&s))?
            .into_inner()
            .items;
        // The newest sandbox of the pod (a restarted sandbox keeps the uid).
        let Some(newest) = items.into_iter().max_by_key(|s| s.created_at) else {
            return Ok(None);
        };
        if self.sandboxes.len() >= CACHE {
            self.sandboxes.clear();
        }
        self.sandboxes.insert(uid.to_owned(), newest.labels.clone());
        Ok(Some(newest.labels))
    }

    /// The stop signal of image `image`'s config.
    async fn stop_signal(
        &mut self,
        images: &mut ImageServiceClient<Channel>,
        image: &str,
    ) -> Result<Option<String>, String> {
        if let Some(s) = self.images.get(image) {
            return Ok(s.clone());
        }
        let req = cri::ImageStatusRequest {
            image: Some(cri::ImageSpec {
                image: image.to_owned(),
                ..Default::default()
            }),
            verbose: true,
        };
        let signal = match images.image_status(req).await {
            Ok(r) => image_stop_signal(&r.into_inner().info),
            Err(s) if s.code() == Code::NotFound => None,
            Err(s) => return Err(describe(&s)),
        };
        if self.images.len() >= CACHE {
            self.images.clear();
        }
        self.images.insert(image.to_owned(), signal.clone());
        Ok(signal)
    }
}
