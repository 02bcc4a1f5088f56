//! Container attribution: cgroup id → cgroup v2 path → runtime, container id, pod, and the
//! metadata the runtimes leave on disk (OCI bundle annotations, docker state).
//!
//! [`ContainerInfo`] is what the rest of sigtrace knows about a container; the resolvers that
//! produce it live in the submodules.
mod cache;
pub mod cgroupfs;
pub mod metadata;
pub mod path;
#[cfg(test)]
mod testutil;

use serde::{Deserialize, Serialize};

/// What is known about the container a cgroup belongs to.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerInfo {
    /// Full container id (64 hex for docker/containerd/CRI-O), or the raw cgroup leaf name for
    /// layouts that are not recognised.
    pub id: String,
    /// "docker", "containerd", "cri-o", "podman", or "unknown".
    pub runtime: String,
    /// Container name (Kubernetes container name, docker name) when known.
    pub name: Option<String>,
    pub pod: Option<String>,
    pub namespace: Option<String>,
    pub pod_uid: Option<String>,
    /// "guaranteed", "burstable" or "besteffort" for Kubernetes pods.
    pub qos: Option<String>,
    /// "container" or "sandbox" (pause container) where the runtime says so.
    pub container_type: Option<String>,
    pub image: Option<String>,
    pub cgroup_id: u64,
    /// cgroup v2 path relative to the v2 mount, starting with '/'.
    pub cgroup_path: String,
}
