//! Builds the kernel programs (`tracer-ebpf`) with aya-build and places the object in OUT_DIR.
//! With `AYA_BUILD_SKIP=1` (clippy/doc runs of userspace only) an empty placeholder is written;
//! loading it at run time fails with a clear error.
use anyhow::{anyhow, Context as _};
use aya_build::Toolchain;

fn main() -> anyhow::Result<()> {
    let cargo_metadata::Metadata { packages, .. } = cargo_metadata::MetadataCommand::new()
        .no_deps()
        .exec()
        .context("MetadataCommand::exec")?;
    let ebpf_package = packages
        .into_iter()
        .find(|cargo_metadata::Package { name, .. }| name.as_str() == "tracer-ebpf")
        .ok_or_else(|| anyhow!("tracer-ebpf package not found"))?;
    let root_dir = ebpf_package
        .manifest_path
        .parent()
        .ok_or_else(|| anyhow!("no parent for {}", ebpf_package.manifest_path))?;
    let skip =
        std::env::var("AYA_BUILD_SKIP").is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"));
    if skip {
        let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?).join("tracer");
        std::fs::write(&out, b"").context("writing placeholder eBPF object")?;
    }
    // The programs' record layouts live in tracer-common: a change there must rebuild them
    // (aya-build only watches the eBPF crate itself).
    let common = root_dir
        .parent()
        .ok_or_else(|| anyhow!("no parent for {root_dir}"))?
        .join("tracer-common");
    println!("cargo:rerun-if-changed={common}");
    aya_build::build_ebpf(
        [aya_build::Package {
            name: "tracer-ebpf",
            root_dir: root_dir.as_str(),
            ..Default::default()
        }],
        Toolchain::default(),
    )
}
