//! How the programs read kernel memory: one [`Mem`] implementation per program flavour.
//!
//! - [`Direct`] (BTF tracepoints): plain loads through BTF-typed pointers, which the verifier
//!   turns into fault-safe loads costing about as much as a normal memory access. Their
//!   offsets must be constants in the instructions, so each load is emitted with the offset
//!   `FIELD_MARKER + id` and userspace rewrites it before loading the object with the offset
//!   of field `id` in the running kernel (`tracer/src/patch.rs`). A field this kernel lacks
//!   becomes `dst = 0`.
//! - [`Probe`] (raw tracepoints, whose arguments are untyped): `bpf_probe_read_kernel` at the
//!   offsets in `CONFIG`, about 30 ns per read.
//!
//! Both read zero where the pointer is NULL or the field is missing. [`probe_ld`] reads
//! through `bpf_probe_read_kernel` in both flavours, for the arguments a kernel's verifier
//! will not let a `tp_btf` program load through.
use core::{
    arch::asm,
    ptr::{addr_of, read_volatile},
};

use aya_ebpf::helpers::{
    bpf_get_current_task, bpf_get_current_task_btf, bpf_probe_read_kernel,
    bpf_probe_read_kernel_buf,
};
use tracer_common::{
    f, field,
    kstruct::{pid, sighand_struct, task_struct},
    Field, Offsets, Ptr, Value, COMM_LEN, FIELD_MARKER, OFFSET_MISSING,
};

use crate::CONFIG;

/// The offsets in `CONFIG`, hidden from the optimiser (userspace rewrites them before load).
#[inline(always)]
pub fn offsets() -> &'static Offsets {
    let p = addr_of!(CONFIG.off);
    // SAFETY: a volatile read of a local pointer to a static; the static lives forever.
    unsafe { &*read_volatile(&p) }
}

/// Whether this kernel has field `id`.
#[inline(always)]
pub fn has(id: u8) -> bool {
    offsets().field(id) != OFFSET_MISSING
}

pub trait Mem {
    /// The current task.
    fn current_task() -> Ptr<task_struct>;
    /// Field `F` ([`f`]) of the struct at `base` (zero where `base` is NULL or the kernel
    /// lacks the field).
    fn ld<F: Field>(base: Ptr<F::On>) -> F::Value;

    /// `task->comm`.
    #[inline(always)]
    fn comm(task: Ptr<task_struct>, out: &mut [u8; COMM_LEN]) {
        let lo = Self::ld::<f::TASK_COMM>(task).to_ne_bytes();
        let hi = Self::ld::<f::TASK_COMM_HI>(task).to_ne_bytes();
        let mut i = 0;
        while i < 8 {
            out[i] = lo[i];
            out[i + 8] = hi[i];
            i += 1;
        }
    }

    /// Raw `sa_handler` of signal `sig` (1..=64) in a `sighand_struct`.
    fn handler(sighand: Ptr<sighand_struct>, sig: i32) -> u64;

    /// `pid->numbers[level].nr`.
    fn ns_nr(pid: Ptr<pid>, level: u32) -> u32;
}

/// Plain loads at patched offsets (BTF tracepoints).
pub struct Direct;

macro_rules! direct_load {
    ($width:literal, $base:expr, $id:expr) => {{
        let v: u64;
        // SAFETY: a load the verifier checks against the kernel's BTF and makes fault-safe;
        // it reads memory only.
        unsafe {
            asm!(
                concat!("{v} = *(", $width, " *)({b} + {o})"),
                v = lateout(reg) v,
                b = in(reg) $base,
                o = const FIELD_MARKER as i32 + $id as i32,
                options(nostack, readonly, preserves_flags),
            )
        };
        v
    }};
}

/// `match` over every value in a list, calling `$f::<{$base + value - $first}>($arg)`:
/// turns a runtime index into one of a set of constant-offset loads.
macro_rules! by_index {
    ($index:expr, $f:ident, $arg:expr, $base:expr, $first:literal; $($n:literal)*) => {
        match $index {
            $($n => $f::<{ $base + $n - $first }>($arg),)*
            _ => 0,
        }
    };
}

impl Mem for Direct {
    #[inline(always)]
    fn current_task() -> Ptr<task_struct> {
        // SAFETY: helper without arguments.
        Ptr::at(unsafe { bpf_get_current_task_btf() as u64 })
    }

    #[inline(always)]
    fn ld<F: Field>(base: Ptr<F::On>) -> F::Value {
        // One of the two, chosen at compile time by the field's width.
        let v = if F::Value::BYTES == 4 {
            direct_load!("u32", base.addr(), F::ID)
        } else {
            direct_load!("u64", base.addr(), F::ID)
        };
        F::Value::from_raw(v)
    }

    #[inline(always)]
    fn handler(sighand: Ptr<sighand_struct>, sig: i32) -> u64 {
        let sighand = sighand.addr();
        by_index!(sig, ld64_direct, sighand, field::SIGHAND_HANDLER, 1;
            1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31 32
            33 34 35 36 37 38 39 40 41 42 43 44 45 46 47 48 49 50 51 52 53 54 55 56 57 58 59 60 61
            62 63 64)
    }

    #[inline(always)]
    fn ns_nr(pid: Ptr<pid>, level: u32) -> u32 {
        let pid = pid.addr();
        by_index!(level, ld32_direct, pid, field::PID_NR, 0;
            0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30
            31) as u32
    }
}

/// Slot `F` of a field that takes several ids (an array indexed by a runtime value).
#[inline(always)]
fn ld64_direct<const F: u8>(base: u64) -> u64 {
    direct_load!("u64", base, F)
}

#[inline(always)]
fn ld32_direct<const F: u8>(base: u64) -> u64 {
    direct_load!("u32", base, F)
}

/// `bpf_probe_read_kernel` at the offsets in `CONFIG` (raw tracepoints).
pub struct Probe;

/// Reads a `T` at `base + off`, or zero when the offset is unknown or the read faults.
#[inline(always)]
fn rd<T: Default>(base: u64, off: u32) -> T {
    if base == 0 || off == OFFSET_MISSING {
        return T::default();
    }
    // SAFETY: the helper checks the address and faults safely.
    unsafe { bpf_probe_read_kernel((base + off as u64) as *const T).unwrap_or_default() }
}

/// Field `F` at `base` through `bpf_probe_read_kernel`, in every program flavour: for
/// pointers the verifier does not let a program load through (a `tp_btf` argument it types
/// as a scalar).
#[inline(always)]
pub fn probe_ld<F: Field>(base: Ptr<F::On>) -> F::Value {
    let off = offsets().field(F::ID);
    F::Value::from_raw(if F::Value::BYTES == 4 {
        rd::<u32>(base.addr(), off) as u64
    } else {
        rd::<u64>(base.addr(), off)
    })
}

impl Mem for Probe {
    #[inline(always)]
    fn current_task() -> Ptr<task_struct> {
        // SAFETY: helper without arguments.
        Ptr::at(unsafe { bpf_get_current_task() })
    }

    #[inline(always)]
    fn ld<F: Field>(base: Ptr<F::On>) -> F::Value {
        probe_ld::<F>(base)
    }

    #[inline(always)]
    fn comm(task: Ptr<task_struct>, out: &mut [u8; COMM_LEN]) {
        let off = offsets().field(field::TASK_COMM);
        let task = task.addr();
        if task != 0 && off != OFFSET_MISSING {
            // SAFETY: the helper checks the address and faults safely (zeroing on a fault).
            let _ = unsafe { bpf_probe_read_kernel_buf((task + off as u64) as *const u8, out) };
        } else {
            *out = [0; COMM_LEN];
        }
    }

    #[inline(always)]
    fn handler(sighand: Ptr<sighand_struct>, sig: i32) -> u64 {
        let slot = ((sig - 1) as u32 & 63) as u8;
        rd::<u64>(
            sighand.addr(),
            offsets().field(field::SIGHAND_HANDLER + slot),
        )
    }

    #[inline(always)]
    fn ns_nr(pid: Ptr<pid>, level: u32) -> u32 {
        let slot = (level & 31) as u8;
        rd::<u32>(pid.addr(), offsets().field(field::PID_NR + slot))
    }
}
