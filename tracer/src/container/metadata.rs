//! Container metadata without the API server: the runtimes' on-disk state.
//!
//! - containerd: OCI bundle `<state>/io.containerd.runtime.v2.task/<namespace>/<id>/config.json`
//!   (every namespace directory is searched; namespace `moby` means the task belongs to docker).
//!   Kubernetes (CRI) annotations `io.kubernetes.cri.*`.
//! - CRI-O (and podman, which shares containers/storage):
//!   `<storage>/overlay-containers/<id>/userdata/config.json`, annotations `io.kubernetes.pod.*`,
//!   `io.kubernetes.container.name`, `io.kubernetes.cri-o.*`.
//! - docker: `<data-root>/containers/<id>/config.v2.json` (`Name`, `Config.Image`, and the
//!   dockershim `io.kubernetes.*` labels if present).
//!
//! Lookups are keyed by the validated 64-hex container id (never an arbitrary path segment),
//! cached with a count cap (answers and misses both), and never fail: a missing or malformed
//! file is a counted miss, logged at debug level (the first malformed file at warn level).
use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

use super::cache::BoundedMap;
use super::path::{is_container_id, Runtime};

/// Largest metadata file read; bigger ones are treated as malformed.
const MAX_FILE_BYTES: u64 = 4 << 20;

/// Where the runtimes keep their state. Each is a list so that several installations (or test
/// directories) can be searched; the first hit wins.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetadataDirs {
    /// containerd state directories (each holding `io.containerd.runtime.v2.task/`).
    pub containerd_state: Vec<PathBuf>,
    /// containers/storage roots (each holding `overlay-containers/`), for CRI-O and podman.
    pub crio_storage: Vec<PathBuf>,
    /// docker data roots (each holding `containers/`).
    pub docker_data_root: Vec<PathBuf>,
}

impl Default for MetadataDirs {
    fn default() -> Self {
        let p = |s: &str| PathBuf::from(s);
        Self {
            containerd_state: vec![
                p("/run/containerd"),
                // docker's own (managed) containerd: <exec-root>/containerd/daemon.
                p("/run/docker/containerd/daemon"),
                p("/var/run/docker/containerd/daemon"),
                p("/run/k3s/containerd"),
            ],
            crio_storage: vec![
                p("/run/containers/storage"),
                p("/var/lib/containers/storage"),
            ],
            docker_data_root: vec![p("/var/lib/docker")],
        }
    }
}

/// What the on-disk state says about one container.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContainerMetadata {
    /// The runtime whose state held the container (docker for containerd namespace `moby`).
    pub runtime: Option<Runtime>,
    pub name: Option<String>,
    pub pod: Option<String>,
    pub namespace: Option<String>,
    pub pod_uid: Option<String>,
    /// "container" or "sandbox".
    pub container_type: Option<String>,
    pub image: Option<String>,
    /// The stop signal the runtime's state records for the container (docker's
    /// `Config.StopSignal`, from the image's STOPSIGNAL or `--stop-signal`), as written there.
    pub stop_signal: Option<String>,
    /// The pod's sandbox container id (`io.kubernetes.cri.sandbox-id`,
    /// `io.kubernetes.cri-o.SandboxID`), for containers.
    pub sandbox_id: Option<String>,
    /// Pod labels, where the runtime's state has them (CRI-O's `io.kubernetes.cri-o.Labels`
    /// on the sandbox; containerd keeps them only in its database).
    pub labels: Option<HashMap<String, String>>,
    /// The declared grace of a stop (seconds): `io.kubernetes.pod.terminationGracePeriod`,
    /// where the runtime keeps kubelet's container annotations; a plain docker container's
    /// `StopTimeout` (else docker's default, 10 s).
    pub termination_grace_s: Option<u32>,
}

/// Why a metadata file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is larger than {MAX_FILE_BYTES} bytes")]
    TooLarge { path: PathBuf },
    #[error("parsing {path}: {source}")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

#[derive(Deserialize)]
struct OciSpec {
    #[serde(default)]
    annotations: Option<HashMap<String, String>>,
}

#[derive(Deserialize)]
struct DockerConfigV2 {
    #[serde(rename = "Name", default)]
    name: Option<String>,
    #[serde(rename = "Config", default)]
    config: Option<DockerConfig>,
}

#[derive(Deserialize)]
struct DockerConfig {
    #[serde(rename = "Image", default)]
    image: Option<String>,
    #[serde(rename = "Labels", default)]
    labels: Option<HashMap<String, String>>,
    #[serde(rename = "StopSignal", default)]
    stop_signal: Option<String>,
    /// `docker run --stop-timeout` (seconds; absent: docker's default).
    #[serde(rename = "StopTimeout", default)]
    stop_timeout: Option<i64>,
}

/// `docker stop`'s grace when the container sets none.
pub const DOCKER_DEFAULT_STOP_TIMEOUT_S: u32 = 10;

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, MetadataError> {
    let io = |source| MetadataError::Io {
        path: path.to_owned(),
        source,
    };
    let file = fs::File::open(path).map_err(io)?;
    let mut buf = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(io)?;
    if buf.len() as u64 > MAX_FILE_BYTES {
        return Err(MetadataError::TooLarge {
            path: path.to_owned(),
        });
    }
    serde_json::from_slice(&buf).map_err(|source| MetadataError::Json {
        path: path.to_owned(),
        source,
    })
}

fn non_empty(map: &HashMap<String, String>, key: &str) -> Option<String> {
    map.get(key).filter(|v| !v.is_empty()).cloned()
}

/// Metadata from the annotations of an OCI `config.json` written by containerd's CRI plugin or
/// CRI-O (both key sets are tried; absent keys stay `None`). `runtime` is set to podman when
/// `io.container.manager` is `libpod`.
pub fn from_oci_annotations(ann: &HashMap<String, String>) -> ContainerMetadata {
    let get = |cri: &str, crio: &str| non_empty(ann, cri).or_else(|| non_empty(ann, crio));
    let podman = ann
        .get("io.container.manager")
        .is_some_and(|m| m == "libpod");
    ContainerMetadata {
        runtime: podman.then_some(Runtime::Podman),
        name: get(
            "io.kubernetes.cri.container-name",
            "io.kubernetes.container.name",
        ),
        pod: get("io.kubernetes.cri.sandbox-name", "io.kubernetes.pod.name"),
        namespace: get(
            "io.kubernetes.cri.sandbox-namespace",
            "io.kubernetes.pod.namespace",
        ),
        pod_uid: get("io.kubernetes.cri.sandbox-uid", "io.kubernetes.pod.uid"),
        container_type: get(
            "io.kubernetes.cri.container-type",
            "io.kubernetes.cri-o.ContainerType",
        ),
        image: get(
            "io.kubernetes.cri.image-name",
            "io.kubernetes.cri-o.ImageName",
        ),
        stop_signal: None,
        sandbox_id: get(
            "io.kubernetes.cri.sandbox-id",
            "io.kubernetes.cri-o.SandboxID",
        ),
        labels: ann
            .get("io.kubernetes.cri-o.Labels")
            .and_then(|l| serde_json::from_str::<HashMap<String, String>>(l).ok())
            // A container's own labels only name it; pod labels are on the sandbox.
            .filter(|l| l.keys().any(|k| !k.starts_with("io.kubernetes."))),
        termination_grace_s: non_empty(ann, "io.kubernetes.pod.terminationGracePeriod")
            .and_then(|v| v.trim().parse().ok()),
    }
}

/// Reads an OCI bundle `config.json`.
pub fn read_oci_bundle(config_json: &Path) -> Result<ContainerMetadata, MetadataError> {
    let spec: OciSpec = read_json(config_json)?;
    Ok(from_oci_annotations(&spec.annotations.unwrap_or_default()))
}

/// Reads docker's `config.v2.json`.
pub fn read_docker_config(config_v2: &Path) -> Result<ContainerMetadata, MetadataError> {
    let cfg: DockerConfigV2 = read_json(config_v2)?;
    let (image, labels, stop_signal, stop_timeout) = match cfg.config {
        Some(c) => (
            c.image,
            c.labels.unwrap_or_default(),
            c.stop_signal,
            c.stop_timeout,
        ),
        None => (None, HashMap::new(), None, None),
    };
    let mut k8s = from_oci_annotations(&labels);
    // dockershim / cri-dockerd label their pause containers.
    if let Some(t) = non_empty(&labels, "io.kubernetes.docker.type") {
        k8s.container_type = Some(if t == "podsandbox" {
            "sandbox".into()
        } else {
            t
        });
    }
    let name = cfg
        .name
        .map(|n| n.trim_start_matches('/').to_owned())
        .filter(|n| !n.is_empty());
    Ok(ContainerMetadata {
        runtime: Some(Runtime::Docker),
        name: k8s.name.or(name),
        image: image.filter(|i| !i.is_empty()).or(k8s.image),
        stop_signal: stop_signal.filter(|s| !s.is_empty()),
        // A Kubernetes container's grace is its pod's (kubelet passes it to each stop); a
        // plain docker container's is its stop timeout (a negative one waits forever).
        termination_grace_s: k8s.termination_grace_s.or(match &k8s.pod_uid {
            Some(_) => None,
            None => match stop_timeout {
                Some(t) => u32::try_from(t).ok(),
                None => Some(DOCKER_DEFAULT_STOP_TIMEOUT_S),
            },
        }),
        ..k8s
    })
}

/// Lookup counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MetadataStats {
    pub hits: u64,
    /// Lookups that found no usable file (missing or malformed).
    pub misses: u64,
    /// Of which: a file existed but could not be parsed.
    pub malformed: u64,
    pub evictions: u64,
}

/// Bounded cache of [`ContainerMetadata`] per container id, backed by the runtimes' state dirs.
#[derive(Debug)]
pub struct MetadataCache {
    dirs: MetadataDirs,
    cache: BoundedMap<String, Option<Arc<ContainerMetadata>>>,
    stats: MetadataStats,
    warned: bool,
}

impl MetadataCache {
    pub fn new(dirs: MetadataDirs, cap: usize) -> Self {
        Self {
            dirs,
            cache: BoundedMap::new(cap),
            stats: MetadataStats::default(),
            warned: false,
        }
    }

    pub fn stats(&self) -> MetadataStats {
        MetadataStats {
            evictions: self.cache.evictions(),
            ..self.stats
        }
    }

    /// Metadata of container `id`. `runtime` is what the cgroup path says; with
    /// `runtime_certain == false` every runtime's state is searched. Cached, misses included.
    pub fn lookup(
        &mut self,
        id: &str,
        runtime: Runtime,
        runtime_certain: bool,
    ) -> Option<Arc<ContainerMetadata>> {
        if let Some(hit) = self.cache.get(&id.to_owned()) {
            return hit.clone();
        }
        let found = if is_container_id(id) {
            self.search(id, runtime, runtime_certain)
        } else {
            None
        };
        match &found {
            Some(_) => self.stats.hits += 1,
            None => {
                self.stats.misses += 1;
                tracing::debug!(id, runtime = runtime.as_str(), "no container metadata");
            }
        }
        let found = found.map(Arc::new);
        self.cache.insert(id.to_owned(), found.clone());
        found
    }

    fn search(&mut self, id: &str, runtime: Runtime, certain: bool) -> Option<ContainerMetadata> {
        let order: &[Runtime] = match (runtime, certain) {
            (Runtime::Docker, true) => &[Runtime::Docker, Runtime::Containerd],
            (Runtime::Containerd, true) => &[Runtime::Containerd],
            (Runtime::CriO | Runtime::Podman, true) => &[Runtime::CriO],
            _ => &[Runtime::Docker, Runtime::Containerd, Runtime::CriO],
        };
        order.iter().find_map(|rt| match rt {
            Runtime::Docker => self.docker(id),
            Runtime::Containerd => self.containerd(id),
            _ => self.crio(id, runtime),
        })
    }

    fn docker(&mut self, id: &str) -> Option<ContainerMetadata> {
        let paths: Vec<PathBuf> = self
            .dirs
            .docker_data_root
            .iter()
            .map(|root| root.join("containers").join(id).join("config.v2.json"))
            .collect();
        paths.iter().find_map(|p| self.read(p, read_docker_config))
    }

    fn containerd(&mut self, id: &str) -> Option<ContainerMetadata> {
        let mut candidates = Vec::new();
        for state in &self.dirs.containerd_state {
            let tasks = state.join("io.containerd.runtime.v2.task");
            let Ok(namespaces) = fs::read_dir(&tasks) else {
                continue;
            };
            for ns in namespaces.flatten() {
                let bundle = ns.path().join(id).join("config.json");
                if bundle.exists() {
                    let ns = ns.file_name().to_string_lossy().into_owned();
                    candidates.push((bundle, ns));
                }
            }
        }
        candidates.into_iter().find_map(|(bundle, ns)| {
            let mut md = self.read(&bundle, read_oci_bundle)?;
            md.runtime = Some(if ns == "moby" {
                Runtime::Docker
            } else {
                Runtime::Containerd
            });
            if ns == "moby" {
                // docker keeps name and image in its own state, not in the bundle.
                if let Some(d) = self.docker(id) {
                    return Some(d);
                }
            }
            Some(md)
        })
    }

    fn crio(&mut self, id: &str, runtime: Runtime) -> Option<ContainerMetadata> {
        let paths: Vec<PathBuf> = self
            .dirs
            .crio_storage
            .iter()
            .map(|root| {
                root.join("overlay-containers")
                    .join(id)
                    .join("userdata/config.json")
            })
            .collect();
        let mut md = paths.iter().find_map(|p| self.read(p, read_oci_bundle))?;
        if md.runtime.is_none() {
            md.runtime = Some(if runtime == Runtime::Podman {
                Runtime::Podman
            } else {
                Runtime::CriO
            });
        }
        Some(md)
    }

    /// Reads one candidate file; absent → `None` silently, unusable → `None`, logged, counted.
    fn read(
        &mut self,
        path: &Path,
        reader: fn(&Path) -> Result<ContainerMetadata, MetadataError>,
    ) -> Option<ContainerMetadata> {
        match reader(path) {
            Ok(md) => Some(md),
            Err(MetadataError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                None
            }
            Err(e) => {
                self.stats.malformed += 1;
                if self.warned {
                    tracing::debug!("unusable container metadata: {e}");
                } else {
                    self.warned = true;
                    tracing::warn!("unusable container metadata (further ones at debug): {e}");
                }
                None
            }
        }
    }
}

#[cfg(test)]
mod tests;
