//! Installs what building and testing sigtrace needs on a fresh Debian machine, idempotently,
//! saying what it does: LLVM 22 dev packages, the nightly toolchain with rust-src, bpf-linker,
//! and (for tests and benchmarks) the real runtimes and peers the end-to-end tests drive.
use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{bail, Context, Result};

/// bpf-linker release known to build against Debian's LLVM 22.
const BPF_LINKER_VERSION: &str = "0.13.0";
const LLVM_PACKAGES: &[&str] = &["llvm-22-dev", "libpolly-22-dev"];

/// Debian packages the end-to-end tests and benchmarks use.
pub const TEST_PACKAGES: &[&str] = &[
    "libbpf-tools",   // killsnoop: the independent tracer of the cross-check test
    "bpftrace",       // the peer in the overhead benchmark
    "busybox-static", // container root filesystems
    "runc",
    "containerd",
    "docker.io",
    "tini",
    "prometheus",        // prometheus + promtool
    "util-linux",        // unshare
    "nodejs",            // S22: a runtime whose default SIGTERM handler re-raises
    "golang-go",         // Go's runtime re-raises too (built offline by the tests)
    "protobuf-compiler", // protoc, for the CRI client the Kubernetes tests drive containerd with
    "bpftool",           // per-program bpf_stats in the exec benchmark
    "chromium",          // headless: the HTML report's end-to-end test and its benchmark
];

fn say(msg: &str) {
    eprintln!("xtask: {msg}");
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn is_debian() -> bool {
    Path::new("/etc/debian_version").exists() && which("apt-get").is_some()
}

/// Looks a program up on PATH (and in ~/.cargo/bin, where cargo installs go).
pub fn which(program: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    if let Some(home) = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
    {
        dirs.push(home.join("bin"));
    }
    dirs.into_iter()
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

fn run(cmd: &mut Command) -> Result<()> {
    say(&format!("running {cmd:?}"));
    let status = cmd.status().with_context(|| format!("starting {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}

fn output(cmd: &mut Command) -> Option<String> {
    let out = cmd.output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn dpkg_installed(pkg: &str) -> bool {
    output(Command::new("dpkg-query").args(["-W", "-f=${Status}", pkg]))
        .is_some_and(|s| s.contains("install ok installed"))
}

static APT_UPDATED: std::sync::Once = std::sync::Once::new();

fn apt_install(pkgs: &[&str], why: &str) -> Result<()> {
    let missing: Vec<&str> = pkgs
        .iter()
        .copied()
        .filter(|p| !dpkg_installed(p))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    if !is_root() || !is_debian() {
        bail!(
            "missing packages for {why}: {}. Install them with:\n    sudo apt-get update && sudo apt-get install -y {}\n(on a non-Debian system, install the equivalent packages of your distribution)",
            missing.join(" "),
            missing.join(" ")
        );
    }
    say(&format!("installing {} ({why})", missing.join(" ")));
    let mut result = Ok(());
    APT_UPDATED.call_once(|| {
        result = run(Command::new("apt-get")
            .args(["update", "-qq"])
            .env("DEBIAN_FRONTEND", "noninteractive"));
    });
    result?;
    run(Command::new("apt-get")
        .args(["install", "-y", "-qq", "--no-install-recommends"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive"))
}

fn rustup_has_nightly() -> bool {
    output(Command::new("rustup").args(["toolchain", "list"]))
        .is_some_and(|s| s.lines().any(|l| l.starts_with("nightly")))
}

fn nightly_has_rust_src() -> bool {
    output(Command::new("rustup").args([
        "component",
        "list",
        "--toolchain",
        "nightly",
        "--installed",
    ]))
    .is_some_and(|s| s.lines().any(|l| l.starts_with("rust-src")))
}

fn bpf_linker_ok() -> bool {
    which("bpf-linker")
        .and_then(|p| output(Command::new(p).arg("--version")))
        .is_some_and(|v| v.contains(BPF_LINKER_VERSION))
}

/// Makes sure the eBPF build toolchain is present.
pub fn toolchain() -> Result<()> {
    apt_install(LLVM_PACKAGES, "building bpf-linker against LLVM 22")?;
    if which("rustup").is_none() {
        bail!("rustup is not installed: sigtrace's kernel programs need a nightly toolchain; see https://rustup.rs");
    }
    if !rustup_has_nightly() {
        say("installing the nightly toolchain (the eBPF target needs -Z build-std)");
        run(Command::new("rustup").args([
            "toolchain",
            "install",
            "nightly",
            "--profile",
            "minimal",
        ]))?;
    }
    if !nightly_has_rust_src() {
        say("adding rust-src to nightly (needed by -Z build-std=core)");
        run(Command::new("rustup").args([
            "component",
            "add",
            "rust-src",
            "--toolchain",
            "nightly",
        ]))?;
    }
    if !bpf_linker_ok() {
        say(&format!(
            "installing bpf-linker {BPF_LINKER_VERSION} against LLVM 22 (about a minute)"
        ));
        run(Command::new("cargo")
            .args([
                "install",
                "bpf-linker",
                "--locked",
                "--version",
                BPF_LINKER_VERSION,
                "--no-default-features",
                "--features",
                "llvm-22",
            ])
            .env("LLVM_PREFIX", "/usr/lib/llvm-22"))?;
    }
    Ok(())
}

/// Makes sure the test and benchmark peers are present.
pub fn test_deps() -> Result<()> {
    apt_install(TEST_PACKAGES, "the end-to-end tests")?;
    Ok(())
}
