//! `sigtrace doctor`: checks that this node can run sigtrace, one line per check with what to
//! do when it fails.
use std::path::Path;

use aya::util::KernelVersion;

use crate::probes::{read_btf, ProbeError, ProbeMode, ProbeOptions, Probes};

/// Outcome of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Pass,
    Warn,
    Fail,
}

#[derive(Debug, Clone)]
pub struct Check {
    pub name: &'static str,
    pub status: Status,
    pub detail: String,
}

impl Check {
    fn new(name: &'static str, status: Status, detail: impl Into<String>) -> Self {
        Self {
            name,
            status,
            detail: detail.into(),
        }
    }
}

fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// Effective capabilities of this process (from /proc/self/status).
fn effective_caps() -> Option<u64> {
    use procfs_core::FromRead;
    procfs_core::process::Status::from_file("/proc/self/status")
        .ok()
        .map(|s| s.capeff)
}

/// The capabilities the checks name, by their bit in `CapEff` (linux/capability.h).
#[derive(Clone, Copy)]
#[repr(u32)]
enum Cap {
    DacReadSearch = 2,
    SysPtrace = 19,
    SysAdmin = 21,
    SysNice = 23,
    Perfmon = 38,
    Bpf = 39,
}

fn cgroup_v2_mount() -> Option<std::path::PathBuf> {
    use crate::container::cgroupfs::{find_cgroup2, parse_mountinfo};
    let text = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    find_cgroup2(&parse_mountinfo(&text)).map(|m| m.mount_point.clone())
}

/// Runs every check. `cri_socket` is `run --cri-socket`'s value.
pub fn run_checks(btf_path: &Path, cri_socket: Option<&str>) -> Vec<Check> {
    let mut checks = vec![kernel_check()];
    capability_checks(&mut checks);
    let btf = read_btf(btf_path);
    match &btf {
        Ok(btf) => btf_checks(&mut checks, btf_path, btf),
        Err(e) => checks.push(Check::new("btf", Status::Fail, format!("{e}"))),
    }
    mount_checks(&mut checks);
    checks.push(cri_check(cri_socket));
    for (mode, force_raw, name) in [
        (ProbeMode::Trace, false, "programs"),
        (ProbeMode::Trace, true, "raw-fallback"),
    ] {
        let opts = ProbeOptions {
            btf_path: btf_path.to_path_buf(),
            mode,
            force_raw,
            ring_bytes: 1 << 16,
            ..Default::default()
        };
        let loaded = match &btf {
            Ok(btf) => Probes::load(&opts, btf),
            Err(_) => {
                checks.push(Check::new(name, Status::Fail, "not tried: no usable BTF"));
                continue;
            }
        };
        checks.push(match loaded {
            Ok(p) => programs_check(name, &p),
            Err(ProbeError::Permission { what }) => Check::new(
                name,
                Status::Fail,
                format!("permission denied while {what}: run as root or with CAP_BPF+CAP_PERFMON"),
            ),
            Err(e) => Check::new(name, Status::Fail, e.to_string()),
        });
    }
    checks
}

/// The CRI socket `run` would use, and whether it answers.
fn cri_check(flag: Option<&str>) -> Check {
    use crate::container::cri::{find_socket, version, DEFAULT_SOCKETS};
    let socket = match flag {
        Some("none") => {
            return Check::new(
                "cri",
                Status::Pass,
                "turned off (--cri-socket none): pod facts come from the runtimes' files",
            )
        }
        Some(p) => std::path::PathBuf::from(p),
        None => match find_socket() {
            Some(p) => p,
            None => {
                return Check::new(
                    "cri",
                    Status::Pass,
                    format!(
                        "no CRI socket at {}: not a Kubernetes node (or mount the socket, or \
                         name it with --cri-socket); pod facts come from the runtimes' files",
                        DEFAULT_SOCKETS.join(", ")
                    ),
                )
            }
        },
    };
    match version(&socket) {
        Ok(v) => Check::new(
            "cri",
            Status::Pass,
            format!(
                "{} answers ({v}): declared grace, preStop hooks and pod labels come from it",
                socket.display()
            ),
        ),
        Err(e) => Check::new(
            "cri",
            Status::Warn,
            format!(
                "{} does not answer the CRI ({e}): sigtrace falls back to the runtimes' files \
                 (grace inferred, workload from pod names); check the socket and its mount",
                socket.display()
            ),
        ),
    }
}

fn kernel_check() -> Check {
    let release = kernel_release();
    match KernelVersion::current() {
        Ok(v) if v >= KernelVersion::new(5, 8, 0) => Check::new(
            "kernel",
            Status::Pass,
            format!(
                "{release} (sigtrace needs 5.8+ for the ring buffer; tested on 5.10, 6.1, 6.12 \
                 and 6.18)"
            ),
        ),
        Ok(_) => Check::new(
            "kernel",
            Status::Fail,
            format!(
                "{release} is older than 5.8: the BPF ring buffer is missing; upgrade the kernel"
            ),
        ),
        Err(e) => Check::new(
            "kernel",
            Status::Warn,
            format!("cannot tell the kernel version of {release:?}: {e}"),
        ),
    }
}

fn capability_checks(checks: &mut Vec<Check>) {
    let caps = effective_caps().unwrap_or(0);
    let has = |c: Cap| caps & (1u64 << c as u32) != 0;
    checks.push(if has(Cap::SysAdmin) || (has(Cap::Bpf) && has(Cap::Perfmon)) {
        Check::new("privileges", Status::Pass, format!("effective capabilities {caps:#x} include CAP_BPF+CAP_PERFMON or CAP_SYS_ADMIN"))
    } else {
        Check::new("privileges", Status::Fail, "missing CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN): run as root, or grant them (setcap / the DaemonSet's securityContext)")
    });
    checks.push(if has(Cap::SysPtrace) {
        Check::new("ptrace", Status::Pass, "CAP_SYS_PTRACE: /proc/<pid>/cgroup of other users' processes is readable")
    } else {
        Check::new("ptrace", Status::Warn, "no CAP_SYS_PTRACE: attribution through /proc/<pid>/cgroup fails for processes of other users that sigtrace has not seen in the cgroup tree; grant it for complete container attribution")
    });
    checks.push(if has(Cap::DacReadSearch) {
        Check::new("read-state", Status::Pass, "CAP_DAC_READ_SEARCH: the runtimes' state (docker, containerd, CRI-O) is readable whatever its permissions")
    } else {
        Check::new("read-state", Status::Warn, "no CAP_DAC_READ_SEARCH: container names, pods and images come from the runtimes' state directories, which may not be readable without it (records then carry ids only)")
    });
    checks.push(if has(Cap::SysNice) {
        Check::new("ring-priority", Status::Pass, "CAP_SYS_NICE: the thread that empties the ring buffer runs at a raised priority (real time where the cgroup allows it, else nice -10)")
    } else {
        Check::new("ring-priority", Status::Warn, "no CAP_SYS_NICE: the thread that empties the ring buffer keeps the default priority, and a burst of events while every CPU is busy may overflow the ring; grant it")
    });
}

fn btf_checks(checks: &mut Vec<Check>, btf_path: &Path, btf: &crate::btf::ResolvedBtf) {
    let missing = &btf.missing;
    checks.push(if missing.is_empty() {
        Check::new(
            "btf",
            Status::Pass,
            format!(
                "{} readable; every kernel offset sigtrace needs resolved",
                btf_path.display()
            ),
        )
    } else {
        Check::new(
            "btf",
            Status::Warn,
            format!(
                "{} readable but some offsets are missing (their fields stay empty): {}",
                btf_path.display(),
                missing.join("; ")
            ),
        )
    });
    checks.push(Check::new(
        "exit-hook",
        Status::Pass,
        if btf.exit_has_group_dead {
            "sched_process_exit carries group_dead"
        } else {
            "sched_process_exit has no group_dead argument; derived from signal->live"
        },
    ));
}

fn mount_checks(checks: &mut Vec<Check>) {
    let tracefs = Path::new("/sys/kernel/tracing/events").exists()
        || Path::new("/sys/kernel/debug/tracing/events").exists();
    checks.push(Check::new(
        "tracefs",
        Status::Pass,
        if tracefs { "mounted (not required)" } else { "not mounted; not required: sigtrace attaches BTF and raw tracepoints, which do not need it" },
    ));

    checks.push(match cgroup_v2_mount() {
        Some(m) => Check::new("cgroup-v2", Status::Pass, format!("cgroup v2 mounted at {}", m.display())),
        None => Check::new("cgroup-v2", Status::Warn, "no cgroup v2 mount: container attribution falls back to /proc/<pid>/cgroup and may miss processes that exit before they are seen"),
    });
}

/// The check of one load: FAIL where this kernel should have taken a BTF tracepoint program
/// and refused it (the fallback works, at several times the cost: a defect to fix, never to
/// live with), WARN for a missing optional hook, PASS otherwise.
fn programs_check(name: &'static str, p: &Probes) -> Check {
    let status = if !p.degraded.is_empty() {
        Status::Fail
    } else if p.warnings.is_empty() {
        Status::Pass
    } else {
        Status::Warn
    };
    let mut detail = p.describe();
    if p.raw_is_native && name == "programs" {
        detail.push_str(
            "; raw tracepoints are this kernel's path (no bpf_get_current_task_btf before \
             Linux 5.11)",
        );
    }
    for w in p.degraded.iter().chain(&p.warnings) {
        detail.push_str("; ");
        detail.push_str(w);
    }
    Check::new(name, status, detail)
}

/// Prints the checks; returns whether none failed.
pub fn print(checks: &[Check]) -> bool {
    for c in checks {
        let tag = match c.status {
            Status::Pass => "PASS",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
        };
        println!("{tag:4}  {:<13} {}", c.name, c.detail);
    }
    checks.iter().all(|c| c.status != Status::Fail)
}
