//! Tests for `cgroupfs.rs`: mountinfo samples (hybrid, pure v2, v1-only, escapes, optional
//! fields), v1 path selection, and the id index over ordinary directory trees and a fake /proc.
use super::*;
use crate::container::testutil::TempDir;

const HYBRID: &str = "\
22 28 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

const PURE_V2: &str = "\
25 30 0:23 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
28 25 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
30 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro
";

const V1_ONLY: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime shared:9 - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/memory rw,relatime shared:10 - cgroup cgroup rw,memory
33 31 0:30 / /sys/fs/cgroup/pids rw,relatime shared:11 - cgroup cgroup rw,pids
34 31 0:31 / /sys/fs/cgroup/systemd rw,relatime shared:12 - cgroup cgroup rw,xattr,name=systemd
";

#[test]
fn hybrid_mountinfo_finds_unified() {
    assert_eq!(
        mode_from_mountinfo(HYBRID),
        CgroupMode::V2 {
            mount: "/sys/fs/cgroup/unified".into(),
            root: "/".into()
        }
    );
}

#[test]
fn pure_v2_mountinfo_with_optional_fields() {
    let mounts = parse_mountinfo(PURE_V2);
    assert_eq!(mounts.len(), 3);
    let m = find_cgroup2(&mounts).unwrap();
    assert_eq!(m.mount_point, Path::new("/sys/fs/cgroup"));
    assert_eq!(m.optional_fields, vec!["shared:9".to_owned()]);
    assert_eq!(m.super_options, "rw,nsdelegate,memory_recursiveprot");
    assert_eq!((m.mount_id, m.parent_id), (28, 25));
    assert_eq!(m.major_minor, "0:26");
}

#[test]
fn v1_only_mountinfo() {
    assert_eq!(mode_from_mountinfo(V1_ONLY), CgroupMode::V1Only);
    assert_eq!(mode_from_mountinfo(""), CgroupMode::V1Only);
}

#[test]
fn several_optional_fields_and_escaped_paths() {
    let line = r"99 28 0:40 /a\040b /mnt/my\040cgroup\011x\134y rw shared:3 master:2 propagate_from:1 unbindable - cgroup2 none\040x rw";
    let m = parse_mountinfo_line(line).unwrap();
    assert_eq!(m.root, Path::new("/a b"));
    assert_eq!(m.mount_point, Path::new("/mnt/my cgroup\tx\\y"));
    assert_eq!(m.optional_fields.len(), 4);
    assert_eq!(m.fstype, "cgroup2");
    assert_eq!(m.source, "none x");
    // A backslash not followed by three octal digits is kept; \777 does not fit a byte.
    let m = parse_mountinfo_line(r"1 2 0:1 / /x\9y\04\777 rw - tmpfs t rw").unwrap();
    assert_eq!(m.mount_point, Path::new(r"/x\9y\04\777"));
}

#[test]
fn prefers_cgroup2_mount_with_root_slash() {
    let text = "\
50 40 0:38 /kubepods/pod1 /host/cg rw - cgroup2 cgroup2 rw
51 40 0:38 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw
";
    let mounts = parse_mountinfo(text);
    assert_eq!(
        find_cgroup2(&mounts).unwrap().mount_point,
        Path::new("/sys/fs/cgroup")
    );
    // Only a subtree mount: use it, with its root as prefix.
    assert_eq!(
        mode_from_mountinfo("50 40 0:38 /sub /cg rw - cgroup2 cgroup2 rw"),
        CgroupMode::V2 {
            mount: "/cg".into(),
            root: "/sub".into()
        }
    );
}

#[test]
fn malformed_mountinfo_lines_are_skipped() {
    let text = "\
garbage
1 2 0:1 / /a rw tmpfs tmpfs rw
x 2 0:1 / /a rw - tmpfs tmpfs rw
1 2 0:1 / /a rw -
1 2 0:1 / - cgroup2 cgroup2 rw
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    let mounts = parse_mountinfo(text);
    assert_eq!(mounts.len(), 1);
    assert!(parse_mountinfo_line("garbage").is_err());
    // No super options at all is tolerated.
    assert_eq!(
        parse_mountinfo_line("1 2 0:1 / /a rw - tmpfs tmpfs")
            .unwrap()
            .super_options,
        ""
    );
}

#[test]
fn strip_root_cases() {
    assert_eq!(strip_root("/a/b", "/"), Some("a/b"));
    assert_eq!(strip_root("/", "/"), Some(""));
    assert_eq!(strip_root("/sub/a", "/sub"), Some("a"));
    assert_eq!(strip_root("/sub", "/sub/"), Some(""));
    assert_eq!(strip_root("/subx/a", "/sub"), None);
    assert_eq!(strip_root("/other", "/sub"), None);
}

const CID: &str = "3f4c2b1a0e9d8c7b6a5f4e3d2c1b0a99887766554433221100ffeeddccbbaa00";

#[test]
fn v1_path_prefers_container_paths() {
    let text = format!(
        "12:pids:/docker/{CID}\n11:cpu,cpuacct:/docker/{CID}\n4:memory:/docker/{CID}\n\
         1:name=systemd:/system.slice/docker.service\n0::/\n"
    );
    assert_eq!(best_v1_path(&text), Some(format!("/docker/{CID}")));
    // Only the systemd hierarchy knows the container.
    let text = format!("4:memory:/\n1:name=systemd:/system.slice/docker-{CID}.scope\n");
    assert_eq!(
        best_v1_path(&text),
        Some(format!("/system.slice/docker-{CID}.scope"))
    );
    // Host process: first non-root path, else root.
    assert_eq!(
        best_v1_path("4:memory:/user.slice\n1:name=systemd:/user.slice/session-1.scope\n"),
        Some("/user.slice".into())
    );
    assert_eq!(best_v1_path("4:memory:/\n0::/\n"), Some("/".into()));
    assert_eq!(best_v1_path(""), None);
}

fn cfg(proc_root: &Path) -> CgroupConfig {
    CgroupConfig {
        proc_root: proc_root.to_owned(),
        ..CgroupConfig::default()
    }
}

fn ino(p: &Path) -> u64 {
    fs::metadata(p).unwrap().ino()
}

#[test]
fn v1_only_resolves_by_pid_and_remembers_exited() {
    let proc = TempDir::new("proc-v1");
    let file = proc.write(
        "4242/cgroup",
        &format!("4:memory:/kubepods/burstable/pod1/{CID}\n"),
    );
    let mut r = CgroupResolver::with_mode(CgroupMode::V1Only, cfg(proc.path()));
    assert!(r.attribution_may_be_missing());
    assert_eq!(r.path_for_id(5), None);
    assert_eq!(r.path_for_id_or_pid(5, Some(4242)), None);
    let want = format!("/kubepods/burstable/pod1/{CID}");
    assert_eq!(r.path_for_pid(4242).as_deref(), Some(want.as_str()));
    fs::remove_file(file).unwrap();
    // Exited: the first sight is remembered.
    assert_eq!(r.path_for_pid(4242).as_deref(), Some(want.as_str()));
    // Never seen and gone: missing.
    assert_eq!(r.path_for_pid(4243), None);
}

#[test]
fn walk_indexes_directory_inodes_and_keeps_removed_ones() {
    let tree = TempDir::new("walk");
    let leaf = tree.path().join(format!("kubepods/besteffort/podx/{CID}"));
    fs::create_dir_all(&leaf).unwrap();
    fs::write(tree.path().join("kubepods/cgroup.procs"), "").unwrap();
    let mut r = CgroupResolver::new(Some(tree.path().to_owned()), cfg(Path::new("/proc"))).unwrap();
    assert!(!r.attribution_may_be_missing());
    assert_eq!(r.path_for_id(1).as_deref(), Some("/"));
    let id = ino(&leaf);
    let want = format!("/kubepods/besteffort/podx/{CID}");
    assert_eq!(r.path_for_id(id).as_deref(), Some(want.as_str()));
    assert_eq!(r.walks(), 1);
    let root_ino = ino(tree.path());
    assert_eq!(r.path_for_id(root_ino).as_deref(), Some("/"));
    assert_eq!(r.known_ids().len(), 5);
    // Gone from disk, still answered, without a walk.
    fs::remove_dir(&leaf).unwrap();
    assert_eq!(r.path_for_id(id).as_deref(), Some(want.as_str()));
    assert_eq!(r.walks(), 1);
}

#[test]
fn unknown_ids_rewalk_at_most_once_per_interval() {
    let tree = TempDir::new("rewalk");
    let mut c = cfg(Path::new("/proc"));
    c.rewalk_interval = Duration::from_secs(3600);
    let mut r = CgroupResolver::new(Some(tree.path().to_owned()), c).unwrap();
    assert_eq!(r.path_for_id(u64::MAX), None);
    assert_eq!(r.walks(), 1);
    let late = tree.path().join("late");
    fs::create_dir(&late).unwrap();
    // Rate-limited: no second walk, so the new directory is not found by id alone ...
    assert_eq!(r.path_for_id(ino(&late)), None);
    assert_eq!(r.walks(), 1);
    // ... but an explicit refresh finds it.
    assert_eq!(r.refresh().unwrap(), 2);
    assert_eq!(r.path_for_id(ino(&late)).as_deref(), Some("/late"));
    // A zero interval walks on every unknown id.
    let mut c = cfg(Path::new("/proc"));
    c.rewalk_interval = Duration::ZERO;
    let mut r = CgroupResolver::new(Some(tree.path().to_owned()), c).unwrap();
    assert_eq!(r.path_for_id(u64::MAX), None);
    assert_eq!(r.path_for_id(u64::MAX - 1), None);
    assert_eq!(r.walks(), 2);
}

#[test]
fn pid_hint_resolves_between_walks_only_when_inode_matches() {
    let tree = TempDir::new("pidhint");
    let proc = TempDir::new("proc-v2");
    let mut c = cfg(proc.path());
    c.rewalk_interval = Duration::from_secs(3600);
    let mut r = CgroupResolver::new(Some(tree.path().to_owned()), c).unwrap();
    r.refresh().unwrap();
    let dir = tree.path().join(format!("docker/{CID}"));
    fs::create_dir_all(&dir).unwrap();
    proc.write(
        "77/cgroup",
        &format!("1:name=systemd:/x\n0::/docker/{CID}\n"),
    );
    let id = ino(&dir);
    // Wrong id for that pid: refused.
    assert_eq!(r.path_for_id_or_pid(id + 1_000_000, Some(77)), None);
    let want = format!("/docker/{CID}");
    assert_eq!(
        r.path_for_id_or_pid(id, Some(77)).as_deref(),
        Some(want.as_str())
    );
    assert_eq!(r.walks(), 1);
    // Now indexed.
    assert_eq!(r.path_for_id(id).as_deref(), Some(want.as_str()));
    assert_eq!(r.path_for_pid(77).as_deref(), Some(want.as_str()));
    assert_eq!(r.path_for_id_or_pid(12345, Some(78)), None);
}

#[test]
fn subtree_mount_root_prefixes_paths() {
    let tree = TempDir::new("subtree");
    let leaf = tree.path().join("a");
    fs::create_dir(&leaf).unwrap();
    let mode = CgroupMode::V2 {
        mount: tree.path().to_owned(),
        root: "/outer/".into(),
    };
    let mut r = CgroupResolver::with_mode(mode, cfg(Path::new("/proc")));
    assert_eq!(r.path_for_id(ino(&leaf)).as_deref(), Some("/outer/a"));
    assert_eq!(r.path_for_id(ino(tree.path())).as_deref(), Some("/outer"));
}

#[test]
fn index_is_bounded_and_counts_evictions() {
    let tree = TempDir::new("bounded");
    for i in 0..20 {
        fs::create_dir(tree.path().join(format!("d{i}"))).unwrap();
    }
    let mut c = cfg(Path::new("/proc"));
    c.max_paths = 8;
    let mut r = CgroupResolver::new(Some(tree.path().to_owned()), c).unwrap();
    assert_eq!(r.refresh().unwrap(), 21);
    assert!(r.known_ids().len() <= 8);
    assert!(r.evictions() >= 13);
    // The walk safety bound.
    let mut c = cfg(Path::new("/proc"));
    c.max_walk_dirs = 5;
    let mut r = CgroupResolver::new(Some(tree.path().to_owned()), c).unwrap();
    assert_eq!(r.refresh().unwrap(), 5);
}

#[test]
fn missing_mount_is_a_logged_miss() {
    let mut r = CgroupResolver::new(
        Some("/nonexistent/sigtrace-cgroup".into()),
        cfg(Path::new("/proc")),
    )
    .unwrap();
    assert!(r.refresh().is_err());
    assert_eq!(r.path_for_id(99), None);
    assert!(CgroupResolver::new(None, cfg(Path::new("/nonexistent-proc"))).is_err());
}
