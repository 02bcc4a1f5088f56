//! Kernel programs of sigtrace: thin hooks on `signal_generate`, `signal_deliver`,
//! `sched_process_exit`, `sched_process_exec`, `oom:mark_victim` and `cgroup:cgroup_mkdir`.
//!
//! They only copy what the kernel knows at the instant of each event into the `EVENTS` ring
//! buffer (layouts in `tracer-common`); all interpretation happens in userspace. Struct offsets
//! come from the running kernel's BTF, resolved by userspace at start-up, so the same object
//! works across kernel versions: patched into the loads of the BTF tracepoint programs
//! (`tp_btf`, preferred) and passed in the `CONFIG` global to the raw tracepoint programs
//! (`raw_tp`, the path before 5.11 and the fallback after it); see `mem.rs`. The `floor_*`
//! programs are empty and only serve the overhead benchmark.
//!
//! This file owns the configuration, the maps and what every probe shares (counters, the ring
//! buffer's wake-ups, the watch table); `task.rs` reads tasks; `probes/` has one file per hook,
//! each with its handler and, through [`probe!`], its three entry points.
#![no_std]
#![no_main]
#![feature(asm_experimental_arch)]

mod mem;

use core::ptr::{read_volatile, write_volatile};

use aya_ebpf::{
    helpers::{bpf_get_smp_processor_id, bpf_ktime_get_ns},
    macros::map,
    maps::{ring_buf::RingBufEntry, Array, PerCpuArray, RingBuf},
    programs::{BtfTracePointContext, RawTracePointContext},
};
use tracer_common::{stat, Config, Header, NSIG};

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

const BPF_RB_NO_WAKEUP: u64 = 1;
const BPF_RB_FORCE_WAKEUP: u64 = 2;

/// A field of `CONFIG`, read so that the optimiser cannot assume its build-time value.
macro_rules! config {
    ($($field:ident).+) => {
        unsafe { core::ptr::read_volatile(core::ptr::addr_of!($crate::CONFIG.$($field).+)) }
    };
}

/// A hook's three entry points, by name: the BTF tracepoint program (plain loads, [`mem::Direct`]),
/// the raw tracepoint program ([`mem::Probe`]) and the floor's empty program, all on tracepoint
/// `$tp`, the first two calling `$handler::<Mem, Args>(&ctx)`. The names are those of
/// `tracer_common::HOOKS`.
macro_rules! probe {
    ($tp:tt, $handler:ident, $btf:ident, $raw:ident, $floor:ident) => {
        #[aya_ebpf::macros::btf_tracepoint(function = $tp)]
        pub fn $btf(ctx: aya_ebpf::programs::BtfTracePointContext) -> i32 {
            $handler::<$crate::mem::Direct, _>(&ctx);
            0
        }

        #[aya_ebpf::macros::raw_tracepoint(tracepoint = $tp)]
        pub fn $raw(ctx: aya_ebpf::programs::RawTracePointContext) -> i32 {
            $handler::<$crate::mem::Probe, _>(&ctx);
            0
        }

        #[aya_ebpf::macros::btf_tracepoint(function = $tp)]
        pub fn $floor(_ctx: aya_ebpf::programs::BtfTracePointContext) -> i32 {
            0
        }
    };
}
// Both macros are in scope (textually) in the modules declared below them.
mod probes;
mod task;

/// A tracepoint's arguments, the same way for both program flavours (each is one 64-bit slot).
pub trait Args {
    fn arg(&self, n: usize) -> u64;

    /// Argument `n` as a pointer to the struct the tracepoint's prototype says it is.
    #[inline(always)]
    fn ptr<T>(&self, n: usize) -> tracer_common::Ptr<T> {
        tracer_common::Ptr::at(self.arg(n))
    }
}

impl Args for BtfTracePointContext {
    #[inline(always)]
    fn arg(&self, n: usize) -> u64 {
        BtfTracePointContext::arg(self, n)
    }
}

impl Args for RawTracePointContext {
    #[inline(always)]
    fn arg(&self, n: usize) -> u64 {
        RawTracePointContext::arg(self, n)
    }
}

#[inline(always)]
pub fn bump(index: u32) {
    if let Some(p) = STATS.get_ptr_mut(index) {
        unsafe { *p += 1 };
    }
}

#[inline(always)]
pub fn lost() {
    bump(stat::LOST);
}

/// Submit flags for a record of `size` bytes: wake the reader once this CPU has written
/// `CONFIG.wakeup_bytes` since its last wake-up (the reader also drains on a timer). A per-CPU
/// count, not a query of the ring: that would read the consumer position the reader keeps
/// writing from another CPU.
#[inline(always)]
pub fn wakeup(size: usize) -> u64 {
    let Some(p) = STATS.get_ptr_mut(stat::WAKE_BYTES) else {
        return BPF_RB_FORCE_WAKEUP;
    };
    let threshold = config!(wakeup_bytes) as u64;
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

/// Reserves a `T` record in the ring buffer, or counts it lost.
#[inline(always)]
pub fn reserve<T>() -> Option<RingBufEntry<T>> {
    let entry = EVENTS.reserve::<T>(0);
    if entry.is_none() {
        lost();
    }
    entry
}

/// A reserved record, zeroed first (for records with fields a probe may leave unwritten).
#[inline(always)]
pub fn zeroed<T>(entry: &mut RingBufEntry<T>) -> &mut T {
    // SAFETY: the entry is exclusively ours until submit; zero bytes are a valid record.
    unsafe {
        let p = entry.as_mut_ptr();
        core::ptr::write_bytes(p, 0, 1);
        &mut *p
    }
}

/// Hands a record to the reader (waking it once this CPU has written its share) and counts
/// it emitted.
#[inline(always)]
pub fn submit<T>(entry: RingBufEntry<T>) {
    entry.submit(wakeup(size_of::<T>()));
    bump(stat::EMITTED);
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
pub fn watch(tgid: u32) {
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
pub fn unwatch(tgid: u32) {
    if let Some(slot) = watch_slot(tgid) {
        // SAFETY: as in `watch`.
        unsafe { write_volatile(slot, 0) };
    }
}

#[inline(always)]
pub fn watched(tgid: u32) -> bool {
    // SAFETY: a load from the map's value.
    watch_slot(tgid).is_none_or(|slot| unsafe { read_volatile(slot) } != 0)
}

#[inline(always)]
pub fn header(kind: u32) -> Header {
    Header {
        kind,
        cpu: unsafe { bpf_get_smp_processor_id() },
        ts_ns: unsafe { bpf_ktime_get_ns() },
    }
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
