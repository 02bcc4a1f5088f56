//! Who sent a signal, in container terms ([`SenderClass`]): the runtime, the container's own
//! init (forwarding), another process of the same container, another container, the kernel,
//! or the host.
//!
//! Rules, first match wins:
//! 1. `si_code` is SI_KERNEL → `kernel` (OOM killer, PID-namespace teardown, group exit).
//! 2. The sender's comm is a runtime binary (runc, crun, runsc, youki, conmon,
//!    containerd-shim*, or one configured with `--runtime-comm`) → `runtime`.
//! 3. Sender and target in the same attributed container: the sender is that container's PID
//!    namespace init → `container_init`, else `same_container`. (A container's init is a child
//!    of the shim too, which is why this comes before the next rule.)
//! 4. The sender is a child of a shim or conmon outside the target's cgroup → `runtime`.
//! 5. The sender is in another attributed container → `other_container`.
//! 6. Anything else → `host` (e.g. a user's `kill`).
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::container::ContainerInfo;
use crate::event::Task;

/// Sender of a signal, in container terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SenderClass {
    Runtime,
    ContainerInit,
    SameContainer,
    OtherContainer,
    Kernel,
    Host,
}

impl SenderClass {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Runtime => "runtime",
            Self::ContainerInit => "container_init",
            Self::SameContainer => "same_container",
            Self::OtherContainer => "other_container",
            Self::Kernel => "kernel",
            Self::Host => "host",
        }
    }
}

/// Process names of container runtimes (comm is at most 15 characters).
pub const RUNTIME_COMMS: [&str; 7] = [
    "runc",
    "crun",
    "runsc",
    "youki",
    "conmon",
    "containerd-shim",
    "docker-runc",
];

use tracer_common::SI_KERNEL;

fn is_runtime_comm(comm: &str, extra: &[String]) -> bool {
    RUNTIME_COMMS.contains(&comm)
        || comm.starts_with("containerd-shim")
        || comm.starts_with("runc:[")
        || extra.iter().any(|e| e == comm)
}

fn is_shim(comm: &str) -> bool {
    comm.starts_with("containerd-shim") || comm == "conmon"
}

/// Classifies the sender of a signal from `sender` to `target`.
pub fn classify<H: BuildHasher>(
    sender: &Task,
    target: &Task,
    si_code: i32,
    containers: &HashMap<u64, Arc<ContainerInfo>, H>,
    extra_runtime_comms: &[String],
) -> SenderClass {
    if si_code == SI_KERNEL {
        return SenderClass::Kernel;
    }
    if is_runtime_comm(&sender.comm.as_str(), extra_runtime_comms) {
        return SenderClass::Runtime;
    }
    let target_c = containers.get(&target.cgroup_id);
    let sender_c = containers.get(&sender.cgroup_id);
    if let (Some(t), Some(s)) = (target_c, sender_c) {
        if Arc::ptr_eq(t, s) || t.id == s.id {
            return if sender.ns_init || sender.ns_pid == 1 {
                SenderClass::ContainerInit
            } else {
                SenderClass::SameContainer
            };
        }
    }
    if is_shim(&sender.parent_comm.as_str()) && sender.cgroup_id != target.cgroup_id {
        return SenderClass::Runtime;
    }
    if sender_c.is_some() {
        return SenderClass::OtherContainer;
    }
    SenderClass::Host
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(pid: u32, comm: &str, parent: &str, cgroup: u64) -> Task {
        Task {
            pid,
            tid: pid,
            comm: comm.into(),
            parent_comm: parent.into(),
            cgroup_id: cgroup,
            ns_pid: pid,
            ..Default::default()
        }
    }

    fn containers() -> HashMap<u64, Arc<ContainerInfo>> {
        let mut m = HashMap::new();
        m.insert(
            100,
            Arc::new(ContainerInfo {
                id: "a".repeat(64),
                ..Default::default()
            }),
        );
        m.insert(
            200,
            Arc::new(ContainerInfo {
                id: "b".repeat(64),
                ..Default::default()
            }),
        );
        m
    }

    #[test]
    fn classifies_every_sender_kind() {
        let c = containers();
        let target = task(50, "app", "sh", 100);
        let runc = task(10, "runc", "containerd-shim", 5);
        assert_eq!(classify(&runc, &target, 0, &c, &[]), SenderClass::Runtime);
        let mut init = task(40, "tini", "containerd-shim", 100);
        init.ns_pid = 1;
        assert_eq!(
            classify(&init, &target, 0, &c, &[]),
            SenderClass::ContainerInit
        );
        let sibling = task(41, "worker", "tini", 100);
        assert_eq!(
            classify(&sibling, &target, 0, &c, &[]),
            SenderClass::SameContainer
        );
        let other = task(60, "ctl", "tini", 200);
        assert_eq!(
            classify(&other, &target, 0, &c, &[]),
            SenderClass::OtherContainer
        );
        assert_eq!(
            classify(&other, &target, 0x80, &c, &[]),
            SenderClass::Kernel
        );
        let user = task(70, "bash", "sshd", 1);
        assert_eq!(classify(&user, &target, 0, &c, &[]), SenderClass::Host);
        let custom = task(71, "my-runtime", "systemd", 1);
        assert_eq!(
            classify(&custom, &target, 0, &c, &["my-runtime".into()]),
            SenderClass::Runtime
        );
        // A container's init (child of a shim) signalling into its own container is not the runtime.
        assert_eq!(
            classify(&init, &task(51, "x", "tini", 100), -6, &c, &[]),
            SenderClass::ContainerInit
        );
    }
}
