//! The kernel fields the programs read, declared once.
//!
//! Each entry of the table at the bottom names a field, the BTF path that leads to it, and how
//! many consecutive ids it takes. Everything else follows from the table: the ids in
//! [`field`], the [`Offsets`] array the raw-tracepoint programs read from `CONFIG`, the range
//! of ids the load-time patcher accepts ([`field::COUNT`]), the size checks, and the paths
//! userspace resolves in the running kernel's BTF ([`FIELDS`]), and one type per field in
//! [`f`] that says which struct it is loaded through and what it holds, so that a program
//! cannot load a field through a pointer to another struct ([`Ptr`]).
//!
//! # Paths
//!
//! `struct.member.member` is a member (looked up through anonymous members) of a named struct
//! or union; `->member` follows the pointer read so far to its pointee. The offset stored for
//! the field is that of its last segment, relative to the pointer it is loaded through: for
//! `task_struct.signal->flags`, the offset of `flags` in `signal_struct`. `[k]` indexes an
//! array with a constant; `[]` indexes it with the slot number of a field that takes several
//! ids (slot `i` is id `first + i`).

/// One entry of the field table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldDecl {
    /// The constant's name in [`field`].
    pub name: &'static str,
    /// The BTF path (see the module documentation).
    pub path: &'static str,
    /// Number of consecutive ids (slots) it takes; 1 for a plain field.
    pub slots: u8,
    /// Its first id.
    pub first: u8,
}

macro_rules! kernel_fields {
    ($($(#[$doc:meta])* $name:ident $([$slots:literal])? ($on:ident) $val:ty => $path:literal,)*) => {
        #[allow(non_camel_case_types, clippy::upper_case_acronyms)]
        #[repr(usize)]
        enum Entry { $($name,)* }

        const ENTRIES: usize = [$(stringify!($name)),*].len();

        /// The field table, in declaration order, with each field's first id.
        pub const FIELDS: [FieldDecl; ENTRIES] = {
            let mut decls = [$(FieldDecl {
                name: stringify!($name),
                path: $path,
                slots: 1 $(- 1 + $slots)?,
                first: 0,
            }),*];
            let mut i = 0;
            let mut next = 0u32;
            while i < ENTRIES {
                assert!(next + decls[i].slots as u32 <= 255, "too many kernel field ids");
                decls[i].first = next as u8;
                next += decls[i].slots as u32;
                i += 1;
            }
            decls
        };

        /// Ids of the kernel fields, one per slot of the table.
        ///
        /// The BTF-tracepoint programs read kernel memory with plain loads whose offset field
        /// holds `FIELD_MARKER + id`; userspace rewrites each with the field's offset in the
        /// running kernel before loading the object (or turns it into `dst = 0` where the
        /// kernel lacks the field). The raw-tracepoint programs read `CONFIG.off` at the id.
        pub mod field {
            $($(#[$doc])* pub const $name: u8 = super::FIELDS[super::Entry::$name as usize].first;)*
            /// Number of ids.
            pub const COUNT: u8 = {
                let last = super::FIELDS[super::ENTRIES - 1];
                last.first + last.slots
            };
        }

        /// One type per field (its first slot), saying which struct it is loaded through and
        /// what it holds: a program loads field `F` only through a [`Ptr`] to `F::On`, and a
        /// pointer field gives a [`Ptr`] to its pointee.
        #[allow(non_camel_case_types, clippy::upper_case_acronyms)]
        pub mod f {
            use super::kstruct::*;
            use super::{Field, Ptr};
            $($(#[$doc])* pub enum $name {}
            impl Field for $name {
                const ID: u8 = super::field::$name;
                type On = $on;
                type Value = $val;
            })*
        }
    };
}

/// The kernel structs the fields are loaded through: types only, never built.
#[allow(non_camel_case_types)]
pub mod kstruct {
    pub enum task_struct {}
    pub enum signal_struct {}
    pub enum sighand_struct {}
    pub enum css_set {}
    pub enum cgroup {}
    pub enum cgroup_root {}
    pub enum kernfs_node {}
    pub enum pid {}
    pub enum k_sigaction {}
    pub enum kernel_siginfo {}
    pub enum linux_binprm {}
}

/// A kernel pointer to a `T` of [`kstruct`] (an address; zero is NULL). A field loads only
/// through a pointer to its own struct:
///
/// ```
/// use tracer_common::{f, kstruct::task_struct, Field, Ptr};
/// fn ld<F: Field>(_: Ptr<F::On>) {}
/// ld::<f::TASK_PID>(Ptr::<task_struct>::at(0));
/// ```
///
/// ```compile_fail
/// use tracer_common::{f, kstruct::signal_struct, Field, Ptr};
/// fn ld<F: Field>(_: Ptr<F::On>) {}
/// ld::<f::TASK_PID>(Ptr::<signal_struct>::at(0));
/// ```
#[repr(transparent)]
pub struct Ptr<T> {
    addr: u64,
    pointee: core::marker::PhantomData<*const T>,
}

impl<T> Clone for Ptr<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Ptr<T> {}
impl<T> PartialEq for Ptr<T> {
    fn eq(&self, other: &Self) -> bool {
        self.addr == other.addr
    }
}

impl<T> Ptr<T> {
    /// The pointer at `addr`: where a tracepoint's prototype or a helper says it is a `T`.
    #[inline(always)]
    pub const fn at(addr: u64) -> Self {
        Self {
            addr,
            pointee: core::marker::PhantomData,
        }
    }

    #[inline(always)]
    pub const fn addr(self) -> u64 {
        self.addr
    }

    #[inline(always)]
    pub const fn is_null(self) -> bool {
        self.addr == 0
    }
}

/// What a field holds, as the 32 or 64 bits a load gives.
pub trait Value: Copy {
    /// 4 or 8.
    const BYTES: usize;
    fn from_raw(v: u64) -> Self;
}

impl Value for u32 {
    const BYTES: usize = 4;
    #[inline(always)]
    fn from_raw(v: u64) -> Self {
        v as u32
    }
}

impl Value for u64 {
    const BYTES: usize = 8;
    #[inline(always)]
    fn from_raw(v: u64) -> Self {
        v
    }
}

impl<T> Value for Ptr<T> {
    const BYTES: usize = 8;
    #[inline(always)]
    fn from_raw(v: u64) -> Self {
        Self::at(v)
    }
}

/// A kernel field: its id ([`field`]), the struct it is loaded through, what it holds.
pub trait Field {
    const ID: u8;
    type On;
    type Value: Value;
}

kernel_fields! {
    TASK_PID(task_struct) u32 => "task_struct.pid",
    TASK_TGID(task_struct) u32 => "task_struct.tgid",
    TASK_COMM(task_struct) u64 => "task_struct.comm",
    /// The second half of `comm` (bytes 8..16).
    TASK_COMM_HI(task_struct) u64 => "task_struct.comm[8]",
    TASK_REAL_PARENT(task_struct) Ptr<task_struct> => "task_struct.real_parent",
    TASK_GROUP_LEADER(task_struct) Ptr<task_struct> => "task_struct.group_leader",
    TASK_SIGNAL(task_struct) Ptr<signal_struct> => "task_struct.signal",
    TASK_SIGHAND(task_struct) Ptr<sighand_struct> => "task_struct.sighand",
    TASK_CGROUPS(task_struct) Ptr<css_set> => "task_struct.cgroups",
    TASK_THREAD_PID(task_struct) Ptr<pid> => "task_struct.thread_pid",
    TASK_EXIT_CODE(task_struct) u32 => "task_struct.exit_code",
    TASK_BLOCKED(task_struct) u64 => "task_struct.blocked",
    TASK_FLAGS(task_struct) u32 => "task_struct.flags",
    TASK_START_TIME(task_struct) u64 => "task_struct.start_time",
    SIGNAL_FLAGS(signal_struct) u32 => "task_struct.signal->flags",
    SIGNAL_LIVE(signal_struct) u32 => "task_struct.signal->live",
    SIGNAL_GROUP_EXIT_CODE(signal_struct) u32 => "task_struct.signal->group_exit_code",
    /// `k_sigaction.sa.sa_handler` (signal_deliver's `ka` argument).
    KA_HANDLER(k_sigaction) u64 => "k_sigaction.sa.sa_handler",
    /// `k_sigaction.sa.sa_flags`.
    KA_FLAGS(k_sigaction) u64 => "k_sigaction.sa.sa_flags",
    CSS_SET_DFL_CGRP(css_set) Ptr<cgroup> => "task_struct.cgroups->dfl_cgrp",
    CGROUP_KN(cgroup) Ptr<kernfs_node> => "task_struct.cgroups->dfl_cgrp->kn",
    KERNFS_NODE_ID(kernfs_node) u64 => "task_struct.cgroups->dfl_cgrp->kn->id",
    CGROUP_ROOT(cgroup) Ptr<cgroup_root> => "cgroup.root",
    /// 0 for the v2 (default) hierarchy.
    CGROUP_ROOT_HIERARCHY_ID(cgroup_root) u32 => "cgroup.root->hierarchy_id",
    PID_LEVEL(pid) u32 => "task_struct.thread_pid->level",
    SIGINFO_CODE(kernel_siginfo) u32 => "kernel_siginfo.si_code",
    /// `linux_binprm.filename` (sched_process_exec's `bprm` argument).
    BPRM_FILENAME(linux_binprm) u64 => "linux_binprm.filename",
    /// `sighand->action[n - 1].sa.sa_handler` for signal `n` is `SIGHAND_HANDLER + n - 1`.
    SIGHAND_HANDLER[64](sighand_struct) u64 => "task_struct.sighand->action[].sa.sa_handler",
    /// `pid->numbers[level].nr` is `PID_NR + level` (levels 0..32).
    PID_NR[32](pid) u32 => "task_struct.thread_pid->numbers[].nr",
}

/// Sentinel for an offset the running kernel's BTF did not provide.
pub const OFFSET_MISSING: u32 = u32::MAX;

/// Slots of [`Offsets`]: one per id, rounded up to an even number so that the struct (and
/// the `Config` that holds it) has no padding whatever the table's length.
const SLOTS: usize = (field::COUNT as usize + 1) & !1;

/// Offsets of the kernel fields, in bytes, by id ([`field`]), resolved from the running
/// kernel's BTF by userspace. [`OFFSET_MISSING`] marks a field this kernel does not have; the
/// programs then leave the dependent value zero.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Offsets {
    pub by_id: [u32; SLOTS],
}

impl Offsets {
    /// Every offset unknown.
    pub const MISSING: Self = Self {
        by_id: [OFFSET_MISSING; SLOTS],
    };

    /// Byte offset of field `id` from the pointer it is loaded through, or [`OFFSET_MISSING`]
    /// when this kernel lacks it or `id` is not a field.
    #[inline(always)]
    pub const fn field(&self, id: u8) -> u32 {
        if id < field::COUNT {
            self.by_id[id as usize]
        } else {
            OFFSET_MISSING
        }
    }
}

const _: () = assert!(core::mem::size_of::<Offsets>() == 4 * SLOTS);
