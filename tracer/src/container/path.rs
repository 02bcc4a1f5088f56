//! Pure parsing of cgroup v2 paths into container identity: runtime, container id, pod uid and
//! QoS class. No I/O; every layout handled here has a table-driven test in `path/tests.rs`.
//!
//! Recognised container segments (the **deepest** one in the path wins, so a node running inside
//! a container — kind, k3d, docker-in-docker — attributes to the inner container, and anything
//! below the container segment, e.g. `init.scope` or `/<id>/sub`, attributes to the container):
//!
//! | segment                                  | runtime    | notes                          |
//! |------------------------------------------|------------|--------------------------------|
//! | `cri-containerd-<id>[.scope]`            | containerd | CRI, systemd driver            |
//! | `nerdctl-<id>[.scope]`                   | containerd | nerdctl, systemd driver        |
//! | `crio-<id>[.scope]`                      | cri-o      |                                |
//! | `crio-conmon-<id>[.scope]`               | cri-o      | the conmon monitor, [`Role::Conmon`] |
//! | `docker-<id>[.scope]`                    | docker     | systemd driver                 |
//! | `libpod-<id>[.scope]`                    | podman     |                                |
//! | `libpod-conmon-<id>[.scope]`             | podman     | the conmon monitor             |
//! | `<id>` with parent `docker`              | docker     | cgroupfs driver                |
//! | `<id>` anywhere else                     | containerd, *guessed* | kubepods cgroupfs driver, `ctr`, docker `--cgroup-parent`; metadata settles it |
//!
//! | `<slice>:<prefix>:<id>`                  | by prefix: `cri-containerd`, `crio`, `docker`, `libpod` | runc's systemd-form cgroupsPath taken literally by its cgroupfs driver; the pod comes from `<slice>` (below) |
//!
//! `<id>` is exactly 64 lowercase hex digits; anything else is not a container segment.
//!
//! The colon form appears when kubelet (or its config) hands the runtime a systemd-shaped
//! parent (`….slice`) but runc runs with the cgroupfs driver: containerd then asks for
//! `kubepods-burstable-pod<uid>.slice:cri-containerd:<id>` and runc creates exactly that
//! directory at the root of every hierarchy.
//!
//! Pod segments (nearest ancestor of the container segment): systemd driver
//! `[<prefix>-]kubepods[-<qos>]-pod<uid with _>.slice` (e.g. `kubelet-kubepods-…` in kind), or
//! cgroupfs driver `pod<uid>` whose parent is `kubepods`, `burstable` or `besteffort`. No QoS word
//! means guaranteed. The uid is a UUID (normalised to dashes) or a 32-hex static-pod hash. A
//! malformed pod segment (`pod` alone, a non-hex uid) does not hide the container: the result
//! then has no pod uid and no QoS.
//!
//! Empty segments (`//`, trailing `/`) are ignored.

/// Container runtime, as far as the cgroup path (and later the metadata) tells.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Runtime {
    Containerd,
    CriO,
    Docker,
    Podman,
    Unknown,
}

impl Runtime {
    /// The string stored in [`super::ContainerInfo::runtime`].
    pub fn as_str(self) -> &'static str {
        match self {
            Runtime::Containerd => "containerd",
            Runtime::CriO => "cri-o",
            Runtime::Docker => "docker",
            Runtime::Podman => "podman",
            Runtime::Unknown => "unknown",
        }
    }
}

/// Kubernetes QoS class of a pod.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Qos {
    Guaranteed,
    Burstable,
    BestEffort,
}

impl Qos {
    /// The string stored in [`super::ContainerInfo::qos`].
    pub fn as_str(self) -> &'static str {
        match self {
            Qos::Guaranteed => "guaranteed",
            Qos::Burstable => "burstable",
            Qos::BestEffort => "besteffort",
        }
    }
}

/// What the cgroup holds: the container's processes or the runtime's per-container monitor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    Container,
    /// `crio-conmon-<id>` / `libpod-conmon-<id>`: conmon, which watches container `<id>` but is
    /// not part of it.
    Conmon,
}

/// A recognised container cgroup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedCgroup {
    pub runtime: Runtime,
    /// False when the runtime is a guess (bare 64-hex leaf outside `/docker`): the metadata
    /// lookup may correct it.
    pub runtime_certain: bool,
    /// 64 lowercase hex.
    pub container_id: String,
    pub role: Role,
    pub pod_uid: Option<String>,
    pub qos: Option<Qos>,
}

/// A Kubernetes pod cgroup found in a path (used for paths whose container segment is not
/// recognised).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodCgroup {
    pub pod_uid: String,
    pub qos: Qos,
    /// The segment directly below the pod segment, if any (the unrecognised container leaf).
    pub child: Option<String>,
}

/// True for 64 lowercase hex digits (docker, containerd, CRI-O and podman container ids).
pub fn is_container_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// True when `path` is the root of the hierarchy ("host, no container").
pub fn is_root(path: &str) -> bool {
    path.split('/').all(str::is_empty)
}

/// Parses a cgroup path (relative to the v2 mount, or a v1 hierarchy path of the same shape).
/// `None` for host paths and unknown layouts.
pub fn parse_cgroup_path(path: &str) -> Option<ParsedCgroup> {
    let segs = segments(path);
    let (idx, runtime, runtime_certain, id, role) =
        segs.iter().enumerate().rev().find_map(|(i, seg)| {
            let parent = i.checked_sub(1).map(|p| segs[p]);
            container_segment(seg, parent).map(|(r, c, id, role)| (i, r, c, id, role))
        })?;
    let pod = match segs[idx].split_once(':') {
        Some((slice, _)) => systemd_pod(slice).map(|(uid, qos)| (uid, qos, idx)),
        None => find_pod(&segs[..idx]),
    };
    Some(ParsedCgroup {
        runtime,
        runtime_certain,
        container_id: id.to_owned(),
        role,
        pod_uid: pod.as_ref().map(|(uid, _, _)| uid.clone()),
        qos: pod.map(|(_, qos, _)| qos),
    })
}

/// Finds the deepest Kubernetes pod segment in `path`, with the segment below it.
pub fn parse_pod_cgroup(path: &str) -> Option<PodCgroup> {
    let segs = segments(path);
    let (pod_uid, qos, idx) = find_pod(&segs)?;
    Some(PodCgroup {
        pod_uid,
        qos,
        child: segs.get(idx + 1).map(|s| (*s).to_owned()),
    })
}

fn segments(path: &str) -> Vec<&str> {
    path.split('/').filter(|s| !s.is_empty()).collect()
}

/// Recognises one container segment. `parent` is the segment above it.
fn container_segment<'a>(
    seg: &'a str,
    parent: Option<&str>,
) -> Option<(Runtime, bool, &'a str, Role)> {
    const PREFIXES: &[(&str, Runtime, Role)] = &[
        ("cri-containerd-", Runtime::Containerd, Role::Container),
        ("nerdctl-", Runtime::Containerd, Role::Container),
        ("crio-conmon-", Runtime::CriO, Role::Conmon),
        ("crio-", Runtime::CriO, Role::Container),
        ("docker-", Runtime::Docker, Role::Container),
        ("libpod-conmon-", Runtime::Podman, Role::Conmon),
        ("libpod-", Runtime::Podman, Role::Container),
    ];
    if let [_slice, prefix, id] = seg.split(':').collect::<Vec<_>>()[..] {
        let runtime = match prefix {
            "cri-containerd" | "nerdctl" => Runtime::Containerd,
            "crio" => Runtime::CriO,
            "docker" => Runtime::Docker,
            "libpod" => Runtime::Podman,
            _ => return None,
        };
        return is_container_id(id).then_some((runtime, true, id, Role::Container));
    }
    let stem = seg.strip_suffix(".scope").unwrap_or(seg);
    for (prefix, runtime, role) in PREFIXES {
        if let Some(id) = stem.strip_prefix(prefix) {
            if is_container_id(id) {
                return Some((*runtime, true, id, *role));
            }
        }
    }
    if is_container_id(seg) {
        return Some(if parent == Some("docker") {
            (Runtime::Docker, true, seg, Role::Container)
        } else {
            (Runtime::Containerd, false, seg, Role::Container)
        });
    }
    None
}

/// Nearest (deepest) pod segment among `segs`: (uid, qos, index).
fn find_pod(segs: &[&str]) -> Option<(String, Qos, usize)> {
    segs.iter().enumerate().rev().find_map(|(i, seg)| {
        let parent = i.checked_sub(1).map(|p| segs[p]);
        systemd_pod(seg)
            .or_else(|| cgroupfs_pod(seg, parent))
            .map(|(uid, qos)| (uid, qos, i))
    })
}

/// `[<prefix>-]kubepods[-<qos>]-pod<uid with _>.slice`.
fn systemd_pod(seg: &str) -> Option<(String, Qos)> {
    let stem = seg.strip_suffix(".slice")?;
    let at = stem.rfind("-pod")?;
    let (head, uid) = (&stem[..at], &stem[at + 4..]);
    let words: Vec<&str> = head.split('-').collect();
    let k = words.iter().position(|w| *w == "kubepods")?;
    let qos = match &words[k + 1..] {
        [] => Qos::Guaranteed,
        ["burstable"] => Qos::Burstable,
        ["besteffort"] => Qos::BestEffort,
        _ => return None,
    };
    Some((normalise_pod_uid(&uid.replace('_', "-"))?, qos))
}

/// `pod<uid>` directly under `kubepods`, `burstable` or `besteffort` (cgroupfs driver).
fn cgroupfs_pod(seg: &str, parent: Option<&str>) -> Option<(String, Qos)> {
    let uid = seg.strip_prefix("pod")?;
    let qos = match parent? {
        "kubepods" => Qos::Guaranteed,
        "burstable" => Qos::Burstable,
        "besteffort" => Qos::BestEffort,
        _ => return None,
    };
    Some((normalise_pod_uid(uid)?, qos))
}

/// Accepts a dashed UUID (8-4-4-4-12 hex) or a 32-hex static-pod hash; returns it lowercased.
fn normalise_pod_uid(uid: &str) -> Option<String> {
    let hex = |s: &str| s.bytes().all(|b| b.is_ascii_hexdigit());
    let groups: Vec<&str> = uid.split('-').collect();
    let ok = match groups.as_slice() {
        [one] => one.len() == 32 && hex(one),
        [a, b, c, d, e] => {
            [a.len(), b.len(), c.len(), d.len(), e.len()] == [8, 4, 4, 4, 12]
                && groups.iter().all(|g| hex(g))
        }
        _ => false,
    };
    ok.then(|| uid.to_ascii_lowercase())
}

#[cfg(test)]
mod tests;
