//! Kernel programs of sigtrace: thin hooks on `signal_generate`, `signal_deliver`,
//! `sched_process_exit` and `oom:mark_victim`.
//!
//! They only copy what the kernel knows at the instant of each event into the `EVENTS` ring
//! buffer (layouts in `tracer-common`); all interpretation happens in userspace. Struct offsets
//! come from the `CONFIG` global, which userspace fills from the running kernel's BTF, so the
//! same object works across kernel versions without CO-RE. Every program exists as a BTF
//! tracepoint (`tp_btf`, preferred) and as a raw tracepoint (`raw_tp`, the fallback); the
//! `floor_*` programs are empty and only serve the overhead benchmark.
#![no_std]
#![no_main]

use core::ptr::{addr_of, read_volatile};

use aya_ebpf::{
    helpers::{
        bpf_get_current_cgroup_id, bpf_get_current_comm, bpf_get_current_pid_tgid,
        bpf_get_current_task, bpf_get_smp_processor_id, bpf_ktime_get_ns, bpf_probe_read_kernel,
        bpf_probe_read_kernel_buf,
    },
    macros::{btf_tracepoint, map, raw_tracepoint},
    maps::{PerCpuArray, RingBuf},
    programs::{BtfTracePointContext, RawTracePointContext},
};
use tracer_common::{
    disp, kind, stat, task_flags, Config, Header, OomVictim, ProcessExit, SignalDeliver,
    SignalGenerate, TaskInfo, COMM_LEN, DISP_SIGNALS, NSIG, OFFSET_MISSING,
};

/// Filled by userspace before load.
#[unsafe(no_mangle)]
static CONFIG: Config = Config::DEFAULT;

#[map]
static EVENTS: RingBuf = RingBuf::with_byte_size(1 << 20, 0);

/// Signals outside the emit mask, counted per signal number.
#[map]
static SIGNAL_COUNTS: PerCpuArray<u64> = PerCpuArray::with_max_entries(NSIG as u32, 0);

/// Health counters, indexed by `tracer_common::stat`.
#[map]
static STATS: PerCpuArray<u64> = PerCpuArray::with_max_entries(stat::COUNT, 0);

// Kernel flag values (not layouts): include/linux/sched/signal.h and include/linux/sched.h.
const SIGNAL_GROUP_EXIT: u32 = 0x0000_0004;
const SIGNAL_UNKILLABLE: u32 = 0x0000_0040;
const PF_KTHREAD: u32 = 0x0020_0000;
const SI_USER: i32 = 0;
const SI_KERNEL: i32 = 0x80;
const BPF_RB_NO_WAKEUP: u64 = 1;
const BPF_RB_FORCE_WAKEUP: u64 = 2;
const BPF_RB_AVAIL_DATA: u64 = 0;

macro_rules! cfg {
    ($($field:ident).+) => {
        unsafe { read_volatile(addr_of!(CONFIG.$($field).+)) }
    };
}

#[inline(always)]
fn bump(index: u32) {
    if let Some(p) = STATS.get_ptr_mut(index) {
        unsafe { *p += 1 };
    }
}

#[inline(always)]
fn lost(kind: u32) {
    bump(stat::LOST);
    bump(stat::LOST_BY_KIND + kind);
}

/// Reads a `T` at `base + off`, or `None` when the offset is unknown or the read faults.
#[inline(always)]
fn rd<T>(base: u64, off: u32) -> Option<T> {
    if base == 0 || off == OFFSET_MISSING {
        return None;
    }
    unsafe { bpf_probe_read_kernel((base + off as u64) as *const T).ok() }
}

#[inline(always)]
fn rd_ptr(base: u64, off: u32) -> u64 {
    rd::<u64>(base, off).unwrap_or(0)
}

#[inline(always)]
fn rd_comm(base: u64, off: u32, out: &mut [u8; COMM_LEN]) {
    if base != 0 && off != OFFSET_MISSING {
        let _ = unsafe { bpf_probe_read_kernel_buf((base + off as u64) as *const u8, out) };
    }
}

/// Submit flags: wake the reader only when enough data waits (it drains on a timer too).
#[inline(always)]
fn wakeup() -> u64 {
    if EVENTS.query(BPF_RB_AVAIL_DATA) >= cfg!(wakeup_bytes) as u64 {
        BPF_RB_FORCE_WAKEUP
    } else {
        BPF_RB_NO_WAKEUP
    }
}

#[inline(always)]
fn header(kind: u32) -> Header {
    Header {
        kind,
        cpu: unsafe { bpf_get_smp_processor_id() },
        ts_ns: unsafe { bpf_ktime_get_ns() },
    }
}

/// Fills `out` from a `task_struct` pointer.
#[inline(always)]
fn fill_task(task: u64, out: &mut TaskInfo) {
    // pid and tgid are adjacent in every kernel's task_struct: one read for both.
    let pid_off = cfg!(off.task_pid);
    if cfg!(off.task_tgid) == pid_off.wrapping_add(4) {
        let ids = rd::<u64>(task, pid_off).unwrap_or(0);
        out.tid = ids as u32;
        out.tgid = (ids >> 32) as u32;
    } else {
        out.tgid = rd::<u32>(task, cfg!(off.task_tgid)).unwrap_or(0);
        out.tid = rd::<u32>(task, pid_off).unwrap_or(0);
    }
    rd_comm(task, cfg!(off.task_comm), &mut out.comm);
    // cgroup v2 id: cgroups->dfl_cgrp->kn->id.
    let css_set = rd_ptr(task, cfg!(off.task_cgroups));
    let cgrp = rd_ptr(css_set, cfg!(off.css_set_dfl_cgrp));
    let kn = rd_ptr(cgrp, cfg!(off.cgroup_kn));
    out.cgroup_id = rd::<u64>(kn, cfg!(off.kernfs_node_id)).unwrap_or(0);
    fill_family(task, out, false);
}

/// Fills `out` for the current task (a sender, receiver or exiting task), taking its ids,
/// name and cgroup from helpers rather than memory reads; with its parent's name, which
/// tells a runtime's short-lived children apart.
#[inline(always)]
fn fill_current(out: &mut TaskInfo) -> u64 {
    let ids = bpf_get_current_pid_tgid();
    out.tid = ids as u32;
    out.tgid = (ids >> 32) as u32;
    if let Ok(comm) = bpf_get_current_comm() {
        out.comm = comm;
    }
    out.cgroup_id = unsafe { bpf_get_current_cgroup_id() };
    let task = unsafe { bpf_get_current_task() };
    fill_family(task, out, true);
    task
}

/// Parent, start time, namespace PID and flags of a task.
#[inline(always)]
fn fill_family(task: u64, out: &mut TaskInfo, parent_comm: bool) {
    let parent = rd_ptr(task, cfg!(off.task_real_parent));
    out.ppid = rd::<u32>(parent, cfg!(off.task_tgid)).unwrap_or(0);
    if parent_comm {
        rd_comm(parent, cfg!(off.task_comm), &mut out.parent_comm);
    }

    // PID of the group leader inside its innermost namespace: numbers[level].nr.
    let leader = rd_ptr(task, cfg!(off.task_group_leader));
    out.start_ns = rd::<u64>(leader, cfg!(off.task_start_time)).unwrap_or(0);
    let pid = rd_ptr(leader, cfg!(off.task_thread_pid));
    match rd::<u32>(pid, cfg!(off.pid_level)) {
        // The initial namespace: the namespace PID is the host one.
        Some(0) => out.ns_pid = out.tgid,
        Some(level) => {
            let upid_size = cfg!(off.upid_size);
            let numbers = cfg!(off.pid_numbers);
            if numbers != OFFSET_MISSING && upid_size != OFFSET_MISSING && level < 64 {
                let off = numbers + (level & 63) * upid_size + cfg!(off.upid_nr);
                out.ns_pid = rd::<u32>(pid, off).unwrap_or(0);
            }
        }
        None => {}
    }

    let mut flags = 0;
    let signal = rd_ptr(task, cfg!(off.task_signal));
    let sflags = rd::<u32>(signal, cfg!(off.signal_flags)).unwrap_or(0);
    if sflags & SIGNAL_UNKILLABLE != 0 {
        flags |= task_flags::NS_INIT;
    }
    if sflags & SIGNAL_GROUP_EXIT != 0 {
        flags |= task_flags::GROUP_EXITING;
    }
    if rd::<u32>(task, cfg!(off.task_flags)).unwrap_or(0) & PF_KTHREAD != 0 {
        flags |= task_flags::KTHREAD;
    }
    out.flags = flags;
}

/// `si_code` of a siginfo pointer, honouring the SEND_SIG_NOINFO (0) / SEND_SIG_PRIV (1)
/// pseudo-pointers exactly like the tracepoint's own TP_STORE_SIGINFO.
#[inline(always)]
fn si_code(info: u64) -> i32 {
    match info {
        0 => SI_USER,
        1 => SI_KERNEL,
        _ => rd::<i32>(info, cfg!(off.siginfo_code)).unwrap_or(0),
    }
}

#[inline(always)]
fn disposition(sighand: u64, sig: i32) -> u8 {
    if !(1..=64).contains(&sig) {
        return disp::UNKNOWN;
    }
    let action = cfg!(off.sighand_action);
    let size = cfg!(off.k_sigaction_size);
    let handler = cfg!(off.k_sigaction_handler);
    if action == OFFSET_MISSING || size == OFFSET_MISSING || handler == OFFSET_MISSING {
        return disp::UNKNOWN;
    }
    let idx = ((sig - 1) as u32) & 63;
    match rd::<u64>(sighand, action + idx * size + handler) {
        Some(0) => disp::DEFAULT,
        Some(1) => disp::IGNORE,
        Some(_) => disp::HANDLER,
        None => disp::UNKNOWN,
    }
}

#[inline(always)]
fn emitted(sig: i32) -> bool {
    if !(1..=64).contains(&sig) {
        return false;
    }
    let mask = cfg!(signal_mask);
    if mask & (1u64 << ((sig - 1) as u32 & 63)) != 0 {
        return true;
    }
    if let Some(p) = SIGNAL_COUNTS.get_ptr_mut(sig as u32) {
        unsafe { *p += 1 };
    }
    bump(stat::COUNTED_ONLY);
    false
}

#[inline(always)]
fn is_agent() -> bool {
    let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    if tgid != 0 && tgid == cfg!(agent_tgid) {
        bump(stat::SELF_FILTERED);
        return true;
    }
    false
}

fn on_generate(sig: i32, info: u64, task: u64, group: i32, result: i32) {
    if !emitted(sig) || is_agent() {
        return;
    }
    // Signals to the agent itself (its own stop) are not traced either.
    let agent = cfg!(agent_tgid);
    if agent != 0 && rd::<u32>(task, cfg!(off.task_tgid)) == Some(agent) {
        bump(stat::SELF_FILTERED);
        return;
    }
    let Some(mut entry) = EVENTS.reserve::<SignalGenerate>(0) else {
        lost(kind::SIGNAL_GENERATE);
        return;
    };
    // SAFETY: the entry is exclusively ours until submit; zero it before filling.
    let ev = unsafe {
        let p = entry.as_mut_ptr();
        core::ptr::write_bytes(p, 0, 1);
        &mut *p
    };
    ev.header = header(kind::SIGNAL_GENERATE);
    ev.sig = sig;
    ev.code = si_code(info);
    ev.group = group;
    ev.result = result;
    fill_current(&mut ev.sender);
    fill_task(task, &mut ev.target);

    let sighand = rd_ptr(task, cfg!(off.task_sighand));
    let mut i = 0;
    while i < DISP_SIGNALS.len() {
        let s = if i == 0 { sig } else { DISP_SIGNALS[i] };
        ev.disp[i] = disposition(sighand, s);
        i += 1;
    }
    ev.target_blocked = rd::<u64>(task, cfg!(off.task_blocked)).unwrap_or(0);
    entry.submit(wakeup());
    bump(stat::EMITTED);
}

fn on_deliver(sig: i32, info: u64, ka: u64) {
    if !emitted(sig) || is_agent() {
        return;
    }
    let Some(mut entry) = EVENTS.reserve::<SignalDeliver>(0) else {
        lost(kind::SIGNAL_DELIVER);
        return;
    };
    let ev = unsafe {
        let p = entry.as_mut_ptr();
        core::ptr::write_bytes(p, 0, 1);
        &mut *p
    };
    ev.header = header(kind::SIGNAL_DELIVER);
    ev.sig = sig;
    ev.code = si_code(info);
    let task = fill_current(&mut ev.receiver);
    ev.sa_handler = rd::<u64>(ka, cfg!(off.k_sigaction_handler)).unwrap_or(0);
    ev.sa_flags = rd::<u64>(ka, cfg!(off.k_sigaction_flags)).unwrap_or(0);
    let signal = rd_ptr(task, cfg!(off.task_signal));
    ev.group_exit_code = rd::<i32>(signal, cfg!(off.signal_group_exit_code)).unwrap_or(0);
    entry.submit(wakeup());
    bump(stat::EMITTED);
}

fn on_exit(task: u64, group_dead_arg: u64) {
    if is_agent() {
        return;
    }
    let group_dead = if cfg!(exit_has_group_dead) != 0 {
        (group_dead_arg & 0xff) != 0
    } else {
        // Older kernels: `signal->live` already reached zero for the group's last thread.
        let signal = rd_ptr(task, cfg!(off.task_signal));
        rd::<i32>(signal, cfg!(off.signal_live)) == Some(0)
    };
    if !group_dead && cfg!(emit_thread_exits) == 0 {
        bump(stat::THREAD_EXITS_FOLDED);
        return;
    }
    let Some(mut entry) = EVENTS.reserve::<ProcessExit>(0) else {
        lost(kind::PROCESS_EXIT);
        return;
    };
    let ev = unsafe {
        let p = entry.as_mut_ptr();
        core::ptr::write_bytes(p, 0, 1);
        &mut *p
    };
    ev.header = header(kind::PROCESS_EXIT);
    fill_task(task, &mut ev.task);
    ev.exit_code = rd::<i32>(task, cfg!(off.task_exit_code)).unwrap_or(0);
    ev.group_dead = group_dead as u32;
    entry.submit(wakeup());
    bump(stat::EMITTED);
}

fn on_oom(task: u64) {
    let Some(mut entry) = EVENTS.reserve::<OomVictim>(0) else {
        lost(kind::OOM_VICTIM);
        return;
    };
    let ev = unsafe {
        let p = entry.as_mut_ptr();
        core::ptr::write_bytes(p, 0, 1);
        &mut *p
    };
    ev.header = header(kind::OOM_VICTIM);
    fill_task(task, &mut ev.victim);
    ev.invoker_tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    entry.submit(wakeup());
    bump(stat::EMITTED);
}

// ---- BTF tracepoints (preferred) ----

#[btf_tracepoint(function = "signal_generate")]
pub fn signal_generate(ctx: BtfTracePointContext) -> i32 {
    on_generate(ctx.arg(0), ctx.arg(1), ctx.arg(2), ctx.arg(3), ctx.arg(4));
    0
}

#[btf_tracepoint(function = "signal_deliver")]
pub fn signal_deliver(ctx: BtfTracePointContext) -> i32 {
    on_deliver(ctx.arg(0), ctx.arg(1), ctx.arg(2));
    0
}

#[btf_tracepoint(function = "sched_process_exit")]
pub fn sched_process_exit(ctx: BtfTracePointContext) -> i32 {
    let group_dead = if cfg!(exit_has_group_dead) != 0 {
        ctx.arg(1)
    } else {
        0
    };
    on_exit(ctx.arg(0), group_dead);
    0
}

#[btf_tracepoint(function = "mark_victim")]
pub fn mark_victim(ctx: BtfTracePointContext) -> i32 {
    on_oom(ctx.arg(0));
    0
}

// ---- raw tracepoints (fallback; same arguments) ----

#[raw_tracepoint(tracepoint = "signal_generate")]
pub fn raw_signal_generate(ctx: RawTracePointContext) -> i32 {
    on_generate(ctx.arg(0), ctx.arg(1), ctx.arg(2), ctx.arg(3), ctx.arg(4));
    0
}

#[raw_tracepoint(tracepoint = "signal_deliver")]
pub fn raw_signal_deliver(ctx: RawTracePointContext) -> i32 {
    on_deliver(ctx.arg(0), ctx.arg(1), ctx.arg(2));
    0
}

#[raw_tracepoint(tracepoint = "sched_process_exit")]
pub fn raw_sched_process_exit(ctx: RawTracePointContext) -> i32 {
    let group_dead = if cfg!(exit_has_group_dead) != 0 {
        ctx.arg(1)
    } else {
        0
    };
    on_exit(ctx.arg(0), group_dead);
    0
}

#[raw_tracepoint(tracepoint = "mark_victim")]
pub fn raw_mark_victim(ctx: RawTracePointContext) -> i32 {
    on_oom(ctx.arg(0));
    0
}

// ---- empty programs on the same hooks: the overhead floor ----

#[btf_tracepoint(function = "signal_generate")]
pub fn floor_signal_generate(_ctx: BtfTracePointContext) -> i32 {
    0
}

#[btf_tracepoint(function = "signal_deliver")]
pub fn floor_signal_deliver(_ctx: BtfTracePointContext) -> i32 {
    0
}

#[btf_tracepoint(function = "sched_process_exit")]
pub fn floor_sched_process_exit(_ctx: BtfTracePointContext) -> i32 {
    0
}

#[btf_tracepoint(function = "mark_victim")]
pub fn floor_mark_victim(_ctx: BtfTracePointContext) -> i32 {
    0
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
