//! Tests for [`ContainerResolver`]: over directory trees standing in for the v2 mount, a fake
//! /proc for v1-only hosts, and one test on the real cgroup v2 hierarchy (root only).
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;
use crate::container::testutil::TempDir;
use crate::container::workload::{Workload, WorkloadKind, WorkloadSource};

const ID: &str = "3f4c2b1a0e9d8c7b6a5f4e3d2c1b0a99887766554433221100ffeeddccbbaa00";
const ID2: &str = "aaaabbbbccccddddeeeeffff0000111122223333444455556666777788889999";
const ID3: &str = "0000111122223333444455556666777788889999aaaabbbbccccddddeeeeffff";
const UID: &str = "1e2d3c4b-5a69-4788-9a0b-1c2d3e4f5a6b";
const UID_: &str = "1e2d3c4b_5a69_4788_9a0b_1c2d3e4f5a6b";

fn cri_bundle(name: &str) -> String {
    format!(
        r#"{{"annotations": {{
        "io.kubernetes.cri.container-name": "{name}",
        "io.kubernetes.cri.container-type": "container",
        "io.kubernetes.cri.image-name": "registry.local/app:2",
        "io.kubernetes.cri.sandbox-name": "app-0",
        "io.kubernetes.cri.sandbox-namespace": "prod",
        "io.kubernetes.cri.sandbox-uid": "{UID}"}}}}"#
    )
}

fn options(state: &TempDir, mount: Option<&Path>, proc_root: &Path) -> ResolverOptions {
    ResolverOptions {
        cgroup2_mount: mount.map(Path::to_owned),
        cgroup: CgroupConfig {
            proc_root: proc_root.to_owned(),
            ..CgroupConfig::default()
        },
        metadata_dirs: MetadataDirs {
            containerd_state: vec![state.path().join("containerd")],
            crio_storage: vec![state.path().join("storage")],
            docker_data_root: vec![state.path().join("docker")],
        },
        max_containers: 64,
        cri_socket: None,
    }
}

fn mkdir(root: &Path, rel: &str) -> u64 {
    let p = root.join(rel.trim_start_matches('/'));
    fs::create_dir_all(&p).unwrap();
    fs::metadata(&p).unwrap().ino()
}

#[test]
fn resolves_runtimes_with_metadata_and_host_paths() {
    let tree = TempDir::new("res-tree");
    let state = TempDir::new("res-state");
    let cri = format!(
        "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID_}.slice/cri-containerd-{ID}.scope"
    );
    let conmon = format!("/kubepods.slice/kubepods-pod{UID_}.slice/crio-conmon-{ID2}.scope");
    let docker = format!("/sigtrace-parent/{ID3}");
    let unknown = format!("/kubepods/besteffort/pod{UID}/shortid");
    let host = "/system.slice/containerd.service";
    let pod_only = format!("/kubepods/besteffort/pod{UID}");
    let ids: Vec<u64> = [&cri, &conmon, &docker, &unknown, host, &pod_only]
        .iter()
        .map(|p| mkdir(tree.path(), p))
        .collect();
    state.write(
        &format!("containerd/io.containerd.runtime.v2.task/k8s.io/{ID}/config.json"),
        &cri_bundle("app"),
    );
    state.write(
        &format!("storage/overlay-containers/{ID2}/userdata/config.json"),
        r#"{"annotations": {"io.kubernetes.pod.name": "db-0", "io.kubernetes.container.name": "db"}}"#,
    );
    state.write(
        &format!("docker/containers/{ID3}/config.v2.json"),
        r#"{"Name": "/web", "Config": {"Image": "local/busybox:1"}}"#,
    );
    let opts = options(&state, Some(tree.path()), Path::new("/proc"));
    let mut r = ContainerResolver::new(opts).unwrap();

    let info = r.resolve(ids[0], None).unwrap();
    assert_eq!(
        *info,
        ContainerInfo {
            id: ID.into(),
            runtime: "containerd".into(),
            name: Some("app".into()),
            pod: Some("app-0".into()),
            namespace: Some("prod".into()),
            pod_uid: Some(UID.into()),
            qos: Some("burstable".into()),
            container_type: Some("container".into()),
            image: Some("registry.local/app:2".into()),
            stop_signal: None,
            workload: Some(Workload {
                name: "app".into(),
                kind: WorkloadKind::StatefulSet,
                source: WorkloadSource::Name,
            }),
            termination_grace_s: None,
            prestop_hook: None,
            facts_source: None,
            cgroup_id: ids[0],
            cgroup_path: cri.clone(),
        }
    );

    let info = r.resolve(ids[1], None).unwrap();
    assert_eq!((info.runtime.as_str(), info.id.as_str()), ("cri-o", ID2));
    assert_eq!(info.container_type.as_deref(), Some("conmon"));
    assert_eq!(info.name.as_deref(), Some("db"));
    assert_eq!(info.qos.as_deref(), Some("guaranteed"));

    // Bare 64-hex under a custom parent: the docker state settles the runtime.
    let info = r.resolve(ids[2], None).unwrap();
    assert_eq!(info.runtime, "docker");
    assert_eq!(info.name.as_deref(), Some("web"));
    assert_eq!(info.image.as_deref(), Some("local/busybox:1"));
    assert_eq!(info.pod_uid, None);

    // Unknown leaf inside a pod: a container of unknown layout.
    let info = r.resolve(ids[3], None).unwrap();
    assert_eq!(
        (info.runtime.as_str(), info.id.as_str()),
        ("unknown", "shortid")
    );
    assert_eq!(info.pod_uid.as_deref(), Some(UID));
    assert_eq!(info.cgroup_path, unknown);

    // Host.
    assert_eq!(r.resolve(ids[4], None), None);
    assert_eq!(r.resolve(ids[5], None), None);
    assert_eq!(r.resolve(1, None), None);
    let root_ino = fs::metadata(tree.path()).unwrap().ino();
    assert_eq!(r.resolve(root_ino, None), None);

    let s = r.stats();
    assert_eq!((s.resolved, s.host, s.misses), (4, 4, 0));
    assert_eq!(s.walks, 1);
    assert_eq!(s.metadata_misses, 0);
}

#[test]
fn cached_per_cgroup_after_cgroup_and_bundle_disappear() {
    let tree = TempDir::new("res-cache");
    let state = TempDir::new("res-cache-state");
    let path = format!("/kubepods/burstable/pod{UID}/{ID}");
    let id = mkdir(tree.path(), &path);
    let bundle = state.write(
        &format!("containerd/io.containerd.runtime.v2.task/k8s.io/{ID}/config.json"),
        &cri_bundle("app"),
    );
    let mut r =
        ContainerResolver::new(options(&state, Some(tree.path()), Path::new("/proc"))).unwrap();
    let first = r.resolve(id, None).unwrap();
    assert_eq!(first.runtime, "containerd");
    assert_eq!(first.qos.as_deref(), Some("burstable"));
    fs::remove_file(bundle).unwrap();
    fs::remove_dir(tree.path().join(path.trim_start_matches('/'))).unwrap();
    let again = r.resolve(id, None).unwrap();
    assert!(Arc::ptr_eq(&first, &again));
    assert_eq!(again.name.as_deref(), Some("app"));
    assert_eq!(r.stats().resolved, 2);
}

#[test]
fn misses_are_counted_and_not_cached() {
    let tree = TempDir::new("res-miss");
    let state = TempDir::new("res-miss-state");
    let mut opts = options(&state, Some(tree.path()), Path::new("/proc"));
    opts.cgroup.rewalk_interval = Duration::ZERO;
    let mut r = ContainerResolver::new(opts).unwrap();
    assert_eq!(r.resolve(u64::MAX, None), None);
    assert_eq!(r.resolve(0, None), None);
    // The cgroup appears later: found by the next walk.
    let id = mkdir(tree.path(), &format!("/docker/{ID}"));
    let info = r.resolve(id, None).unwrap();
    assert_eq!(info.runtime, "docker");
    let s = r.stats();
    assert_eq!((s.resolved, s.misses), (1, 2));
    // No docker state for it: a counted metadata miss, the container is still reported.
    assert_eq!(s.metadata_misses, 1);
    assert_eq!(info.name, None);
}

#[test]
fn malformed_bundle_is_a_metadata_miss_not_an_error() {
    let tree = TempDir::new("res-bad");
    let state = TempDir::new("res-bad-state");
    let id = mkdir(
        tree.path(),
        &format!("/system.slice/cri-containerd-{ID}.scope"),
    );
    state.write(
        &format!("containerd/io.containerd.runtime.v2.task/k8s.io/{ID}/config.json"),
        "{\"annotations\": [",
    );
    let mut r =
        ContainerResolver::new(options(&state, Some(tree.path()), Path::new("/proc"))).unwrap();
    let info = r.resolve(id, None).unwrap();
    assert_eq!(
        (info.runtime.as_str(), info.name.as_deref()),
        ("containerd", None)
    );
    let s = r.stats();
    assert_eq!((s.metadata_misses, s.metadata_malformed), (1, 1));
}

#[test]
fn warm_up_resolves_every_container() {
    let tree = TempDir::new("res-warm");
    let state = TempDir::new("res-warm-state");
    mkdir(tree.path(), &format!("/docker/{ID}"));
    mkdir(tree.path(), &format!("/system.slice/crio-{ID2}.scope"));
    mkdir(tree.path(), "/system.slice/sshd.service");
    let mut r =
        ContainerResolver::new(options(&state, Some(tree.path()), Path::new("/proc"))).unwrap();
    assert_eq!(r.warm_up(), 2);
}

#[test]
fn result_cache_is_bounded() {
    let tree = TempDir::new("res-bounded");
    let state = TempDir::new("res-bounded-state");
    let ids: Vec<u64> = (0..20u32)
        .map(|i| mkdir(tree.path(), &format!("/docker/{i:064x}")))
        .collect();
    let mut opts = options(&state, Some(tree.path()), Path::new("/proc"));
    opts.max_containers = 8;
    let mut r = ContainerResolver::new(opts).unwrap();
    for id in &ids {
        assert!(r.resolve(*id, None).is_some());
    }
    // Result cache and metadata cache each evicted at least 12.
    assert!(r.stats().evictions >= 24);
}

#[test]
fn v1_only_resolves_by_pid() {
    let state = TempDir::new("res-v1-state");
    let proc = TempDir::new("res-v1-proc");
    proc.write(
        "100/cgroup",
        &format!("5:memory:/kubepods/besteffort/pod{UID}/{ID}\n1:name=systemd:/kubepods/besteffort/pod{UID}/{ID}\n"),
    );
    proc.write(
        "101/cgroup",
        &format!("5:memory:/kubepods/besteffort/pod{UID}/{ID}\n"),
    );
    proc.write("102/cgroup", "5:memory:/user.slice\n");
    let opts = options(&state, None, proc.path());
    let cg = CgroupResolver::with_mode(CgroupMode::V1Only, opts.cgroup.clone());
    let mut r = ContainerResolver::with_cgroups(cg, &opts);
    assert!(r.attribution_may_be_missing());
    let a = r.resolve(1, Some(100)).unwrap();
    assert_eq!(a.id, ID);
    assert_eq!(a.qos.as_deref(), Some("besteffort"));
    // Same path from another pid: same cached answer.
    let b = r.resolve(1, Some(101)).unwrap();
    assert!(Arc::ptr_eq(&a, &b));
    assert_eq!(r.resolve(1, Some(102)), None);
    // No pid, or a pid never seen that has exited: missing.
    assert_eq!(r.resolve(1, None), None);
    assert_eq!(r.resolve(1, Some(999)), None);
    let s = r.stats();
    assert_eq!((s.resolved, s.host, s.misses), (2, 1, 2));
}

#[test]
fn new_detects_v1_only_from_mountinfo() {
    let state = TempDir::new("res-v1-mi-state");
    let proc = TempDir::new("res-v1-mi-proc");
    proc.write(
        "self/mountinfo",
        "32 31 0:29 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n",
    );
    let r = ContainerResolver::new(options(&state, None, proc.path())).unwrap();
    assert!(r.attribution_may_be_missing());
    assert_eq!(r.cgroup_mode(), &CgroupMode::V1Only);
}

/// Removes the directories it was given, deepest first, on drop (also when a test panics).
struct CgroupDirs(Vec<PathBuf>);

impl Drop for CgroupDirs {
    fn drop(&mut self) {
        for d in self.0.iter().rev() {
            if let Err(e) = fs::remove_dir(d) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    eprintln!("could not remove {}: {e}", d.display());
                }
            }
        }
    }
}

/// Kills and reaps a child process on drop.
struct ChildGuard(std::process::Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A test that cannot run here: it fails where skipping is not allowed (`CI` set, as in CI, or
/// `SIGTRACE_NO_SKIP` set, as `cargo xtask test` does as root), and says so loudly elsewhere.
fn skip_or_fail(why: &str) {
    let strict = ["CI", "SIGTRACE_NO_SKIP"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|v| !v.is_empty() && v != "0" && v != "false"));
    assert!(
        !strict,
        "{why}, and skipping is not allowed here (CI / SIGTRACE_NO_SKIP)"
    );
    eprintln!("SKIPPED: {why}");
    println!("SKIPPED: {why}");
}

#[test]
fn real_cgroup_v2_hierarchy() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        skip_or_fail("real_cgroup_v2_hierarchy needs root");
        return;
    }
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let CgroupMode::V2 { mount, root } = cgroupfs::mode_from_mountinfo(&mountinfo) else {
        skip_or_fail("real_cgroup_v2_hierarchy needs a cgroup v2 hierarchy");
        return;
    };
    assert_eq!(
        root, "/",
        "test expects the v2 mount to show the whole hierarchy"
    );
    let top = format!("sigtrace-test-{}", std::process::id());
    let rel = format!(
        "{top}/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID_}.slice/cri-containerd-{ID}.scope"
    );
    let mut dirs = CgroupDirs(Vec::new());
    let mut acc = mount.clone();
    for seg in rel.split('/') {
        acc.push(seg);
        fs::create_dir(&acc).unwrap();
        dirs.0.push(acc.clone());
    }
    let leaf = acc;
    let id = fs::metadata(&leaf).unwrap().ino();
    let state = TempDir::new("res-real-state");
    state.write(
        &format!("containerd/io.containerd.runtime.v2.task/k8s.io/{ID}/config.json"),
        &cri_bundle("real"),
    );
    let mut opts = options(&state, None, Path::new("/proc"));
    opts.cgroup.rewalk_interval = Duration::from_secs(3600);
    let mut r = ContainerResolver::new(opts).unwrap();
    assert_eq!(
        r.cgroup_mode(),
        &CgroupMode::V2 {
            mount: mount.clone(),
            root
        }
    );
    assert!(!r.attribution_may_be_missing());

    let want_path = format!("/{rel}");
    assert_eq!(
        r.cgroups_mut().path_for_id(id).as_deref(),
        Some(want_path.as_str())
    );
    let info = r.resolve(id, None).unwrap();
    assert_eq!(info.cgroup_id, id);
    assert_eq!(info.cgroup_path, want_path);
    assert_eq!(info.runtime, "containerd");
    assert_eq!(info.id, ID);
    assert_eq!(info.pod_uid.as_deref(), Some(UID));
    assert_eq!(info.qos.as_deref(), Some("burstable"));
    assert_eq!(info.name.as_deref(), Some("real"));
    assert_eq!(r.resolve(1, None), None);

    // A cgroup created after the last walk (rate-limited), with no process in it, is found by
    // its id alone (open_by_handle_at), without a walk.
    let fresh_rel = format!("{top}/fresh");
    let fresh = mount.join(&fresh_rel);
    fs::create_dir(&fresh).unwrap();
    dirs.0.push(fresh.clone());
    let fresh_id = fs::metadata(&fresh).unwrap().ino();
    let walks = r.stats().walks;
    assert_eq!(
        r.cgroups_mut().path_for_id(fresh_id).as_deref(),
        Some(format!("/{fresh_rel}").as_str())
    );
    assert_eq!(r.stats().walks, walks);

    // A cgroup created after the last walk (rate-limited) is found through a process in it.
    let late_rel = format!("{top}/docker/{ID2}");
    for p in [format!("{top}/docker"), late_rel.clone()] {
        let d = mount.join(p);
        fs::create_dir(&d).unwrap();
        dirs.0.push(d);
    }
    let late_id = fs::metadata(mount.join(&late_rel)).unwrap().ino();
    let child = ChildGuard(
        std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap(),
    );
    let pid = child.0.id();
    fs::write(mount.join(&late_rel).join("cgroup.procs"), pid.to_string()).unwrap();
    let walks = r.stats().walks;
    let info = r.resolve(late_id, Some(pid)).unwrap();
    assert_eq!((info.runtime.as_str(), info.id.as_str()), ("docker", ID2));
    assert_eq!(r.stats().walks, walks);
    drop(child);

    // The cgroups disappear; the answers stay.
    drop(dirs);
    assert!(!leaf.exists());
    assert_eq!(
        r.cgroups_mut().path_for_id(id).as_deref(),
        Some(want_path.as_str())
    );
    assert_eq!(r.resolve(id, None).unwrap().id, ID);
    assert_eq!(r.resolve(late_id, None).unwrap().id, ID2);
}

/// A cgroup known from the kernel's record of its creation resolves after it is gone; one that
/// was never seen is counted unresolved, once however often it is asked for.
#[test]
fn a_created_cgroup_resolves_once_gone_and_an_unknown_one_is_counted_once() {
    let tree = TempDir::new("created-tree");
    let state = TempDir::new("created-state");
    let mut r =
        ContainerResolver::new(options(&state, Some(tree.path()), Path::new("/proc"))).unwrap();
    r.cgroup_created(900_001, &format!("/system.slice/docker-{ID}.scope"));
    let info = r
        .resolve(900_001, None)
        .expect("a container from the recorded path");
    assert_eq!((info.id.as_str(), info.runtime.as_str()), (ID, "docker"));
    assert_eq!(r.stats().unresolved_cgroups, 0);
    for _ in 0..3 {
        assert!(r.resolve(900_002, None).is_none());
    }
    let stats = r.stats();
    assert_eq!((stats.unresolved_cgroups, stats.misses), (1, 3));
}
