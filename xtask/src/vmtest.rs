//! `cargo xtask vmtest`: the kernel matrix. Boots Debian's cloud kernels 5.10, 6.1 and 6.12
//! in QEMU (TCG: no usable KVM on these machines) through virtme-ng, sharing the host's root
//! read-only, and runs the `kernels` end-to-end tests in each: `sigtrace doctor` all PASS
//! with every hook on the path that kernel should take, and the scenarios' records. One
//! kernel runs them a second time with the raw tracepoint fallback forced.
//!
//! The shell side lives in `xtask/vm/`: `prepare.sh` installs QEMU and virtme-ng (a venv
//! under `target/vmtest`) and downloads the kernels once (`apt-get download` + `dpkg-deb -x`,
//! never installed on the host), `boot.sh` boots one and returns the guest's exit status,
//! `guest-test.sh` is what runs inside. A VM that cannot boot is a failure, never a skip.
use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Instant,
};

use anyhow::{bail, Context, Result};

use crate::{build_sigtrace, cargo, workspace_root};

/// The kernel on which the scenarios run a second time with the fallback forced: one whose
/// own path is the BTF one, so that the forced run proves the other path there.
const FORCED_RAW_ON: &str = "6.12.";

/// One guest run: a kernel, and whether the raw tracepoints are forced.
struct Run {
    vmlinuz: PathBuf,
    release: String,
    forced_raw: bool,
}

/// Builds the `kernels` test binary (and the helpers it runs) and returns its path.
fn build_kernel_tests() -> Result<PathBuf> {
    let out = cargo()
        .args([
            "test",
            "-p",
            "tests",
            "--test",
            "kernels",
            "--no-run",
            "--message-format=json",
        ])
        .stderr(Stdio::inherit())
        .output()
        .context("building the kernels tests")?;
    if !out.status.success() {
        bail!("building the kernels tests failed with {}", out.status);
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["target"]["name"] == "kernels" && v["executable"].is_string())
        .and_then(|v| v["executable"].as_str().map(PathBuf::from))
        .context("cargo named no executable for the kernels tests")
}

/// The kernels of the matrix (downloaded and extracted once), as vmlinuz paths.
fn prepare(vm_dir: &Path) -> Result<Vec<PathBuf>> {
    let script = workspace_root().join("xtask/vm/prepare.sh");
    eprintln!("xtask: preparing the kernel VMs ({})", script.display());
    let out = Command::new("bash")
        .arg(&script)
        .arg(vm_dir)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    if !out.status.success() {
        bail!("{} failed with {}", script.display(), out.status);
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(PathBuf::from)
        .collect())
}

/// `vmlinuz-<release>` → release.
fn release_of(vmlinuz: &Path) -> String {
    vmlinuz
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix("vmlinuz-"))
        .unwrap_or_default()
        .to_string()
}

/// Runs the matrix, or only the kernels whose release starts with `kernel` (e.g. "5.10").
pub fn run(kernel: Option<&str>) -> Result<()> {
    if !crate::bootstrap::is_root() {
        bail!("the kernel VMs share the host's root filesystem and need root: run `cargo xtask vmtest` as root");
    }
    let vm_dir = workspace_root().join("target/vmtest");
    let kernels = prepare(&vm_dir)?;
    let mut runs = Vec::new();
    for vmlinuz in kernels {
        let release = release_of(&vmlinuz);
        if kernel.is_some_and(|k| !release.starts_with(k)) {
            continue;
        }
        for forced_raw in [false, true] {
            if forced_raw && !release.starts_with(FORCED_RAW_ON) {
                continue;
            }
            runs.push(Run {
                vmlinuz: vmlinuz.clone(),
                release: release.clone(),
                forced_raw,
            });
        }
    }
    if runs.is_empty() {
        bail!("no kernel of the matrix matches {kernel:?} (5.10, 6.1, 6.12)");
    }
    let sigtrace = build_sigtrace(false)?;
    let tests = build_kernel_tests()?;
    let guest = workspace_root().join("xtask/vm/guest-test.sh");
    let boot = workspace_root().join("xtask/vm/boot.sh");

    let mut results = Vec::new();
    for run in &runs {
        let label = format!(
            "{}{}",
            run.release,
            if run.forced_raw {
                " (raw tracepoints forced)"
            } else {
                ""
            }
        );
        eprintln!("xtask: == kernel {label}: booting a VM");
        let out = vm_dir.join("out").join(format!(
            "{}{}",
            run.release,
            if run.forced_raw { "-raw" } else { "" }
        ));
        let _ = std::fs::remove_dir_all(&out);
        let started = Instant::now();
        let status = Command::new("bash")
            .arg(&boot)
            .arg(&run.vmlinuz)
            .arg(&out)
            .arg(&guest)
            .arg(&tests)
            .arg(&sigtrace)
            .arg(workspace_root())
            .arg(if run.forced_raw { "1" } else { "0" })
            .arg(&out)
            .env("VMTEST_DIR", &vm_dir)
            .stdin(Stdio::null())
            .status()
            .with_context(|| format!("running {}", boot.display()))?;
        let secs = started.elapsed().as_secs_f64();
        eprintln!("xtask: == kernel {label}: {status} after {secs:.0} s");
        results.push((label, status.success(), secs));
    }
    eprintln!("xtask: kernel matrix:");
    for (label, ok, secs) in &results {
        eprintln!(
            "xtask:   {:<4} {label} ({secs:.0} s)",
            if *ok { "ok" } else { "FAIL" }
        );
    }
    let failed: Vec<&str> = results
        .iter()
        .filter(|(_, ok, _)| !ok)
        .map(|(l, _, _)| l.as_str())
        .collect();
    if !failed.is_empty() {
        bail!("the kernel matrix failed on: {}", failed.join(", "));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_come_from_the_image_name() {
        assert_eq!(
            release_of(Path::new(
                "/x/kernels/6.12.117+deb12-cloud-amd64/boot/vmlinuz-6.12.117+deb12-cloud-amd64"
            )),
            "6.12.117+deb12-cloud-amd64"
        );
        assert_eq!(release_of(Path::new("/x/bzImage")), "");
    }
}
