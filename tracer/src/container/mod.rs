//! Container attribution: cgroup id → cgroup v2 path → runtime, container id, pod, and the
//! metadata the runtimes leave on disk (OCI bundle annotations, docker state).
//!
//! [`ContainerInfo`] is what the rest of sigtrace knows about a container; [`ContainerResolver`]
//! produces it. The pieces:
//! - [`cgroupfs`]: the v2 mount (from mountinfo) and the cgroup id → path index, with the
//!   `/proc/<pid>/cgroup` fallback for v1-only hosts.
//! - [`path`]: pure cgroup path parsing (runtime, container id, pod uid, QoS).
//! - [`metadata`]: names, namespaces and images from OCI bundles and docker's config.v2.json.
//! - [`cri`]: the node's CRI, read-only, off the event path: the declared grace and preStop hook
//!   ([`hook`]), the pod's labels and the image's stop signal. Its answers arrive after the
//!   container was first resolved; [`ContainerResolver::cri_updates`] hands back the containers
//!   they changed, which the caller passes on (engine, journal).
//!
//! What `resolve` returns:
//! - `None` for the host: cgroup id 1, the root path, and any path that is neither a recognised
//!   container cgroup nor inside a Kubernetes pod (`/system.slice/foo.service`, `/user.slice/…`).
//!   Also `None` when the path cannot be found at all (counted in [`ResolverStats::misses`]; not
//!   cached, so a later call may succeed).
//! - `Some` with the parsed runtime and id, enriched with metadata when the runtime's state has it.
//! - `Some` with runtime `"unknown"` and `id` = the segment below the pod only when the path is
//!   inside a Kubernetes pod cgroup but the container segment is not recognised: such a path is
//!   certainly a container, even if its layout is new. Unknown layouts outside pods are host.
//!
//! Results are cached per cgroup id (v1-only: per cgroup path), so the filesystem is touched once
//! per container. Resolve early (at the first event of a stop, or with
//! [`ContainerResolver::warm_up`] at start-up): runtimes delete bundles when a container is removed.
mod cache;
pub mod cgroupfs;
pub mod cri;
pub mod hook;
pub mod metadata;
pub mod path;
#[cfg(test)]
mod testutil;
pub mod workload;

use std::path::PathBuf;
use std::sync::Arc;

use cache::BoundedMap;
use cgroupfs::{CgroupConfig, CgroupError, CgroupMode, CgroupResolver};
use cri::facts::CriFacts;
use cri::{CriSource, CriStats};
pub use hook::DeclaredHook;
use metadata::{MetadataCache, MetadataDirs};
use path::{is_root, parse_cgroup_path, parse_pod_cgroup, Role, Runtime};
use rustc_hash::FxHashMap;

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
    /// "container" or "sandbox" (pause container) where the runtime says so; "conmon" for the
    /// cgroup of CRI-O's / podman's per-container monitor (`crio-conmon-<id>`), which watches the
    /// container `id` but is not part of it.
    pub container_type: Option<String>,
    pub image: Option<String>,
    /// The stop signal the runtime's state records ("SIGWINCH"), where it records one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    /// The pod's owning workload ([`workload`]): `workload`, `workload_type`,
    /// `workload_source` in JSON.
    #[serde(flatten, default)]
    pub workload: Option<workload::Workload>,
    /// The declared grace of a stop (seconds): the pod's terminationGracePeriodSeconds where
    /// the runtime's state records it (the `io.kubernetes.pod.terminationGracePeriod`
    /// annotation: CRI-O, or containerd with annotation pass-through); a plain docker
    /// container's `--stop-timeout` (else docker's default, 10 s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub termination_grace_s: Option<u32>,
    /// The preStop hook the pod spec declares (from the CRI); `None` when not known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prestop_hook: Option<DeclaredHook>,
    /// "cri" when the node's CRI answered for this container (its grace, hook and pod labels
    /// are the declared ones).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub facts_source: Option<String>,
    pub cgroup_id: u64,
    /// cgroup v2 path relative to the v2 mount, starting with '/'.
    pub cgroup_path: String,
}

impl ContainerInfo {
    /// The first 12 characters of the id, as `docker ps` shows it.
    pub fn short_id(&self) -> &str {
        self.id.get(..12).unwrap_or(&self.id)
    }

    /// The name a person knows the container by: its name, else its short id.
    pub fn label(&self) -> &str {
        self.name.as_deref().unwrap_or(self.short_id())
    }

    /// A pod's sandbox (pause) container, which holds the pod's namespaces and runs no
    /// workload.
    pub fn is_sandbox(&self) -> bool {
        matches!(
            self.container_type.as_deref(),
            Some("sandbox" | "podsandbox")
        )
    }

    /// The workload's name, "" when unknown.
    pub fn workload_name(&self) -> &str {
        self.workload.as_ref().map_or("", |w| w.name.as_str())
    }
}

/// Configuration of a [`ContainerResolver`].
#[derive(Clone, Debug)]
pub struct ResolverOptions {
    /// Use this directory as the cgroup v2 mount instead of looking in mountinfo.
    pub cgroup2_mount: Option<PathBuf>,
    /// `/proc`, the walk rate limit and the path index cap.
    pub cgroup: CgroupConfig,
    /// Runtime state directories searched for metadata.
    pub metadata_dirs: MetadataDirs,
    /// Count cap of the per-cgroup result cache and of the metadata cache.
    pub max_containers: usize,
    /// The CRI socket to ask ([`cri`]); `None` leaves the CRI out.
    pub cri_socket: Option<PathBuf>,
}

impl Default for ResolverOptions {
    fn default() -> Self {
        Self {
            cgroup2_mount: None,
            cgroup: CgroupConfig::default(),
            metadata_dirs: MetadataDirs::default(),
            max_containers: 16_384,
            cri_socket: None,
        }
    }
}

/// Counters of a [`ContainerResolver`]. `resolved`, `host` and `misses` count `resolve` calls.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ResolverStats {
    /// Calls answered with a container.
    pub resolved: u64,
    /// Calls answered "host / no container".
    pub host: u64,
    /// Calls whose cgroup path could not be found (or, v1-only, had no pid).
    pub misses: u64,
    /// Distinct cgroups (v2) whose path could not be found: gone before the agent looked and
    /// not seen created. Their processes have no container.
    pub unresolved_cgroups: u64,
    /// Containers whose runtime state had no usable metadata (missing or malformed files).
    pub metadata_misses: u64,
    /// Of which: a file was there but malformed.
    pub metadata_malformed: u64,
    /// Entries dropped by the count caps (path index, pid cache, metadata, results).
    pub evictions: u64,
    /// Walks of the cgroup v2 hierarchy.
    pub walks: u64,
    /// The CRI client's state, when there is one.
    pub cri: Option<CriStats>,
}

/// cgroup id (+ pid hint) → [`ContainerInfo`], cached. See the module docs for what is returned.
#[derive(Debug)]
pub struct ContainerResolver {
    cgroups: CgroupResolver,
    metadata: MetadataCache,
    by_id: BoundedMap<u64, Option<Arc<ContainerInfo>>>,
    by_path: BoundedMap<Arc<str>, Option<Arc<ContainerInfo>>>,
    cri: Option<CriSource>,
    /// Container id → what the CRI answered (`None`: not a CRI container).
    cri_facts: BoundedMap<String, Option<Arc<CriFacts>>>,
    /// Container id → the cgroups waiting for its CRI answer.
    cri_pending: FxHashMap<String, Vec<u64>>,
    resolved: u64,
    host: u64,
    misses: u64,
    /// cgroup ids whose path could not be found (counted once each in `unresolved`).
    missed: BoundedMap<u64, ()>,
    unresolved: u64,
}

impl ContainerResolver {
    /// Finds the cgroup v2 mount (unless overridden); falls back to pid-based v1 attribution
    /// when there is none. Fails only if mountinfo cannot be read.
    /// Starts the CRI client when `opts.cri_socket` names one (a thread that cannot be started
    /// leaves the CRI out, logged).
    pub fn new(opts: ResolverOptions) -> Result<Self, CgroupError> {
        let cgroups = CgroupResolver::new(opts.cgroup2_mount.clone(), opts.cgroup.clone())?;
        let mut me = Self::with_cgroups(cgroups, &opts);
        if let Some(socket) = &opts.cri_socket {
            match CriSource::start(socket) {
                Ok(c) => me.cri = Some(c),
                Err(e) => tracing::warn!("CRI client not started: {e}"),
            }
        }
        Ok(me)
    }

    /// Uses a ready-made [`CgroupResolver`] (tests, or a v1-only mode chosen by the caller).
    pub fn with_cgroups(cgroups: CgroupResolver, opts: &ResolverOptions) -> Self {
        Self {
            cgroups,
            metadata: MetadataCache::new(opts.metadata_dirs.clone(), opts.max_containers),
            by_id: BoundedMap::new(opts.max_containers),
            by_path: BoundedMap::new(opts.max_containers),
            cri: None,
            cri_facts: BoundedMap::new(opts.max_containers),
            cri_pending: FxHashMap::default(),
            resolved: 0,
            host: 0,
            misses: 0,
            missed: BoundedMap::new(opts.max_containers),
            unresolved: 0,
        }
    }

    /// The container of cgroup `cgroup_id` (v2), or of process `pid_hint` (v1-only, where ids
    /// are meaningless). In v2 the pid also helps find a cgroup created since the last walk.
    pub fn resolve(&mut self, cgroup_id: u64, pid_hint: Option<u32>) -> Option<Arc<ContainerInfo>> {
        let answer = self.lookup(cgroup_id, pid_hint);
        match &answer {
            Lookup::Container(_) => self.resolved += 1,
            Lookup::Host => self.host += 1,
            Lookup::Miss => self.misses += 1,
        }
        match answer {
            Lookup::Container(info) => Some(info),
            _ => None,
        }
    }

    fn lookup(&mut self, cgroup_id: u64, pid_hint: Option<u32>) -> Lookup {
        if self.cgroups.attribution_may_be_missing() {
            let Some(path) = pid_hint.and_then(|pid| self.cgroups.path_for_pid(pid)) else {
                return Lookup::Miss;
            };
            if let Some(hit) = self.by_path.get(&path) {
                return hit.clone().into();
            }
            let info = self.build(cgroup_id, &path).map(|i| self.with_cri(i, None));
            self.by_path.insert(path, info.clone());
            return info.into();
        }
        if cgroup_id == 1 {
            return Lookup::Host;
        }
        if cgroup_id == 0 {
            return Lookup::Miss;
        }
        if let Some(hit) = self.by_id.get(&cgroup_id) {
            return hit.clone().into();
        }
        let Some(path) = self.cgroups.path_for_id_or_pid(cgroup_id, pid_hint) else {
            if self.missed.peek(&cgroup_id).is_none() {
                self.missed.insert(cgroup_id, ());
                self.unresolved += 1;
            }
            return Lookup::Miss;
        };
        let info = self
            .build(cgroup_id, &path)
            .map(|i| self.with_cri(i, Some(cgroup_id)));
        self.by_id.insert(cgroup_id, info.clone());
        info.into()
    }

    /// `info` with the CRI's facts when they are known, else asks for them (the cgroup waits
    /// for the answer in `cri_pending`).
    fn with_cri(&mut self, mut info: ContainerInfo, cgroup: Option<u64>) -> Arc<ContainerInfo> {
        if self.cri.is_none() || !matches!(info.runtime.as_str(), "containerd" | "cri-o") {
            return Arc::new(info);
        }
        match self.cri_facts.get(&info.id) {
            Some(Some(f)) => f.merge_into(&mut info),
            Some(None) => {}
            None => self.ask_cri(&info.id, cgroup),
        }
        Arc::new(info)
    }

    fn ask_cri(&mut self, id: &str, cgroup: Option<u64>) {
        let Some(cri) = &self.cri else { return };
        if let Some(waiting) = self.cri_pending.get_mut(id) {
            waiting.extend(cgroup.filter(|c| !waiting.contains(c)));
        } else if cri.request(id) {
            self.cri_pending
                .insert(id.to_owned(), cgroup.into_iter().collect());
        }
    }

    /// The kernel created cgroup `cgroup_id` at `path` (v2): known from now on, even once gone.
    pub fn cgroup_created(&mut self, cgroup_id: u64, path: &str) {
        self.cgroups.created(cgroup_id, path);
    }

    /// A stop of cgroup `cgroup_id` starts: asks the CRI again for its container when no answer
    /// is known (an earlier call failed, or the request was dropped).
    pub fn stop_started(&mut self, cgroup_id: u64) {
        let id = match self.by_id.peek(&cgroup_id) {
            Some(Some(info))
                if info.facts_source.is_none()
                    && matches!(info.runtime.as_str(), "containerd" | "cri-o") =>
            {
                info.id.clone()
            }
            _ => return,
        };
        if self.cri_facts.peek(&id).is_none() {
            self.ask_cri(&id, Some(cgroup_id));
        }
    }

    /// The CRI answers that arrived: the containers they changed, as (cgroup id, new info).
    pub fn cri_updates(&mut self) -> Vec<(u64, Arc<ContainerInfo>)> {
        let Some(cri) = &self.cri else {
            return Vec::new();
        };
        let answers: Vec<_> = cri.answers().collect();
        let mut changed = Vec::new();
        for a in answers {
            let cgroups = self.cri_pending.remove(&a.id).unwrap_or_default();
            let Ok(facts) = a.facts else { continue };
            let facts = facts.map(Arc::new);
            self.cri_facts.insert(a.id, facts.clone());
            let Some(facts) = facts else { continue };
            for cg in cgroups {
                let Some(Some(old)) = self.by_id.peek(&cg) else {
                    continue;
                };
                let mut info = (**old).clone();
                facts.merge_into(&mut info);
                let info = Arc::new(info);
                self.by_id.insert(cg, Some(info.clone()));
                changed.push((cg, info));
            }
        }
        changed
    }

    fn build(&mut self, cgroup_id: u64, path: &str) -> Option<ContainerInfo> {
        if is_root(path) {
            return None;
        }
        if let Some(p) = parse_cgroup_path(path) {
            let md = self
                .metadata
                .lookup(&p.container_id, p.runtime, p.runtime_certain)
                .map(|m| (*m).clone())
                .unwrap_or_default();
            let container_type = match p.role {
                Role::Conmon => Some("conmon".to_owned()),
                Role::Container => md.container_type.clone(),
            };
            let labels = md.labels.clone().or_else(|| {
                // Pod labels live on the sandbox (CRI-O's infra container).
                let sandbox = md.sandbox_id.as_deref()?;
                let smd = self
                    .metadata
                    .lookup(sandbox, p.runtime, p.runtime_certain)?;
                smd.labels.clone()
            });
            let workload = md
                .pod
                .as_deref()
                .map(|pod| workload::derive(pod, labels.as_ref()));
            return Some(ContainerInfo {
                id: p.container_id,
                runtime: md.runtime.unwrap_or(p.runtime).as_str().to_owned(),
                name: md.name,
                pod: md.pod,
                namespace: md.namespace,
                pod_uid: p.pod_uid.or(md.pod_uid),
                qos: p.qos.map(|q| q.as_str().to_owned()),
                container_type,
                image: md.image,
                stop_signal: md.stop_signal,
                workload,
                termination_grace_s: md.termination_grace_s,
                prestop_hook: None,
                facts_source: None,
                cgroup_id,
                cgroup_path: path.to_owned(),
            });
        }
        let pod = parse_pod_cgroup(path)?;
        let child = pod.child?;
        Some(ContainerInfo {
            id: child,
            runtime: Runtime::Unknown.as_str().to_owned(),
            pod_uid: Some(pod.pod_uid),
            qos: Some(pod.qos.as_str().to_owned()),
            cgroup_id,
            cgroup_path: path.to_owned(),
            ..ContainerInfo::default()
        })
    }

    /// Walks the hierarchy now and resolves every container cgroup found, so that metadata is
    /// captured while the bundles exist. Returns the number of containers. No-op in v1-only mode.
    pub fn warm_up(&mut self) -> usize {
        if let Err(e) = self.cgroups.refresh() {
            tracing::debug!("cgroup walk failed: {e}");
        }
        let ids = self.cgroups.known_ids();
        ids.into_iter()
            .filter(|id| matches!(self.lookup(*id, None), Lookup::Container(_)))
            .count()
    }

    /// True when attribution is pid-based (no cgroup v2): processes that exit before they are
    /// first seen cannot be attributed.
    pub fn attribution_may_be_missing(&self) -> bool {
        self.cgroups.attribution_may_be_missing()
    }

    pub fn cgroup_mode(&self) -> &CgroupMode {
        self.cgroups.mode()
    }

    pub fn cgroups_mut(&mut self) -> &mut CgroupResolver {
        &mut self.cgroups
    }

    pub fn stats(&self) -> ResolverStats {
        let md = self.metadata.stats();
        ResolverStats {
            resolved: self.resolved,
            host: self.host,
            misses: self.misses,
            unresolved_cgroups: self.unresolved,
            metadata_misses: md.misses,
            metadata_malformed: md.malformed,
            evictions: self.cgroups.evictions()
                + md.evictions
                + self.by_id.evictions()
                + self.by_path.evictions(),
            walks: self.cgroups.walks(),
            cri: self.cri.as_ref().map(CriSource::stats),
        }
    }
}

enum Lookup {
    Container(Arc<ContainerInfo>),
    Host,
    Miss,
}

impl From<Option<Arc<ContainerInfo>>> for Lookup {
    fn from(o: Option<Arc<ContainerInfo>>) -> Self {
        o.map_or(Lookup::Host, Lookup::Container)
    }
}

#[cfg(test)]
mod tests;
