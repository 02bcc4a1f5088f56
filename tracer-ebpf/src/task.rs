//! What the probes read about tasks: identity, family, cgroup, namespace PID and flags of a
//! `task_struct`, dispositions, and the few checks every probe makes on the current task.
use aya_ebpf::helpers::{bpf_get_current_cgroup_id, bpf_get_current_pid_tgid};
use tracer_common::{
    disp, f, field,
    kstruct::{kernel_siginfo, sighand_struct, task_struct},
    stat, task_flags, Ptr, TaskInfo, COMM_LEN, MAX_RUNTIME_COMMS, SI_KERNEL,
};

use crate::{
    bump,
    mem::{self, has, Mem},
    SIGNAL_COUNTS,
};

// Kernel flag values (not layouts): include/linux/sched/signal.h and include/linux/sched.h.
const SIGNAL_GROUP_EXIT: u32 = 0x0000_0004;
const SIGNAL_UNKILLABLE: u32 = 0x0000_0040;
const PF_KTHREAD: u32 = 0x0020_0000;
const SI_USER: i32 = 0;

/// Fills `out` from a `task_struct` pointer.
#[inline(always)]
pub fn fill_task<M: Mem>(task: Ptr<task_struct>, out: &mut TaskInfo) {
    out.tid = M::ld::<f::TASK_PID>(task);
    out.tgid = M::ld::<f::TASK_TGID>(task);
    M::comm(task, &mut out.comm);
    out.cgroup_id = cgroup_id::<M>(task);
    fill_family::<M>(task, out, false);
}

/// cgroup v2 id of a task: cgroups->dfl_cgrp->kn->id.
#[inline(always)]
pub fn cgroup_id<M: Mem>(task: Ptr<task_struct>) -> u64 {
    let css_set = M::ld::<f::TASK_CGROUPS>(task);
    let cgrp = M::ld::<f::CSS_SET_DFL_CGRP>(css_set);
    let kn = M::ld::<f::CGROUP_KN>(cgrp);
    M::ld::<f::KERNFS_NODE_ID>(kn)
}

/// Fills `out` for the current task (a sender, receiver or exiting task), taking its ids and
/// cgroup from helpers; with its parent's name, which tells a runtime's short-lived children
/// apart.
#[inline(always)]
pub fn fill_current<M: Mem>(out: &mut TaskInfo) -> Ptr<task_struct> {
    let ids = bpf_get_current_pid_tgid();
    out.tid = ids as u32;
    out.tgid = (ids >> 32) as u32;
    out.cgroup_id = unsafe { bpf_get_current_cgroup_id() };
    let task = M::current_task();
    M::comm(task, &mut out.comm);
    fill_family::<M>(task, out, true);
    task
}

/// Parent, start time, namespace PID and flags of a task.
#[inline(always)]
pub fn fill_family<M: Mem>(task: Ptr<task_struct>, out: &mut TaskInfo, parent_comm: bool) {
    let parent = M::ld::<f::TASK_REAL_PARENT>(task);
    out.ppid = M::ld::<f::TASK_TGID>(parent);
    if parent_comm {
        M::comm(parent, &mut out.parent_comm);
    } else {
        out.parent_comm = [0; COMM_LEN];
    }

    // PID of the group leader inside its innermost namespace: numbers[level].nr.
    let leader = M::ld::<f::TASK_GROUP_LEADER>(task);
    out.start_ns = M::ld::<f::TASK_START_TIME>(leader);
    let pid = M::ld::<f::TASK_THREAD_PID>(leader);
    out.ns_pid = if !pid.is_null() && has(field::PID_LEVEL) {
        match M::ld::<f::PID_LEVEL>(pid) {
            // The initial namespace: the namespace PID is the host one.
            0 => out.tgid,
            level => M::ns_nr(pid, level),
        }
    } else {
        0
    };

    out._pad = 0;
    let mut flags = 0;
    let signal = M::ld::<f::TASK_SIGNAL>(task);
    let sflags = M::ld::<f::SIGNAL_FLAGS>(signal);
    if sflags & SIGNAL_UNKILLABLE != 0 {
        flags |= task_flags::NS_INIT;
    }
    if sflags & SIGNAL_GROUP_EXIT != 0 {
        flags |= task_flags::GROUP_EXITING;
    }
    if M::ld::<f::TASK_FLAGS>(task) & PF_KTHREAD != 0 {
        flags |= task_flags::KTHREAD;
    }
    out.flags = flags;
}

/// `si_code` of a siginfo pointer, honouring the SEND_SIG_NOINFO (0) / SEND_SIG_PRIV (1)
/// pseudo-pointers exactly like the tracepoint's own TP_STORE_SIGINFO. Read with
/// `bpf_probe_read_kernel` in every flavour: newer kernels (6.12, stable backports) type this
/// `tp_btf` argument as a scalar because it may hold those special values, and refuse a
/// direct load through it.
#[inline(always)]
pub fn si_code(info: Ptr<kernel_siginfo>) -> i32 {
    match info.addr() {
        0 => SI_USER,
        1 => SI_KERNEL,
        _ => mem::probe_ld::<f::SIGINFO_CODE>(info) as i32,
    }
}

#[inline(always)]
pub fn disposition<M: Mem>(sighand: Ptr<sighand_struct>, sig: i32) -> u8 {
    if !(1..=64).contains(&sig) || sighand.is_null() || !has(field::SIGHAND_HANDLER) {
        return disp::UNKNOWN;
    }
    match M::handler(sighand, sig) {
        0 => disp::DEFAULT,
        1 => disp::IGNORE,
        _ => disp::HANDLER,
    }
}

/// Counts a signal that is not emitted.
#[inline(always)]
pub fn count_only(sig: i32) {
    if let Some(p) = SIGNAL_COUNTS.get_ptr_mut(sig as u32) {
        unsafe { *p += 1 };
    }
    bump(stat::COUNTED_ONLY);
}

#[inline(always)]
pub fn bit(sig: i32) -> u64 {
    tracer_common::signal_bit(sig)
}

/// The current task is a container runtime: its name is one of `CONFIG.runtime_comms` (two
/// plain loads and a few compares, no helper call: this runs for every counted-only signal).
#[inline(always)]
pub fn current_is_runtime<M: Mem>() -> bool {
    let task = M::current_task();
    let lo = M::ld::<f::TASK_COMM>(task);
    let hi = M::ld::<f::TASK_COMM_HI>(task);
    let mut i = 0;
    while i < MAX_RUNTIME_COMMS {
        // SAFETY: a volatile read of the configuration global.
        let e = unsafe {
            core::ptr::read_volatile(core::ptr::addr_of!(crate::CONFIG.runtime_comms[i]))
        };
        if e[0] == 0 {
            return false;
        }
        if e[0] == lo && e[1] == hi {
            return true;
        }
        i += 1;
    }
    false
}

#[inline(always)]
pub fn is_agent() -> bool {
    let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    if tgid != 0 && tgid == config!(agent_tgid) {
        bump(stat::SELF_FILTERED);
        return true;
    }
    false
}
