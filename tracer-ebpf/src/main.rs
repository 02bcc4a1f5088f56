//! Kernel programs of sigtrace: thin hooks on `signal_generate`, `signal_deliver`,
//! `sched_process_exit`, `sched_process_exec` and `oom:mark_victim`.
//!
//! They only copy what the kernel knows at the instant of each event into the `EVENTS` ring
//! buffer (layouts in `tracer-common`); all interpretation happens in userspace. Struct offsets
//! come from the running kernel's BTF, resolved by userspace at start-up, so the same object
//! works across kernel versions: patched into the loads of the BTF tracepoint programs
//! (`tp_btf`, preferred) and passed in the `CONFIG` global to the raw tracepoint programs
//! (`raw_tp`, the fallback); see `mem.rs`. The `floor_*` programs are empty and only serve the
//! overhead benchmark.
#![no_std]
#![no_main]
#![feature(asm_experimental_arch)]

mod mem;

use core::ptr::{addr_of, read_volatile, write_volatile};

use aya_ebpf::{
    helpers::{
        bpf_get_current_cgroup_id, bpf_get_current_pid_tgid, bpf_get_smp_processor_id,
        bpf_ktime_get_ns, bpf_probe_read_kernel_str_bytes,
    },
    macros::{btf_tracepoint, map, raw_tracepoint},
    maps::{Array, PerCpuArray, RingBuf},
    programs::{BtfTracePointContext, RawTracePointContext},
};
use mem::{has, Direct, Mem, Probe};
use tracer_common::{
    disp, field, kind, stat, task_flags, Config, Header, OomVictim, ProcessExec, ProcessExit,
    SignalDeliver, SignalGenerate, TaskInfo, COMM_LEN, DISP_SIGNALS, MAX_RUNTIME_COMMS, NSIG,
    SI_KERNEL,
};

/// Filled by userspace before load.
#[unsafe(no_mangle)]
static CONFIG: Config = Config::DEFAULT;

#[map]
static EVENTS: RingBuf = RingBuf::with_byte_size(1 << 20, 0);

/// Signals outside the emit mask, counted per signal number.
#[map]
static SIGNAL_COUNTS: PerCpuArray<u64> = PerCpuArray::with_max_entries(NSIG as u32, 0);

/// Thread groups whose exit is emitted (with their direct children's): the targets of
/// emitted signals, runtime execs and OOM victims. One byte per PID (byte `tgid % 8` of
/// element `tgid / 8`; userspace sizes it from `kernel.pid_max`), cleared at the group's exit.
/// A plain load tests it: no hashing on the path of every process exit. Bytes, not bits: a
/// plain byte store sets or clears one PID without touching its neighbours, so no atomic
/// OR/AND is needed (kernels before 5.12 refuse them).
#[map]
static WATCHED: Array<u64> = Array::with_max_entries(1, 0);

/// Health counters, indexed by `tracer_common::stat`.
#[map]
static STATS: PerCpuArray<u64> = PerCpuArray::with_max_entries(stat::COUNT, 0);

// Kernel flag values (not layouts): include/linux/sched/signal.h and include/linux/sched.h.
const SIGNAL_GROUP_EXIT: u32 = 0x0000_0004;
const SIGNAL_UNKILLABLE: u32 = 0x0000_0040;
const PF_KTHREAD: u32 = 0x0020_0000;
const SIGCHLD: i32 = 17;
const SI_USER: i32 = 0;
const BPF_RB_NO_WAKEUP: u64 = 1;
const BPF_RB_FORCE_WAKEUP: u64 = 2;

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
fn lost() {
    bump(stat::LOST);
}

/// Submit flags for a record of `size` bytes: wake the reader once this CPU has written
/// `CONFIG.wakeup_bytes` since its last wake-up (the reader also drains on a timer). A per-CPU
/// count, not a query of the ring: that would read the consumer position the reader keeps
/// writing from another CPU.
#[inline(always)]
fn wakeup(size: usize) -> u64 {
    let Some(p) = STATS.get_ptr_mut(stat::WAKE_BYTES) else {
        return BPF_RB_FORCE_WAKEUP;
    };
    let threshold = cfg!(wakeup_bytes) as u64;
    // SAFETY: this CPU's slot of a per-CPU map; programs do not migrate while running.
    unsafe {
        let n = *p + size as u64;
        if n >= threshold {
            *p = 0;
            BPF_RB_FORCE_WAKEUP
        } else {
            *p = n;
            BPF_RB_NO_WAKEUP
        }
    }
}

/// The byte of `WATCHED` holding `tgid`'s mark.
#[inline(always)]
fn watch_slot(tgid: u32) -> Option<*mut u8> {
    let word = WATCHED.get_ptr_mut(tgid / 8)? as *mut u8;
    // SAFETY: `tgid % 8` stays inside the 8-byte element.
    Some(unsafe { word.add((tgid % 8) as usize) })
}

/// Watches thread group `tgid`: its exit will be emitted.
#[inline(always)]
fn watch(tgid: u32) {
    match watch_slot(tgid) {
        // SAFETY: `slot` points into the map's value; a byte store is atomic on its own and
        // leaves the other PIDs' bytes alone. Written only when clear, so that the common
        // case (already watched) does not dirty the cache line.
        Some(slot) => unsafe {
            if read_volatile(slot) == 0 {
                write_volatile(slot, 1);
            }
        },
        // A PID past the table (`pid_max` raised after start-up) is always watched.
        None => bump(stat::WATCH_FULL),
    }
}

#[inline(always)]
fn unwatch(tgid: u32) {
    if let Some(slot) = watch_slot(tgid) {
        // SAFETY: as in `watch`.
        unsafe { write_volatile(slot, 0) };
    }
}

#[inline(always)]
fn watched(tgid: u32) -> bool {
    // SAFETY: a load from the map's value.
    watch_slot(tgid).is_none_or(|slot| unsafe { read_volatile(slot) } != 0)
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
fn fill_task<M: Mem>(task: u64, out: &mut TaskInfo) {
    out.tid = M::ld32::<{ field::TASK_PID }>(task);
    out.tgid = M::ld32::<{ field::TASK_TGID }>(task);
    M::comm(task, &mut out.comm);
    out.cgroup_id = cgroup_id::<M>(task);
    fill_family::<M>(task, out, false);
}

/// cgroup v2 id of a task: cgroups->dfl_cgrp->kn->id.
#[inline(always)]
fn cgroup_id<M: Mem>(task: u64) -> u64 {
    let css_set = M::ld64::<{ field::TASK_CGROUPS }>(task);
    let cgrp = M::ld64::<{ field::CSS_SET_DFL_CGRP }>(css_set);
    let kn = M::ld64::<{ field::CGROUP_KN }>(cgrp);
    M::ld64::<{ field::KERNFS_NODE_ID }>(kn)
}

/// Fills `out` for the current task (a sender, receiver or exiting task), taking its ids and
/// cgroup from helpers; with its parent's name, which tells a runtime's short-lived children
/// apart.
#[inline(always)]
fn fill_current<M: Mem>(out: &mut TaskInfo) -> u64 {
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
fn fill_family<M: Mem>(task: u64, out: &mut TaskInfo, parent_comm: bool) {
    let parent = M::ld64::<{ field::TASK_REAL_PARENT }>(task);
    out.ppid = M::ld32::<{ field::TASK_TGID }>(parent);
    if parent_comm {
        M::comm(parent, &mut out.parent_comm);
    } else {
        out.parent_comm = [0; COMM_LEN];
    }

    // PID of the group leader inside its innermost namespace: numbers[level].nr.
    let leader = M::ld64::<{ field::TASK_GROUP_LEADER }>(task);
    out.start_ns = M::ld64::<{ field::TASK_START_TIME }>(leader);
    let pid = M::ld64::<{ field::TASK_THREAD_PID }>(leader);
    out.ns_pid = if pid != 0 && has(field::PID_LEVEL) {
        match M::ld32::<{ field::PID_LEVEL }>(pid) {
            // The initial namespace: the namespace PID is the host one.
            0 => out.tgid,
            level => M::ns_nr(pid, level),
        }
    } else {
        0
    };

    out._pad = 0;
    let mut flags = 0;
    let signal = M::ld64::<{ field::TASK_SIGNAL }>(task);
    let sflags = M::ld32::<{ field::SIGNAL_FLAGS }>(signal);
    if sflags & SIGNAL_UNKILLABLE != 0 {
        flags |= task_flags::NS_INIT;
    }
    if sflags & SIGNAL_GROUP_EXIT != 0 {
        flags |= task_flags::GROUP_EXITING;
    }
    if M::ld32::<{ field::TASK_FLAGS }>(task) & PF_KTHREAD != 0 {
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
fn si_code(info: u64) -> i32 {
    match info {
        0 => SI_USER,
        1 => SI_KERNEL,
        _ => mem::probe_ld32::<{ field::SIGINFO_CODE }>(info) as i32,
    }
}

#[inline(always)]
fn disposition<M: Mem>(sighand: u64, sig: i32) -> u8 {
    if !(1..=64).contains(&sig) || sighand == 0 || !has(field::SIGHAND_HANDLER) {
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
fn count_only(sig: i32) {
    if let Some(p) = SIGNAL_COUNTS.get_ptr_mut(sig as u32) {
        unsafe { *p += 1 };
    }
    bump(stat::COUNTED_ONLY);
}

#[inline(always)]
fn bit(sig: i32) -> u64 {
    1u64 << ((sig - 1) as u32 & 63)
}

/// Whether the generation of `sig` to `target` is emitted; otherwise it is counted. Emitted:
/// a stop signal; any signal a container runtime sends (some container's stop signal, whatever
/// its number; SIGCHLD excepted: a runtime process that exits sends it to its parent); any
/// other signal of the emit mask that meets the default action (it may end the process). A
/// signal that meets a handler or SIG_IGN and is none of those cannot affect a shutdown.
#[inline(always)]
fn generate_emitted<M: Mem>(sig: i32, target: u64) -> bool {
    if !(1..=64).contains(&sig) {
        return false;
    }
    let in_mask = cfg!(signal_mask) & bit(sig) != 0;
    if in_mask && cfg!(stop_mask) & bit(sig) != 0 {
        return true;
    }
    let runtime = sig != SIGCHLD && current_is_runtime::<M>();
    let emit = runtime
        || (in_mask && {
            let d = disposition::<M>(M::ld64::<{ field::TASK_SIGHAND }>(target), sig);
            d != disp::HANDLER && d != disp::IGNORE
        });
    if !emit {
        count_only(sig);
    }
    emit
}

/// Whether the delivery of `sig` (to `ka`) is emitted: a stop signal, or a signal of the emit
/// mask that meets the default action; otherwise it is counted.
#[inline(always)]
fn deliver_emitted<M: Mem>(sig: i32, ka: u64) -> bool {
    if !(1..=64).contains(&sig) {
        return false;
    }
    let emit = cfg!(signal_mask) & bit(sig) != 0
        && (cfg!(stop_mask) & bit(sig) != 0 || M::ld64::<{ field::KA_HANDLER }>(ka) == 0);
    if !emit {
        count_only(sig);
    }
    emit
}

/// The current task is a container runtime: its name is one of `CONFIG.runtime_comms` (two
/// plain loads and a few compares, no helper call: this runs for every counted-only signal).
#[inline(always)]
fn current_is_runtime<M: Mem>() -> bool {
    let task = M::current_task();
    let lo = M::ld64::<{ field::TASK_COMM }>(task);
    let hi = M::ld64::<{ field::TASK_COMM_HI }>(task);
    let mut i = 0;
    while i < MAX_RUNTIME_COMMS {
        // SAFETY: a volatile read of the configuration global.
        let e = unsafe { read_volatile(addr_of!(CONFIG.runtime_comms[i])) };
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
fn is_agent() -> bool {
    let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    if tgid != 0 && tgid == cfg!(agent_tgid) {
        bump(stat::SELF_FILTERED);
        return true;
    }
    false
}

#[inline(always)]
fn on_generate<M: Mem>(sig: i32, info: u64, task: u64, group: i32, result: i32) {
    if !generate_emitted::<M>(sig, task) || is_agent() {
        return;
    }
    // Signals to the agent itself (its own stop) are not traced either.
    let agent = cfg!(agent_tgid);
    let target_tgid = M::ld32::<{ field::TASK_TGID }>(task);
    if agent != 0 && target_tgid == agent {
        bump(stat::SELF_FILTERED);
        return;
    }
    watch(target_tgid);
    let Some(mut entry) = EVENTS.reserve::<SignalGenerate>(0) else {
        lost();
        return;
    };
    // SAFETY: the entry is exclusively ours until submit. Every field is written below (no
    // zeroing first: it costs as much as the fields).
    let ev = unsafe { &mut *entry.as_mut_ptr() };
    ev.header = header(kind::SIGNAL_GENERATE);
    ev.sig = sig;
    ev.code = si_code(info);
    ev.group = group;
    ev.result = result;
    fill_current::<M>(&mut ev.sender);
    fill_task::<M>(task, &mut ev.target);

    // In DISP_SIGNALS order, each with a constant signal number so that the loads are too.
    let sighand = M::ld64::<{ field::TASK_SIGHAND }>(task);
    ev.disp = [
        disposition::<M>(sighand, sig),
        disposition::<M>(sighand, DISP_SIGNALS[1]),
        disposition::<M>(sighand, DISP_SIGNALS[2]),
        disposition::<M>(sighand, DISP_SIGNALS[3]),
        disposition::<M>(sighand, DISP_SIGNALS[4]),
        0,
        0,
        0,
    ];
    ev.target_blocked = M::ld64::<{ field::TASK_BLOCKED }>(task);
    entry.submit(wakeup(size_of::<SignalGenerate>()));
    bump(stat::EMITTED);
}

#[inline(always)]
fn on_deliver<M: Mem>(sig: i32, info: u64, ka: u64) {
    if !deliver_emitted::<M>(sig, ka) || is_agent() {
        return;
    }
    let Some(mut entry) = EVENTS.reserve::<SignalDeliver>(0) else {
        lost();
        return;
    };
    // SAFETY: as in `on_generate`: every field is written below.
    let ev = unsafe { &mut *entry.as_mut_ptr() };
    ev.header = header(kind::SIGNAL_DELIVER);
    ev.sig = sig;
    ev.code = si_code(info);
    let task = fill_current::<M>(&mut ev.receiver);
    // The generation may have come before the trace started.
    watch(ev.receiver.tgid);
    ev.sa_handler = M::ld64::<{ field::KA_HANDLER }>(ka);
    ev.sa_flags = M::ld64::<{ field::KA_FLAGS }>(ka);
    let signal = M::ld64::<{ field::TASK_SIGNAL }>(task);
    ev.group_exit_code = M::ld32::<{ field::SIGNAL_GROUP_EXIT_CODE }>(signal) as i32;
    ev._pad = 0;
    entry.submit(wakeup(size_of::<SignalDeliver>()));
    bump(stat::EMITTED);
}

/// The exit of a watched thread group, of a direct child of one (a stopping process's
/// children belong to its record), or of a process a signal killed is emitted; every other
/// exit is only counted, with no record: nothing asked about that process. (A fatal signal's
/// generation is traced after the kernel has already woken the target: on a busy or
/// virtualised CPU the target can die before the sender's program has watched it.)
#[inline(always)]
fn on_exit<M: Mem>(task: u64, group_dead_arg: u64) {
    let tgid = M::ld32::<{ field::TASK_TGID }>(task);
    let is_watched = watched(tgid);
    let killed = M::ld32::<{ field::TASK_EXIT_CODE }>(task) & 0x7f != 0;
    if !is_watched && !killed {
        let parent = M::ld64::<{ field::TASK_REAL_PARENT }>(task);
        if !watched(M::ld32::<{ field::TASK_TGID }>(parent)) {
            bump(stat::EXITS_COUNTED);
            return;
        }
    }
    if is_agent() {
        return;
    }
    let group_dead = if cfg!(exit_has_group_dead) != 0 {
        (group_dead_arg & 0xff) != 0
    } else {
        // Older kernels: `signal->live` already reached zero for the group's last thread.
        let signal = M::ld64::<{ field::TASK_SIGNAL }>(task);
        signal != 0 && has(field::SIGNAL_LIVE) && M::ld32::<{ field::SIGNAL_LIVE }>(signal) == 0
    };
    if !group_dead {
        bump(stat::THREAD_EXITS_FOLDED);
        return;
    }
    if group_dead && is_watched {
        unwatch(tgid);
    }
    let Some(mut entry) = EVENTS.reserve::<ProcessExit>(0) else {
        lost();
        return;
    };
    // SAFETY: as in `on_generate`: every field is written below.
    let ev = unsafe { &mut *entry.as_mut_ptr() };
    ev.header = header(kind::PROCESS_EXIT);
    fill_task::<M>(task, &mut ev.task);
    ev.exit_code = M::ld32::<{ field::TASK_EXIT_CODE }>(task) as i32;
    ev.group_dead = group_dead as u32;
    entry.submit(wakeup(size_of::<ProcessExit>()));
    bump(stat::EMITTED);
}

/// An exec is emitted only when a container runtime put the process into a container (an
/// exec hook, an exec probe, `kubectl exec`, or the container's own init): its cgroup differs
/// from its real parent's, and it is not in the initial PID namespace. Every other exec is
/// only counted. Never argv nor the environment: the comm and the executable's path.
#[inline(always)]
fn on_exec<M: Mem>(task: u64, bprm: u64) {
    // Cheapest test first, on the two task structs only (hot: the parent just forked it): a
    // task and its parent nearly always share one css_set. Then the v2 cgroups and the PID
    // namespace level. No helper call and no cgroup id read on the counted path.
    let parent = M::ld64::<{ field::TASK_REAL_PARENT }>(task);
    let css_set = M::ld64::<{ field::TASK_CGROUPS }>(task);
    let parent_css_set = M::ld64::<{ field::TASK_CGROUPS }>(parent);
    if css_set == parent_css_set
        || M::ld64::<{ field::CSS_SET_DFL_CGRP }>(css_set)
            == M::ld64::<{ field::CSS_SET_DFL_CGRP }>(parent_css_set)
    {
        bump(stat::EXECS_COUNTED);
        return;
    }
    let pid = M::ld64::<{ field::TASK_THREAD_PID }>(task);
    let nested = pid != 0 && has(field::PID_LEVEL) && M::ld32::<{ field::PID_LEVEL }>(pid) != 0;
    if !nested || is_agent() {
        bump(stat::EXECS_COUNTED);
        return;
    }
    let parent_cgroup = cgroup_id::<M>(parent);
    watch((bpf_get_current_pid_tgid() >> 32) as u32);
    let Some(mut entry) = EVENTS.reserve::<ProcessExec>(0) else {
        lost();
        return;
    };
    let ev = unsafe {
        let p = entry.as_mut_ptr();
        core::ptr::write_bytes(p, 0, 1);
        &mut *p
    };
    ev.header = header(kind::PROCESS_EXEC);
    fill_current::<M>(&mut ev.task);
    ev.parent_cgroup_id = parent_cgroup;
    let filename = M::ld64::<{ field::BPRM_FILENAME }>(bprm);
    if filename != 0 {
        // SAFETY: a bounded string read of kernel memory into the reserved entry.
        let _ = unsafe { bpf_probe_read_kernel_str_bytes(filename as *const u8, &mut ev.path) };
    }
    entry.submit(wakeup(size_of::<ProcessExec>()));
    bump(stat::EMITTED);
}

#[inline(always)]
fn on_oom<M: Mem>(task: u64) {
    watch(M::ld32::<{ field::TASK_TGID }>(task));
    let Some(mut entry) = EVENTS.reserve::<OomVictim>(0) else {
        lost();
        return;
    };
    let ev = unsafe {
        let p = entry.as_mut_ptr();
        core::ptr::write_bytes(p, 0, 1);
        &mut *p
    };
    ev.header = header(kind::OOM_VICTIM);
    fill_task::<M>(task, &mut ev.victim);
    ev.invoker_tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    entry.submit(wakeup(size_of::<OomVictim>()));
    bump(stat::EMITTED);
}

// ---- BTF tracepoints (preferred) ----

#[btf_tracepoint(function = "signal_generate")]
pub fn signal_generate(ctx: BtfTracePointContext) -> i32 {
    on_generate::<Direct>(ctx.arg(0), ctx.arg(1), ctx.arg(2), ctx.arg(3), ctx.arg(4));
    0
}

#[btf_tracepoint(function = "signal_deliver")]
pub fn signal_deliver(ctx: BtfTracePointContext) -> i32 {
    on_deliver::<Direct>(ctx.arg(0), ctx.arg(1), ctx.arg(2));
    0
}

#[btf_tracepoint(function = "sched_process_exit")]
pub fn sched_process_exit(ctx: BtfTracePointContext) -> i32 {
    let group_dead = if cfg!(exit_has_group_dead) != 0 {
        ctx.arg(1)
    } else {
        0
    };
    on_exit::<Direct>(ctx.arg(0), group_dead);
    0
}

#[btf_tracepoint(function = "mark_victim")]
pub fn mark_victim(ctx: BtfTracePointContext) -> i32 {
    on_oom::<Direct>(ctx.arg(0));
    0
}

#[btf_tracepoint(function = "sched_process_exec")]
pub fn sched_process_exec(ctx: BtfTracePointContext) -> i32 {
    on_exec::<Direct>(ctx.arg(0), ctx.arg(2));
    0
}

// ---- raw tracepoints (fallback; same arguments) ----

#[raw_tracepoint(tracepoint = "signal_generate")]
pub fn raw_signal_generate(ctx: RawTracePointContext) -> i32 {
    on_generate::<Probe>(ctx.arg(0), ctx.arg(1), ctx.arg(2), ctx.arg(3), ctx.arg(4));
    0
}

#[raw_tracepoint(tracepoint = "signal_deliver")]
pub fn raw_signal_deliver(ctx: RawTracePointContext) -> i32 {
    on_deliver::<Probe>(ctx.arg(0), ctx.arg(1), ctx.arg(2));
    0
}

#[raw_tracepoint(tracepoint = "sched_process_exit")]
pub fn raw_sched_process_exit(ctx: RawTracePointContext) -> i32 {
    let group_dead = if cfg!(exit_has_group_dead) != 0 {
        ctx.arg(1)
    } else {
        0
    };
    on_exit::<Probe>(ctx.arg(0), group_dead);
    0
}

#[raw_tracepoint(tracepoint = "mark_victim")]
pub fn raw_mark_victim(ctx: RawTracePointContext) -> i32 {
    on_oom::<Probe>(ctx.arg(0));
    0
}

#[raw_tracepoint(tracepoint = "sched_process_exec")]
pub fn raw_sched_process_exec(ctx: RawTracePointContext) -> i32 {
    on_exec::<Probe>(ctx.arg(0), ctx.arg(2));
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

#[btf_tracepoint(function = "sched_process_exec")]
pub fn floor_sched_process_exec(_ctx: BtfTracePointContext) -> i32 {
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
