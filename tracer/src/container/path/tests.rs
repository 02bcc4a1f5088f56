//! Table-driven tests for `path.rs`: every runtime × cgroup driver layout, nesting,
//! subdirectories below the container, and malformed paths.
use super::*;

const ID: &str = "3f4c2b1a0e9d8c7b6a5f4e3d2c1b0a99887766554433221100ffeeddccbbaa00";
const ID2: &str = "aaaabbbbccccddddeeeeffff0000111122223333444455556666777788889999";
const UID: &str = "1e2d3c4b-5a69-4788-9a0b-1c2d3e4f5a6b";
const UID_: &str = "1e2d3c4b_5a69_4788_9a0b_1c2d3e4f5a6b";
const STATIC_UID: &str = "0123456789abcdef0123456789abcdef";

struct Case {
    path: String,
    runtime: Runtime,
    certain: bool,
    id: &'static str,
    role: Role,
    pod: Option<&'static str>,
    qos: Option<Qos>,
}

fn case(path: String, runtime: Runtime, pod: Option<&'static str>, qos: Option<Qos>) -> Case {
    Case {
        path,
        runtime,
        certain: true,
        id: ID,
        role: Role::Container,
        pod,
        qos,
    }
}

fn guessed(mut c: Case) -> Case {
    c.certain = false;
    c
}

fn conmon(mut c: Case) -> Case {
    c.role = Role::Conmon;
    c
}

fn recognised_cases() -> Vec<Case> {
    use Qos::*;
    use Runtime::*;
    let sd = |qos: &str, leaf: String| {
        if qos.is_empty() {
            format!("/kubepods.slice/kubepods-pod{UID_}.slice/{leaf}")
        } else {
            format!("/kubepods.slice/kubepods-{qos}.slice/kubepods-{qos}-pod{UID_}.slice/{leaf}")
        }
    };
    let fs = |qos: &str, leaf: String| {
        if qos.is_empty() {
            format!("/kubepods/pod{UID}/{leaf}")
        } else {
            format!("/kubepods/{qos}/pod{UID}/{leaf}")
        }
    };
    let mut v = Vec::new();
    // Kubernetes, systemd driver, every runtime × QoS.
    for (qos_word, qos) in [
        ("burstable", Burstable),
        ("besteffort", BestEffort),
        ("", Guaranteed),
    ] {
        for (leaf, rt) in [
            (format!("cri-containerd-{ID}.scope"), Containerd),
            (format!("crio-{ID}.scope"), CriO),
            (format!("docker-{ID}.scope"), Docker),
        ] {
            v.push(case(sd(qos_word, leaf), rt, Some(UID), Some(qos)));
        }
        v.push(conmon(case(
            sd(qos_word, format!("crio-conmon-{ID}.scope")),
            CriO,
            Some(UID),
            Some(qos),
        )));
        // cgroupfs driver: bare id (containerd guessed), crio-<id> (CRI-O), crio-conmon-<id>.
        v.push(guessed(case(
            fs(qos_word, ID.into()),
            Containerd,
            Some(UID),
            Some(qos),
        )));
        v.push(case(
            fs(qos_word, format!("crio-{ID}")),
            CriO,
            Some(UID),
            Some(qos),
        ));
        v.push(conmon(case(
            fs(qos_word, format!("crio-conmon-{ID}")),
            CriO,
            Some(UID),
            Some(qos),
        )));
    }
    // Static pod uid (32 hex, no dashes), both drivers.
    v.push(case(
        format!("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{STATIC_UID}.slice/cri-containerd-{ID}.scope"),
        Containerd,
        Some(STATIC_UID),
        Some(Burstable),
    ));
    v.push(guessed(case(
        format!("/kubepods/besteffort/pod{STATIC_UID}/{ID}"),
        Containerd,
        Some(STATIC_UID),
        Some(BestEffort),
    )));
    // Plain docker: systemd driver, cgroupfs driver, custom --cgroup-parent (guessed).
    v.push(case(
        format!("/system.slice/docker-{ID}.scope"),
        Docker,
        None,
        None,
    ));
    v.push(case(format!("/docker/{ID}"), Docker, None, None));
    v.push(guessed(case(
        format!("/my-parent/{ID}"),
        Containerd,
        None,
        None,
    )));
    // Plain containerd / ctr: /<namespace>/<id>, or any 64-hex leaf.
    v.push(guessed(case(
        format!("/default/{ID}"),
        Containerd,
        None,
        None,
    )));
    v.push(guessed(case(format!("/{ID}"), Containerd, None, None)));
    v.push(case(
        format!("/system.slice/nerdctl-{ID}.scope"),
        Containerd,
        None,
        None,
    ));
    // Podman: rootful systemd, rootless user slice, cgroupfs, conmon, pods.
    v.push(case(
        format!("/machine.slice/libpod-{ID}.scope"),
        Podman,
        None,
        None,
    ));
    v.push(case(
        format!("/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{ID}.scope"),
        Podman,
        None,
        None,
    ));
    v.push(case(
        format!("/libpod_parent/libpod-{ID}"),
        Podman,
        None,
        None,
    ));
    v.push(conmon(case(
        format!("/machine.slice/libpod-conmon-{ID}.scope"),
        Podman,
        None,
        None,
    )));
    v.push(case(
        format!("/machine.slice/machine-libpod_pod_{ID2}.slice/libpod-{ID}.scope"),
        Podman,
        None,
        None,
    ));
    // Subdirectories below the container attribute to the container.
    v.push(case(
        format!("/system.slice/docker-{ID}.scope/init.scope"),
        Docker,
        None,
        None,
    ));
    v.push(case(
        sd("burstable", format!("cri-containerd-{ID}.scope/init.scope")),
        Containerd,
        Some(UID),
        Some(Burstable),
    ));
    v.push(case(format!("/docker/{ID}/sub/deeper"), Docker, None, None));
    v.push(guessed(case(
        fs("burstable", format!("{ID}/sub")),
        Containerd,
        Some(UID),
        Some(Burstable),
    )));
    // Nested: a Kubernetes node inside a container (kind / k3d / prefix before /kubepods).
    v.push(case(
        format!("/system.slice/docker-{ID2}.scope/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod{UID_}.slice/cri-containerd-{ID}.scope"),
        Containerd,
        Some(UID),
        Some(BestEffort),
    ));
    v.push(case(
        format!("/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-pod{UID_}.slice/cri-containerd-{ID}.scope"),
        Containerd,
        Some(UID),
        Some(Guaranteed),
    ));
    v.push(guessed(case(
        format!("/docker/{ID2}/kubepods/burstable/pod{UID}/{ID}"),
        Containerd,
        Some(UID),
        Some(Burstable),
    )));
    v.push(guessed(case(
        format!("/node-1/kubepods/pod{UID}/{ID}"),
        Containerd,
        Some(UID),
        Some(Guaranteed),
    )));
    // The node container's own processes belong to the node container.
    v.push(case(
        format!("/system.slice/docker-{ID}.scope/system.slice/containerd.service"),
        Docker,
        None,
        None,
    ));
    // Tolerated: trailing slash, doubled slashes, no leading slash.
    v.push(case(format!("/docker/{ID}/"), Docker, None, None));
    v.push(guessed(case(
        format!("//kubepods//burstable//pod{UID}//{ID}//"),
        Containerd,
        Some(UID),
        Some(Burstable),
    )));
    v.push(case(
        format!("system.slice/docker-{ID}.scope"),
        Docker,
        None,
        None,
    ));
    // Malformed pod segments do not hide the container.
    v.push(guessed(case(
        format!("/kubepods/burstable/pod/{ID}"),
        Containerd,
        None,
        None,
    )));
    v.push(case(
        format!("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod.slice/cri-containerd-{ID}.scope"),
        Containerd,
        None,
        None,
    ));
    v.push(case(
        format!("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-podnot_a_uid.slice/crio-{ID}.scope"),
        CriO,
        None,
        None,
    ));
    v.push(guessed(case(
        format!("/kubepods/burstable/pod{}/{ID}", &UID[..30]),
        Containerd,
        None,
        None,
    )));
    // runc's systemd-form cgroupsPath under its cgroupfs driver (a systemd-shaped parent
    // with no systemd): `<pod slice>:<prefix>:<id>` at the root, every runtime × QoS.
    for (slice, qos) in [
        (
            format!("kubepods-burstable-pod{UID_}.slice"),
            Some(Burstable),
        ),
        (
            format!("kubepods-besteffort-pod{UID_}.slice"),
            Some(BestEffort),
        ),
        (format!("kubepods-pod{UID_}.slice"), Some(Guaranteed)),
    ] {
        for (prefix, rt) in [
            ("cri-containerd", Containerd),
            ("crio", CriO),
            ("docker", Docker),
            ("libpod", Podman),
        ] {
            v.push(case(format!("/{slice}:{prefix}:{ID}"), rt, Some(UID), qos));
        }
    }
    // A colon segment outside a pod slice: still the container, no pod.
    v.push(case(
        format!("/system.slice:docker:{ID}"),
        Docker,
        None,
        None,
    ));
    // pod<uid> outside a kubepods parent is not a pod.
    v.push(guessed(case(
        format!("/somewhere/pod{UID}/{ID}"),
        Containerd,
        None,
        None,
    )));
    v
}

#[test]
fn recognised_layouts() {
    for c in recognised_cases() {
        let got =
            parse_cgroup_path(&c.path).unwrap_or_else(|| panic!("not recognised: {}", c.path));
        let want = ParsedCgroup {
            runtime: c.runtime,
            runtime_certain: c.certain,
            container_id: c.id.to_owned(),
            role: c.role,
            pod_uid: c.pod.map(str::to_owned),
            qos: c.qos,
        };
        assert_eq!(got, want, "path {}", c.path);
    }
}

#[test]
fn host_and_unknown_layouts_are_none() {
    let short = &ID[..12];
    let upper = ID.to_ascii_uppercase();
    let nonhex = format!("{}g", &ID[..63]);
    let long = format!("{ID}0");
    let cases = [
        String::new(),
        "/".into(),
        "//".into(),
        "/init.scope".into(),
        "/system.slice/containerd.service".into(),
        "/system.slice/docker.service".into(),
        "/user.slice/user-1000.slice/session-3.scope".into(),
        "/kubepods.slice".into(),
        "/kubepods.slice/kubepods-burstable.slice".into(),
        // Pod-level cgroup with no container below it.
        format!("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID_}.slice"),
        format!("/kubepods/burstable/pod{UID}"),
        format!("/kubepods/burstable/pod{UID}/"),
        // Short, non-hex, upper-case, over-long ids.
        format!("/docker/{short}"),
        format!("/system.slice/docker-{short}.scope"),
        format!("/kubepods/burstable/pod{UID}/{short}"),
        format!("/docker/{nonhex}"),
        format!("/system.slice/docker-{nonhex}.scope"),
        format!("/docker/{upper}"),
        format!("/docker/{long}"),
        format!("/system.slice/cri-containerd-{long}.scope"),
        // Prefix without id, unknown prefixes, wrong suffix.
        "/system.slice/docker-.scope".into(),
        "/system.slice/crio-conmon-.scope".into(),
        format!("/system.slice/rkt-{ID}.scope"),
        format!("/system.slice/docker-{ID}.service"),
        format!("/system.slice/docker-{ID}.scope.extra"),
        // Colon forms with an unknown prefix, a short id, or the wrong number of parts.
        format!("/kubepods-pod{UID_}.slice:rkt:{ID}"),
        format!("/kubepods-pod{UID_}.slice:cri-containerd:{short}"),
        format!("/kubepods-pod{UID_}.slice:{ID}"),
        format!("/a:cri-containerd:{ID}:b"),
    ];
    for p in &cases {
        assert_eq!(parse_cgroup_path(p), None, "path {p:?}");
    }
}

#[test]
fn deepest_container_segment_wins() {
    let p = format!("/docker/{ID2}/docker/{ID}");
    let got = parse_cgroup_path(&p).unwrap();
    assert_eq!(got.container_id, ID);
    let p = format!("/system.slice/docker-{ID}.scope/system.slice/docker-{ID2}.scope/init.scope");
    assert_eq!(parse_cgroup_path(&p).unwrap().container_id, ID2);
}

#[test]
fn nearest_pod_wins() {
    let other = "99999999-8888-7777-6666-555555555555";
    let p = format!("/kubepods/burstable/pod{other}/{ID2}/kubepods/besteffort/pod{UID}/{ID}");
    let got = parse_cgroup_path(&p).unwrap();
    assert_eq!(got.pod_uid.as_deref(), Some(UID));
    assert_eq!(got.qos, Some(Qos::BestEffort));
}

#[test]
fn pod_uid_is_normalised() {
    let upper_ = UID_.to_ascii_uppercase();
    let p = format!("/kubepods.slice/kubepods-pod{upper_}.slice/crio-{ID}.scope");
    assert_eq!(parse_cgroup_path(&p).unwrap().pod_uid.as_deref(), Some(UID));
    // Mixed separators are normalised too (systemd escapes '-' to '_').
    let mixed = "1e2d3c4b_5a69-4788_9a0b-1c2d3e4f5a6b";
    let p = format!("/kubepods.slice/kubepods-pod{mixed}.slice/crio-{ID}.scope");
    assert_eq!(parse_cgroup_path(&p).unwrap().pod_uid.as_deref(), Some(UID));
}

#[test]
fn systemd_pod_slice_rejects_unknown_qos_words() {
    let p = format!("/kubepods.slice/kubepods-weird.slice/kubepods-weird-pod{UID_}.slice/cri-containerd-{ID}.scope");
    let got = parse_cgroup_path(&p).unwrap();
    assert_eq!(got.pod_uid, None);
    assert_eq!(got.qos, None);
    let p = format!("/foo-pod{UID_}.slice/cri-containerd-{ID}.scope");
    assert_eq!(parse_cgroup_path(&p).unwrap().pod_uid, None);
}

#[test]
fn pod_cgroup_with_unknown_child() {
    let p = format!("/kubepods/burstable/pod{UID}/abc123/sub");
    assert_eq!(
        parse_pod_cgroup(&p),
        Some(PodCgroup {
            pod_uid: UID.into(),
            qos: Qos::Burstable,
            child: Some("abc123".into()),
        })
    );
    let p = format!("/kubepods.slice/kubepods-pod{UID_}.slice");
    assert_eq!(parse_pod_cgroup(&p).unwrap().child, None);
    assert_eq!(parse_pod_cgroup("/system.slice/foo.service"), None);
    assert_eq!(parse_pod_cgroup("/kubepods/burstable/pod/x"), None);
}

#[test]
fn helpers() {
    assert!(is_container_id(ID));
    assert!(is_container_id(ID2));
    assert!(!is_container_id(&ID[1..]));
    assert!(!is_container_id(""));
    assert!(is_root("/"));
    assert!(is_root(""));
    assert!(is_root("//"));
    assert!(!is_root("/a"));
    assert_eq!(Runtime::CriO.as_str(), "cri-o");
    assert_eq!(Qos::BestEffort.as_str(), "besteffort");
}
