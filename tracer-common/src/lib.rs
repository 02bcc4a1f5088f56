//! Wire types shared by the kernel programs and the userspace agent.
//!
//! Everything here is `#[repr(C)]`, made of fixed-width integers and byte arrays only, with
//! explicit padding and compile-time size checks, so that both sides agree on every byte.
//! The kernel side writes these records into the `EVENTS` ring buffer; userspace decodes them
//! (with length and kind checks, never by transmuting unchecked bytes).
#![no_std]

mod fields;

pub use fields::{
    f, field, kstruct, Field, FieldDecl, Offsets, Ptr, Value, FIELDS, OFFSET_MISSING,
};

/// Length of `task_struct.comm` including the NUL terminator.
pub const COMM_LEN: usize = 16;

/// Number of signals tracked per-signal (1..=64; index 0 unused).
pub const NSIG: usize = 65;

/// Event kinds (first field of every record).
pub mod kind {
    pub const SIGNAL_GENERATE: u32 = 1;
    pub const SIGNAL_DELIVER: u32 = 2;
    pub const PROCESS_EXIT: u32 = 3;
    pub const OOM_VICTIM: u32 = 4;
    pub const PROCESS_EXEC: u32 = 5;
    pub const CGROUP_MKDIR: u32 = 6;

    /// The size of a record of kind `kind`, `None` for a kind the kernel side never writes.
    pub const fn size(kind: u32) -> Option<usize> {
        Some(match kind {
            SIGNAL_GENERATE => size_of::<super::SignalGenerate>(),
            SIGNAL_DELIVER => size_of::<super::SignalDeliver>(),
            PROCESS_EXIT => size_of::<super::ProcessExit>(),
            OOM_VICTIM => size_of::<super::OomVictim>(),
            PROCESS_EXEC => size_of::<super::ProcessExec>(),
            CGROUP_MKDIR => size_of::<super::CgroupMkdir>(),
            _ => return None,
        })
    }
}

/// `si_code` of a signal the kernel itself sent (OOM killer, PID-namespace teardown, the
/// SIGKILL fan-out of a group exit).
pub const SI_KERNEL: i32 = 0x80;

/// Bits of [`TaskInfo::flags`].
pub mod task_flags {
    /// The task's thread group is the init of a PID namespace (`SIGNAL_UNKILLABLE`).
    pub const NS_INIT: u32 = 1 << 0;
    /// The task's thread group is already exiting (`SIGNAL_GROUP_EXIT`).
    pub const GROUP_EXITING: u32 = 1 << 1;
    /// The task is a kernel thread (`PF_KTHREAD`).
    pub const KTHREAD: u32 = 1 << 2;
}

/// One kernel hook: its tracepoint, its three programs (the entry points of
/// `tracer-ebpf/src/probes/`), and what a kernel without it loses (`None`: required).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hook {
    pub tracepoint: &'static str,
    /// The BTF tracepoint program (the path from Linux 5.11).
    pub btf: &'static str,
    /// The raw tracepoint program (the path before 5.11, and the fallback).
    pub raw: &'static str,
    /// The empty program of the overhead benchmark's floor.
    pub floor: &'static str,
    pub without: Option<&'static str>,
}

/// Every hook, in the order they are attached.
pub const HOOKS: [Hook; 6] = [
    Hook {
        tracepoint: "signal_generate",
        btf: "signal_generate",
        raw: "raw_signal_generate",
        floor: "floor_signal_generate",
        without: None,
    },
    Hook {
        tracepoint: "signal_deliver",
        btf: "signal_deliver",
        raw: "raw_signal_deliver",
        floor: "floor_signal_deliver",
        without: None,
    },
    Hook {
        tracepoint: "sched_process_exit",
        btf: "sched_process_exit",
        raw: "raw_sched_process_exit",
        floor: "floor_sched_process_exit",
        without: None,
    },
    Hook {
        tracepoint: "mark_victim",
        btf: "mark_victim",
        raw: "raw_mark_victim",
        floor: "floor_mark_victim",
        without: Some("OOM kills will not be reported"),
    },
    Hook {
        tracepoint: "sched_process_exec",
        btf: "sched_process_exec",
        raw: "raw_sched_process_exec",
        floor: "floor_sched_process_exec",
        without: Some("runtime execs (preStop hooks) will not be reported"),
    },
    Hook {
        tracepoint: "cgroup_mkdir",
        btf: "cgroup_mkdir",
        raw: "raw_cgroup_mkdir",
        floor: "floor_cgroup_mkdir",
        without: Some(
            "containers gone before the agent reads their first event (under ~0.5 s) may not \
             be attributed",
        ),
    },
];

/// Indexes of the per-CPU `STATS` counters.
pub mod stat {
    /// Ring-buffer reservations that failed (events lost), all kinds.
    pub const LOST: u32 = 0;
    /// Events emitted (successfully reserved and submitted).
    pub const EMITTED: u32 = 1;
    /// Signals whose number is outside the emit mask (only counted per signal).
    pub const COUNTED_ONLY: u32 = 2;
    /// Events dropped because they concern the agent itself.
    pub const SELF_FILTERED: u32 = 3;
    /// Thread exits folded because they were not the last thread of their group.
    pub const THREAD_EXITS_FOLDED: u32 = 4;
    /// Execs that are not a runtime's exec into a container (only counted).
    pub const EXECS_COUNTED: u32 = 5;
    /// Exits (of threads too) that nothing watches, only counted: the targets of emitted
    /// signals, runtime execs and OOM victims are watched, and their exits, their direct
    /// children's and those of processes a signal killed are emitted.
    pub const EXITS_COUNTED: u32 = 6;
    /// Watch requests for a PID past the kernel's table (sized from `kernel.pid_max` at
    /// start-up; such a PID's exit is always emitted).
    pub const WATCH_FULL: u32 = 7;
    /// Not a counter: bytes this CPU wrote to the ring since it last woke the reader.
    pub const WAKE_BYTES: u32 = 8;
    /// Number of slots in the `STATS` map.
    pub const COUNT: u32 = 9;
}

/// Disposition codes stored in [`SignalGenerate::disp`] and derived in userspace.
pub mod disp {
    pub const DEFAULT: u8 = 0;
    pub const IGNORE: u8 = 1;
    pub const HANDLER: u8 = 2;
    /// The kernel side could not read it.
    pub const UNKNOWN: u8 = 0xff;
}

/// Order of the dispositions in [`SignalGenerate::disp`]: the generated signal itself, then
/// the four common stop signals.
pub const DISP_SIGNALS: [i32; 5] = [0, 15, 2, 3, 1];

/// Common first 16 bytes of every record.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "user", derive(bytemuck::Pod, bytemuck::Zeroable))]
pub struct Header {
    pub kind: u32,
    pub cpu: u32,
    /// `CLOCK_MONOTONIC` nanoseconds (`bpf_ktime_get_ns`).
    pub ts_ns: u64,
}

/// What the kernel knows about one task at the instant of an event.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "user", derive(bytemuck::Pod, bytemuck::Zeroable))]
pub struct TaskInfo {
    /// Host (initial namespace) thread-group id.
    pub tgid: u32,
    /// Host thread id.
    pub tid: u32,
    /// Host thread-group id of the real parent.
    pub ppid: u32,
    /// PID of the thread group leader inside its own (innermost) PID namespace.
    pub ns_pid: u32,
    /// cgroup v2 id (`cgroups->dfl_cgrp->kn->id`), the cgroup directory's inode number.
    pub cgroup_id: u64,
    pub comm: [u8; COMM_LEN],
    /// Filled for the current task (sender, receiver); empty for targets and exiting tasks.
    pub parent_comm: [u8; COMM_LEN],
    /// [`task_flags`] bits.
    pub flags: u32,
    pub _pad: u32,
    /// `group_leader->start_time` (monotonic ns): with `tgid`, identifies a process across
    /// PID reuse.
    pub start_ns: u64,
}

/// `signal:signal_generate`; `current` is the sender.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "user", derive(bytemuck::Pod, bytemuck::Zeroable))]
pub struct SignalGenerate {
    pub header: Header,
    pub sig: i32,
    pub code: i32,
    pub group: i32,
    /// `TRACE_SIGNAL_*`: 0 delivered, 1 ignored, 2 already pending, 3 overflow, 4 lose info.
    pub result: i32,
    pub sender: TaskInfo,
    pub target: TaskInfo,
    /// The target's dispositions ([`disp`] codes) in [`DISP_SIGNALS`] order.
    pub disp: [u8; 8],
    /// First word of the target thread's blocked mask (bit `n-1` for signal `n`).
    pub target_blocked: u64,
}

/// `signal:signal_deliver`; `current` is the receiver.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "user", derive(bytemuck::Pod, bytemuck::Zeroable))]
pub struct SignalDeliver {
    pub header: Header,
    pub sig: i32,
    pub code: i32,
    pub receiver: TaskInfo,
    /// Raw `sa_handler`: 0 = SIG_DFL, 1 = SIG_IGN, anything else a handler address.
    pub sa_handler: u64,
    pub sa_flags: u64,
    /// `signal->group_exit_code` at delivery: tells a fatal default-action signal that the
    /// kernel turned into a group-wide SIGKILL apart from a real SIGKILL.
    pub group_exit_code: i32,
    pub _pad: u32,
}

/// `sched:sched_process_exit` for the last thread of a thread group.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "user", derive(bytemuck::Pod, bytemuck::Zeroable))]
pub struct ProcessExit {
    pub header: Header,
    pub task: TaskInfo,
    /// `task_struct.exit_code`: `(code >> 8) & 0xff` status, `code & 0x7f` signal, `0x80` core.
    pub exit_code: i32,
    /// 1 when the thread group is now dead.
    pub group_dead: u32,
}

/// `oom:mark_victim`; `current` is the task whose allocation invoked the OOM killer.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "user", derive(bytemuck::Pod, bytemuck::Zeroable))]
pub struct OomVictim {
    pub header: Header,
    pub victim: TaskInfo,
    pub invoker_tgid: u32,
    pub _pad: u32,
}

/// Load offsets `FIELD_MARKER + id` stand for field `id` (see [`field`]). Far above any real
/// offset the programs use (stack, context and map offsets are small).
/// Bytes of an executable path kept (longer paths are cut, NUL-terminated).
pub const EXEC_PATH_LEN: usize = 128;

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "user", derive(bytemuck::Pod, bytemuck::Zeroable))]
pub struct ProcessExec {
    pub header: Header,
    /// The task after the exec (its new comm).
    pub task: TaskInfo,
    /// cgroup v2 id of its real parent (outside the container for a runtime's exec).
    pub parent_cgroup_id: u64,
    /// The executable as passed to execve (`bprm->filename`), NUL-terminated; never argv.
    pub path: [u8; EXEC_PATH_LEN],
}

impl Default for ProcessExec {
    fn default() -> Self {
        Self {
            header: Header::default(),
            task: TaskInfo::default(),
            parent_cgroup_id: 0,
            path: [0; EXEC_PATH_LEN],
        }
    }
}

/// Bytes of a cgroup path kept (a longer path is not sent: userspace then finds the cgroup
/// by its id, as before the hook).
pub const CGROUP_PATH_LEN: usize = 512;

/// `cgroup:cgroup_mkdir` in the cgroup v2 hierarchy: a cgroup's id and path at its creation,
/// so that a container that is gone before the agent looks (a crash loop, a failed init)
/// is still attributed.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "user", derive(bytemuck::Pod, bytemuck::Zeroable))]
pub struct CgroupMkdir {
    pub header: Header,
    /// The cgroup's id (`kn->id`), as in [`TaskInfo::cgroup_id`].
    pub cgroup_id: u64,
    /// Its path from the hierarchy's root (`/kubepods.slice/…`), NUL-terminated.
    pub path: [u8; CGROUP_PATH_LEN],
}

impl Default for CgroupMkdir {
    fn default() -> Self {
        Self {
            header: Header::default(),
            cgroup_id: 0,
            path: [0; CGROUP_PATH_LEN],
        }
    }
}

pub const FIELD_MARKER: i16 = 0x7e00;

/// Everything the programs are configured with, set once at load time.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// Signals to emit as events: bit `n-1` for signal `n`. Others are only counted.
    pub signal_mask: u64,
    /// Stop signals (TERM, INT, QUIT, HUP, KILL and configured extras), same bits. A signal
    /// that is none of them, not sent by a container runtime, and meets a handler or SIG_IGN
    /// cannot affect a shutdown: it is only counted, not emitted.
    pub stop_mask: u64,
    /// The agent's own thread-group id; its events are dropped.
    pub agent_tgid: u32,
    /// 1 when `sched_process_exit` carries `group_dead` as its second argument.
    pub exit_has_group_dead: u32,
    /// Keeps `runtime_comms` 8-byte aligned without implicit padding.
    pub _pad: u32,
    /// Wake the reader only once a CPU has written this many bytes to the ring since its
    /// last wake-up (the reader also drains on a timer): one wake-up per event would
    /// dominate the cost of busy signal paths.
    pub wakeup_bytes: u32,
    /// Process names (comm, NUL-padded, as two native-endian words) of container runtimes:
    /// the signals they send are emitted whatever their number. Unused entries are zero.
    pub runtime_comms: [[u64; 2]; MAX_RUNTIME_COMMS],
    pub off: Offsets,
}

/// Runtime process names the kernel side compares a sender with.
pub const MAX_RUNTIME_COMMS: usize = 16;

impl Config {
    pub const DEFAULT: Self = Self {
        signal_mask: 0,
        stop_mask: 0,
        agent_tgid: 0,
        exit_has_group_dead: 0,
        _pad: 0,
        wakeup_bytes: 0,
        runtime_comms: [[0; 2]; MAX_RUNTIME_COMMS],
        off: Offsets::MISSING,
    };
}

/// Bit `n - 1` for signal `n` in 1..=64 (the kernel's sigset and every mask of sigtrace), else 0.
#[inline(always)]
pub const fn signal_bit(sig: i32) -> u64 {
    if sig >= 1 && sig <= 64 {
        1u64 << (sig - 1)
    } else {
        0
    }
}

/// The default emit mask: every signal whose default action terminates a process (including
/// SIGKILL and the real-time signals). SIGCHLD, SIGCONT, SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU,
/// SIGURG and SIGWINCH are only counted.
pub const DEFAULT_SIGNAL_MASK: u64 = {
    let mut mask = 0u64;
    let mut sig = 1;
    while sig <= 64 {
        let counted_only = matches!(sig, 17 | 18 | 19 | 20 | 21 | 22 | 23 | 28 | 32 | 33);
        if !counted_only {
            mask |= signal_bit(sig);
        }
        sig += 1;
    }
    mask
};

const _: () = {
    assert!(core::mem::size_of::<Header>() == 16);
    assert!(core::mem::size_of::<TaskInfo>() == 72);
    assert!(core::mem::size_of::<SignalGenerate>() == 192);
    assert!(core::mem::size_of::<SignalDeliver>() == 120);
    assert!(core::mem::size_of::<ProcessExit>() == 96);
    assert!(core::mem::size_of::<OomVictim>() == 96);
    assert!(core::mem::size_of::<ProcessExec>() == 96 + EXEC_PATH_LEN);
    assert!(core::mem::size_of::<CgroupMkdir>() == 24 + CGROUP_PATH_LEN);
    assert!(
        core::mem::size_of::<Config>()
            == 32 + 16 * MAX_RUNTIME_COMMS + core::mem::size_of::<Offsets>()
    );
};

#[cfg(feature = "user")]
mod user {
    // SAFETY: plain-old-data structs of integers and byte arrays, no padding holes left implicit.
    unsafe impl aya::Pod for super::Config {}
    unsafe impl aya::Pod for super::Offsets {}
}
