//! Registry-free container images: an OCI image layout tarball (one uncompressed layer from a
//! root filesystem, and the image config fields that matter for stops) that `ctr images
//! import` takes.
use std::{fs, io::Write, path::Path};

use sha2::{Digest, Sha256};

/// An image the harness writes and imports: a root filesystem and the image config fields
/// that matter for stops.
pub struct ImageSpec<'a> {
    pub name: &'a str,
    pub rootfs: &'a Path,
    pub entrypoint: &'a [&'a str],
    pub cmd: &'a [&'a str],
    /// The image's `StopSignal` ("SIGINT"), honoured by `StopContainer`.
    pub stop_signal: Option<&'a str>,
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn oci_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// Writes `spec` as an OCI image layout tarball at `out` (one uncompressed layer), with the
/// image's name in the index annotations `ctr images import` reads.
pub fn write_oci_archive(spec: &ImageSpec, out: &Path) {
    let mut layer = tar::Builder::new(Vec::new());
    layer.follow_symlinks(false);
    layer.append_dir_all(".", spec.rootfs).expect("layer tar");
    let layer = layer.into_inner().expect("layer tar");
    let layer_digest = format!("sha256:{}", sha256_hex(&layer));
    let mut config = serde_json::json!({
        "architecture": oci_arch(),
        "os": "linux",
        "config": {
            "Env": ["PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"],
            "Entrypoint": spec.entrypoint,
            "Cmd": spec.cmd,
        },
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
    });
    if let Some(sig) = spec.stop_signal {
        config["config"]["StopSignal"] = sig.into();
    }
    let config = serde_json::to_vec(&config).unwrap();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": format!("sha256:{}", sha256_hex(&config)),
            "size": config.len(),
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": layer_digest,
            "size": layer.len(),
        }],
    }))
    .unwrap();
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": format!("sha256:{}", sha256_hex(&manifest)),
            "size": manifest.len(),
            "annotations": {
                "org.opencontainers.image.ref.name": spec.name,
                "io.containerd.image.name": spec.name,
            },
        }],
    }))
    .unwrap();
    let mut archive = tar::Builder::new(fs::File::create(out).expect("image archive"));
    let mut add = |path: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        archive
            .append_data(&mut h, path, data)
            .expect("image archive");
    };
    add("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
    add("index.json", &index);
    for blob in [&layer, &config, &manifest] {
        add(&format!("blobs/sha256/{}", sha256_hex(blob)), blob);
    }
    archive
        .into_inner()
        .expect("image archive")
        .flush()
        .unwrap();
}
