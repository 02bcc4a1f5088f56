//! Tests for `metadata.rs` against bundle files written into temporary state directories.
use super::*;
use crate::container::testutil::TempDir;

const ID: &str = "3f4c2b1a0e9d8c7b6a5f4e3d2c1b0a99887766554433221100ffeeddccbbaa00";
const ID2: &str = "aaaabbbbccccddddeeeeffff0000111122223333444455556666777788889999";

const CRI_BUNDLE: &str = r#"{
  "ociVersion": "1.0.2-dev",
  "process": {"args": ["/bin/sh"]},
  "annotations": {
    "io.kubernetes.cri.container-name": "web",
    "io.kubernetes.cri.container-type": "container",
    "io.kubernetes.cri.image-name": "docker.io/library/nginx:1.25",
    "io.kubernetes.cri.sandbox-id": "aaaa",
    "io.kubernetes.cri.sandbox-name": "web-7d4b9c-xyz",
    "io.kubernetes.cri.sandbox-namespace": "shop",
    "io.kubernetes.cri.sandbox-uid": "1e2d3c4b-5a69-4788-9a0b-1c2d3e4f5a6b"
  }
}"#;

const CRIO_BUNDLE: &str = r#"{
  "ociVersion": "1.0.2",
  "annotations": {
    "io.kubernetes.container.name": "worker",
    "io.kubernetes.cri-o.ContainerType": "container",
    "io.kubernetes.cri-o.ImageName": "quay.io/acme/worker:3",
    "io.kubernetes.pod.name": "worker-0",
    "io.kubernetes.pod.namespace": "batch",
    "io.kubernetes.pod.uid": "99999999-8888-7777-6666-555555555555"
  }
}"#;

const DOCKER_V2: &str = r#"{
  "ID": "3f4c2b1a0e9d8c7b6a5f4e3d2c1b0a99887766554433221100ffeeddccbbaa00",
  "Name": "/happy_turing",
  "Config": {"Image": "local/busybox:1", "Labels": null, "Cmd": ["/bin/sh"]},
  "State": {"Running": true}
}"#;

fn dirs(root: &TempDir) -> MetadataDirs {
    MetadataDirs {
        containerd_state: vec![root.path().join("nope"), root.path().join("containerd")],
        crio_storage: vec![root.path().join("storage")],
        docker_data_root: vec![root.path().join("docker")],
    }
}

fn containerd_bundle(root: &TempDir, ns: &str, id: &str, text: &str) {
    root.write(
        &format!("containerd/io.containerd.runtime.v2.task/{ns}/{id}/config.json"),
        text,
    );
}

#[test]
fn containerd_cri_annotations_in_any_namespace() {
    let root = TempDir::new("md-cri");
    // Another namespace exists and does not hold the id.
    containerd_bundle(&root, "default", ID2, "{}");
    containerd_bundle(&root, "k8s.io", ID, CRI_BUNDLE);
    let mut c = MetadataCache::new(dirs(&root), 16);
    let md = c.lookup(ID, Runtime::Containerd, true).unwrap();
    assert_eq!(
        *md,
        ContainerMetadata {
            runtime: Some(Runtime::Containerd),
            name: Some("web".into()),
            pod: Some("web-7d4b9c-xyz".into()),
            namespace: Some("shop".into()),
            pod_uid: Some("1e2d3c4b-5a69-4788-9a0b-1c2d3e4f5a6b".into()),
            container_type: Some("container".into()),
            image: Some("docker.io/library/nginx:1.25".into()),
            stop_signal: None,
            sandbox_id: Some("aaaa".into()),
            labels: None,
            termination_grace_s: None,
        }
    );
    // Plain ctr bundle without annotations: found, nothing but the runtime.
    let md = c.lookup(ID2, Runtime::Containerd, false).unwrap();
    assert_eq!(md.runtime, Some(Runtime::Containerd));
    assert_eq!(md.name, None);
    assert_eq!(c.stats().hits, 2);
    assert_eq!(c.stats().misses, 0);
}

#[test]
fn cri_sandbox_type() {
    let root = TempDir::new("md-sandbox");
    containerd_bundle(
        &root,
        "k8s.io",
        ID,
        r#"{"annotations": {"io.kubernetes.cri.container-type": "sandbox",
            "io.kubernetes.cri.sandbox-name": "p", "io.kubernetes.cri.container-name": ""}}"#,
    );
    let mut c = MetadataCache::new(dirs(&root), 16);
    let md = c.lookup(ID, Runtime::Containerd, true).unwrap();
    assert_eq!(md.container_type.as_deref(), Some("sandbox"));
    assert_eq!(md.pod.as_deref(), Some("p"));
    // An empty annotation value is no value.
    assert_eq!(md.name, None);
}

#[test]
fn crio_annotations() {
    let root = TempDir::new("md-crio");
    root.write(
        &format!("storage/overlay-containers/{ID}/userdata/config.json"),
        CRIO_BUNDLE,
    );
    let mut c = MetadataCache::new(dirs(&root), 16);
    let md = c.lookup(ID, Runtime::CriO, true).unwrap();
    assert_eq!(
        *md,
        ContainerMetadata {
            runtime: Some(Runtime::CriO),
            name: Some("worker".into()),
            pod: Some("worker-0".into()),
            namespace: Some("batch".into()),
            pod_uid: Some("99999999-8888-7777-6666-555555555555".into()),
            container_type: Some("container".into()),
            image: Some("quay.io/acme/worker:3".into()),
            stop_signal: None,
            ..Default::default()
        }
    );
}

/// The annotation, not the cgroup layout's guess, says podman: a look-up that expected CRI-O
/// (both keep bundles in containers/storage) still finds podman.
#[test]
fn podman_bundle_in_containers_storage() {
    let root = TempDir::new("md-podman");
    root.write(
        &format!("storage/overlay-containers/{ID}/userdata/config.json"),
        r#"{"annotations": {"io.container.manager": "libpod"}}"#,
    );
    let mut c = MetadataCache::new(dirs(&root), 16);
    assert_eq!(
        c.lookup(ID, Runtime::CriO, true).unwrap().runtime,
        Some(Runtime::Podman)
    );
    // Without the annotation, the same bundle is CRI-O's.
    let plain = TempDir::new("md-podman-plain");
    plain.write(
        &format!("storage/overlay-containers/{ID}/userdata/config.json"),
        r#"{"annotations": {"io.container.manager": "cri-o"}}"#,
    );
    let mut c = MetadataCache::new(dirs(&plain), 16);
    assert_eq!(
        c.lookup(ID, Runtime::CriO, true).unwrap().runtime,
        Some(Runtime::CriO)
    );
}

#[test]
fn docker_config_v2() {
    let root = TempDir::new("md-docker");
    root.write(&format!("docker/containers/{ID}/config.v2.json"), DOCKER_V2);
    let mut c = MetadataCache::new(dirs(&root), 16);
    let md = c.lookup(ID, Runtime::Docker, true).unwrap();
    assert_eq!(md.runtime, Some(Runtime::Docker));
    assert_eq!(md.name.as_deref(), Some("happy_turing"));
    assert_eq!(md.image.as_deref(), Some("local/busybox:1"));
    assert_eq!(md.pod, None);
    assert_eq!(md.stop_signal, None);
    // No --stop-timeout: docker's default.
    assert_eq!(md.termination_grace_s, Some(10));
}

#[test]
fn docker_stop_timeout_is_the_declared_grace() {
    let root = TempDir::new("md-docker-timeout");
    let path = root
        .path()
        .join(format!("docker/containers/{ID}/config.v2.json"));
    for (json, grace) in [
        (r#"{"Name": "/a", "Config": {"StopTimeout": 3}}"#, Some(3)),
        (
            r#"{"Name": "/a", "Config": {"StopTimeout": null}}"#,
            Some(10),
        ),
        // Negative: docker waits forever.
        (r#"{"Name": "/a", "Config": {"StopTimeout": -1}}"#, None),
        // A Kubernetes container's grace is its pod's, not docker's.
        (
            r#"{"Name": "/k8s_a", "Config": {"StopTimeout": 3, "Labels": {
                "io.kubernetes.pod.uid": "u", "io.kubernetes.container.name": "a"}}}"#,
            None,
        ),
    ] {
        root.write(&format!("docker/containers/{ID}/config.v2.json"), json);
        let md = read_docker_config(&path).unwrap();
        assert_eq!(md.termination_grace_s, grace, "{json}");
    }
}

#[test]
fn docker_stop_signal() {
    let root = TempDir::new("md-docker-stop");
    root.write(
        &format!("docker/containers/{ID}/config.v2.json"),
        r#"{"Name": "/httpd", "Config": {"Image": "httpd:2.4", "StopSignal": "SIGWINCH"}}"#,
    );
    let mut c = MetadataCache::new(dirs(&root), 16);
    let md = c.lookup(ID, Runtime::Docker, true).unwrap();
    assert_eq!(md.stop_signal.as_deref(), Some("SIGWINCH"));
}

#[test]
fn docker_dockershim_labels() {
    let root = TempDir::new("md-dockershim");
    root.write(
        &format!("docker/containers/{ID}/config.v2.json"),
        r#"{"Name": "/k8s_app_pod_ns_uid_0", "Config": {"Image": "img:1", "Labels": {
            "io.kubernetes.container.name": "app", "io.kubernetes.pod.name": "pod",
            "io.kubernetes.pod.namespace": "ns", "io.kubernetes.pod.uid": "u"}}}"#,
    );
    let md = read_docker_config(
        &root
            .path()
            .join(format!("docker/containers/{ID}/config.v2.json")),
    )
    .unwrap();
    assert_eq!(md.name.as_deref(), Some("app"));
    assert_eq!(md.pod.as_deref(), Some("pod"));
    assert_eq!(md.namespace.as_deref(), Some("ns"));
    assert_eq!(md.image.as_deref(), Some("img:1"));
}

#[test]
fn guessed_runtime_is_settled_by_metadata() {
    // A bare 64-hex leaf (e.g. docker --cgroup-parent) parses as "containerd, guessed".
    let root = TempDir::new("md-guess");
    root.write(&format!("docker/containers/{ID}/config.v2.json"), DOCKER_V2);
    containerd_bundle(&root, "moby", ID2, "{}");
    let mut c = MetadataCache::new(dirs(&root), 16);
    let md = c.lookup(ID, Runtime::Containerd, false).unwrap();
    assert_eq!(md.runtime, Some(Runtime::Docker));
    // containerd namespace `moby` = docker, even without config.v2.json.
    let md = c.lookup(ID2, Runtime::Containerd, false).unwrap();
    assert_eq!(md.runtime, Some(Runtime::Docker));
    // A certain containerd runtime does not look at docker's state.
    let root2 = TempDir::new("md-guess2");
    root2.write(&format!("docker/containers/{ID}/config.v2.json"), DOCKER_V2);
    let mut c = MetadataCache::new(dirs(&root2), 16);
    assert!(c.lookup(ID, Runtime::Containerd, true).is_none());
}

#[test]
fn moby_bundle_prefers_docker_state() {
    let root = TempDir::new("md-moby");
    containerd_bundle(&root, "moby", ID, "{}");
    root.write(&format!("docker/containers/{ID}/config.v2.json"), DOCKER_V2);
    let mut c = MetadataCache::new(dirs(&root), 16);
    let md = c.lookup(ID, Runtime::Docker, true).unwrap();
    assert_eq!(md.name.as_deref(), Some("happy_turing"));
}

#[test]
fn missing_bundle_is_a_counted_cached_miss() {
    let root = TempDir::new("md-missing");
    let mut c = MetadataCache::new(dirs(&root), 16);
    assert!(c.lookup(ID, Runtime::Containerd, false).is_none());
    assert!(c.lookup(ID, Runtime::Containerd, false).is_none());
    let s = c.stats();
    assert_eq!((s.hits, s.misses, s.malformed), (0, 1, 0));
    // Not an id: never touches the filesystem, still a miss.
    assert!(c.lookup("../../etc", Runtime::Unknown, false).is_none());
    assert_eq!(c.stats().misses, 2);
}

#[test]
fn malformed_files_are_counted_misses() {
    let root = TempDir::new("md-malformed");
    containerd_bundle(&root, "k8s.io", ID, "{ not json");
    root.write(
        &format!("docker/containers/{ID2}/config.v2.json"),
        r#"{"Name": 42}"#,
    );
    let mut c = MetadataCache::new(dirs(&root), 16);
    assert!(c.lookup(ID, Runtime::Containerd, true).is_none());
    assert!(c.lookup(ID2, Runtime::Docker, true).is_none());
    let s = c.stats();
    assert_eq!((s.hits, s.misses, s.malformed), (0, 2, 2));
    // Annotations that are not strings are malformed too, not a panic.
    let p = root.write("x.json", r#"{"annotations": {"a": 1}}"#);
    assert!(matches!(
        read_oci_bundle(&p),
        Err(MetadataError::Json { .. })
    ));
    // Null annotations are fine.
    let p = root.write("y.json", r#"{"annotations": null}"#);
    assert_eq!(read_oci_bundle(&p).unwrap(), ContainerMetadata::default());
    // A directory where the file should be is an I/O error, not a panic.
    std::fs::create_dir_all(root.path().join("dir.json")).unwrap();
    assert!(read_oci_bundle(&root.path().join("dir.json")).is_err());
}

#[test]
fn cache_is_bounded() {
    let root = TempDir::new("md-bounded");
    let mut c = MetadataCache::new(dirs(&root), 8);
    for i in 0..20u32 {
        let id = format!("{i:064x}");
        assert!(c.lookup(&id, Runtime::Docker, true).is_none());
    }
    assert!(c.stats().evictions >= 12);
}

#[test]
fn default_dirs_are_the_standard_locations() {
    let d = MetadataDirs::default();
    assert_eq!(d.containerd_state[0], Path::new("/run/containerd"));
    assert!(d
        .containerd_state
        .contains(&PathBuf::from("/var/run/docker/containerd/daemon")));
    assert_eq!(d.crio_storage[0], Path::new("/run/containers/storage"));
    assert_eq!(d.docker_data_root, vec![PathBuf::from("/var/lib/docker")]);
}

/// CRI-O keeps pod labels (JSON in `io.kubernetes.cri-o.Labels`) on the sandbox; a container's
/// own label set only names it and is not taken for pod labels. Both carry the sandbox id.
#[test]
fn crio_pod_labels_and_sandbox_id() {
    let sandbox = HashMap::from([
        ("io.kubernetes.cri-o.ContainerType".to_string(), "sandbox".to_string()),
        ("io.kubernetes.cri-o.SandboxID".to_string(), ID.to_string()),
        (
            "io.kubernetes.cri-o.Labels".to_string(),
            r#"{"app":"web","pod-template-hash":"7d4b9c8f6d","io.kubernetes.pod.name":"web-7d4b9c8f6d-x2k9p"}"#.to_string(),
        ),
    ]);
    let md = from_oci_annotations(&sandbox);
    assert_eq!(md.sandbox_id.as_deref(), Some(ID));
    let labels = md.labels.expect("pod labels");
    assert_eq!(labels["pod-template-hash"], "7d4b9c8f6d");
    let container = HashMap::from([
        ("io.kubernetes.cri-o.SandboxID".to_string(), ID.to_string()),
        (
            "io.kubernetes.cri-o.Labels".to_string(),
            r#"{"io.kubernetes.container.name":"app","io.kubernetes.pod.name":"web"}"#.to_string(),
        ),
    ]);
    let md = from_oci_annotations(&container);
    assert_eq!(md.labels, None);
    assert_eq!(md.sandbox_id.as_deref(), Some(ID));
    // Not JSON: no labels, nothing else lost.
    let bad = HashMap::from([
        (
            "io.kubernetes.cri-o.Labels".to_string(),
            "{not json".to_string(),
        ),
        ("io.kubernetes.pod.name".to_string(), "p".to_string()),
    ]);
    let md = from_oci_annotations(&bad);
    assert_eq!((md.labels, md.pod.as_deref()), (None, Some("p")));
}

/// dockershim / cri-dockerd mark pause containers with a docker label.
#[test]
fn docker_pod_sandbox_label() {
    let root = TempDir::new("md-dockershim");
    root.write(
        &format!("docker/containers/{ID}/config.v2.json"),
        r#"{"Name": "/k8s_POD_web_shop_uid_0", "Config": {"Labels": {
            "io.kubernetes.docker.type": "podsandbox", "io.kubernetes.pod.name": "web"}}}"#,
    );
    let mut c = MetadataCache::new(dirs(&root), 16);
    let md = c.lookup(ID, Runtime::Docker, true).unwrap();
    assert_eq!(md.container_type.as_deref(), Some("sandbox"));
    assert_eq!(md.pod.as_deref(), Some("web"));
}

/// kubelet's grace annotation, where the runtime keeps it (CRI-O; containerd with pass-through).
#[test]
fn termination_grace_annotation() {
    let ann = |v: &str| {
        HashMap::from([(
            "io.kubernetes.pod.terminationGracePeriod".to_string(),
            v.to_string(),
        )])
    };
    assert_eq!(
        from_oci_annotations(&ann("30")).termination_grace_s,
        Some(30)
    );
    assert_eq!(
        from_oci_annotations(&ann("thirty")).termination_grace_s,
        None
    );
    assert_eq!(from_oci_annotations(&ann("-1")).termination_grace_s, None);
    assert_eq!(
        from_oci_annotations(&HashMap::new()).termination_grace_s,
        None
    );
}
