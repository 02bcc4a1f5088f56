//! `cargo xtask`: the project's entry points. `run` and `test` bootstrap the toolchain on a
//! fresh machine, build, and run sigtrace or every test; `bench` runs the benchmarks.
mod bench;
mod bench_agent;
mod bench_journal;
mod bench_overhead;
mod bench_report;
mod bootstrap;
mod vmtest;

use std::{
    path::PathBuf,
    process::{Command, Stdio},
};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "xtask", about = "Build, run, test and benchmark sigtrace")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Install what building sigtrace needs (LLVM 22, nightly rust-src, bpf-linker).
    Bootstrap {
        /// Also install the runtimes and peers the end-to-end tests use.
        #[arg(long)]
        tests: bool,
    },
    /// Bootstrap and build sigtrace (release).
    Build,
    /// Bootstrap, build and run sigtrace on this node: `cargo xtask run -- run --raw`.
    Run {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Bootstrap, then run the unit tests, the privileged end-to-end tests and the kernel
    /// matrix (`vmtest`).
    Test {
        /// Only the unit tests (no root needed).
        #[arg(long)]
        unit: bool,
        /// Extra arguments for the end-to-end test binary (e.g. a test name filter).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        filter: Vec<String>,
    },
    /// The kernel matrix alone: boots Debian's 5.10, 6.1 and 6.12 cloud kernels in VMs
    /// (QEMU, TCG) and runs the `kernels` end-to-end tests in each (root).
    Vmtest {
        /// Only the kernels whose release starts with this (e.g. 5.10, 6.1, 6.12).
        #[arg(long)]
        kernel: Option<String>,
    },
    /// Long property-test run over hostile input (decoder, journal reader, BTF reader,
    /// patcher): many more cases than `test` runs.
    Fuzz {
        /// Cases per target.
        #[arg(long, default_value_t = 200_000)]
        cases: u64,
    },
    /// Benchmarks: `overhead` (kill() cost with and without tracers), `engine` (replay
    /// throughput and memory per tracked process).
    Bench {
        #[arg(value_enum)]
        which: bench::Which,
    },
}

pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
}

pub fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(workspace_root());
    c
}

pub fn run_checked(cmd: &mut Command) -> Result<()> {
    let status = cmd.status().with_context(|| format!("starting {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}

/// The offline checks of the Kubernetes manifests (deploy/validate.sh) and of the dashboard
/// and alert rules (dashboards/check.sh). They install their own tools (a virtualenv in
/// target/pyenv, kustomize; promtool comes with `test_deps`) and fail instead of skipping.
/// Both run; either failing fails the command.
fn offline_checks() -> Result<()> {
    let mut failed = Vec::new();
    for script in ["deploy/validate.sh", "dashboards/check.sh"] {
        eprintln!("xtask: running {script}");
        let status = Command::new("bash")
            .arg(workspace_root().join(script))
            .current_dir(workspace_root())
            .env_remove("PROM_URL")
            .stdin(Stdio::null())
            .status()
            .with_context(|| format!("starting bash {script}"))?;
        if !status.success() {
            failed.push(format!("{script} ({status})"));
        }
    }
    if !failed.is_empty() {
        bail!("offline checks failed: {}", failed.join(", "));
    }
    Ok(())
}

/// Builds sigtrace and returns the binary's path.
pub fn build_sigtrace(release: bool) -> Result<PathBuf> {
    let mut c = cargo();
    c.args(["build", "-p", "tracer", "--bin", "sigtrace"]);
    if release {
        c.arg("--release");
    }
    run_checked(&mut c)?;
    Ok(workspace_root()
        .join("target")
        .join(if release { "release" } else { "debug" })
        .join("sigtrace"))
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Cmd::Bootstrap { tests } => {
            bootstrap::toolchain()?;
            if tests {
                bootstrap::test_deps()?;
            }
        }
        Cmd::Build => {
            bootstrap::toolchain()?;
            build_sigtrace(true)?;
        }
        Cmd::Run { args } => {
            bootstrap::toolchain()?;
            let bin = build_sigtrace(true)?;
            if !bootstrap::is_root() {
                eprintln!(
                    "xtask: sigtrace needs root (or CAP_BPF+CAP_PERFMON); running it through sudo"
                );
                run_checked(Command::new("sudo").arg("-E").arg(&bin).args(&args))?;
            } else {
                let status = Command::new(&bin)
                    .args(&args)
                    .status()
                    .context("starting sigtrace")?;
                std::process::exit(status.code().unwrap_or(1));
            }
        }
        Cmd::Test { unit, filter } => {
            bootstrap::toolchain()?;
            let mut units = cargo();
            units.args(["test", "-p", "tracer", "-p", "tracer-common", "-p", "xtask"]);
            if !unit && bootstrap::is_root() {
                // The full run as root: unit tests that need root must run, not skip.
                units.env("SIGTRACE_NO_SKIP", "1");
            }
            run_checked(&mut units)?;
            if unit {
                return Ok(());
            }
            if !bootstrap::is_root() {
                bail!("the end-to-end tests load eBPF programs and create PID namespaces and cgroups: run `cargo xtask test` as root (or `cargo xtask test --unit`)");
            }
            bootstrap::test_deps()?;
            offline_checks()?;
            let bin = build_sigtrace(false)?;
            // Privileged tests share the kernel, cgroups and daemons: one at a time.
            run_checked(
                cargo()
                    .args(["test", "-p", "tests", "--", "--test-threads=1"])
                    .args(&filter)
                    .env("SIGTRACE_BIN", &bin)
                    .env("SIGTRACE_WORKSPACE", workspace_root()),
            )?;
            // The same scenarios on the other kernels of the matrix, in VMs.
            if filter.is_empty() {
                vmtest::run(None)?;
            }
        }
        Cmd::Vmtest { kernel } => {
            bootstrap::toolchain()?;
            bootstrap::test_deps()?;
            vmtest::run(kernel.as_deref())?;
        }
        Cmd::Fuzz { cases } => {
            run_checked(
                cargo()
                    .args(["test", "-p", "tracer", "--release", "--lib", "tests::fuzz"])
                    .env("PROPTEST_CASES", cases.to_string()),
            )?;
        }
        Cmd::Bench { which } => {
            bootstrap::toolchain()?;
            bench::run(which)?;
        }
    }
    Ok(())
}
