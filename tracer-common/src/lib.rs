//! Wire types shared by the kernel programs and the userspace agent.
//!
//! Everything here is `#[repr(C)]`, made of fixed-width integers and byte arrays only, with
//! explicit padding and compile-time size checks, so that both sides agree on every byte.
//! The kernel side writes these records into the `EVENTS` ring buffer; userspace decodes them
//! (with length and kind checks, never by transmuting unchecked bytes).
#![no_std]

/// Length of `task_struct.comm` including the NUL terminator.
pub const COMM_LEN: usize = 16;

/// Number of signals tracked per-signal (1..=64; index 0 unused).
pub const NSIG: usize = 65;

/// Sentinel for an offset the running kernel's BTF did not provide.
pub const OFFSET_MISSING: u32 = u32::MAX;

/// Event kinds (first field of every record).
pub mod kind {
    pub const SIGNAL_GENERATE: u32 = 1;
    pub const SIGNAL_DELIVER: u32 = 2;
    pub const PROCESS_EXIT: u32 = 3;
    pub const OOM_VICTIM: u32 = 4;
}

/// Bits of [`TaskInfo::flags`].
pub mod task_flags {
    /// The task's thread group is the init of a PID namespace (`SIGNAL_UNKILLABLE`).
    pub const NS_INIT: u32 = 1 << 0;
    /// The task's thread group is already exiting (`SIGNAL_GROUP_EXIT`).
    pub const GROUP_EXITING: u32 = 1 << 1;
    /// The task is a kernel thread (`PF_KTHREAD`).
    pub const KTHREAD: u32 = 1 << 2;
}

/// Indexes of the per-CPU `STATS` counters.
pub mod stat {
    /// Ring-buffer reservations that failed (events lost), all kinds.
    pub const LOST: u32 = 0;
    /// Lost events by kind start at `LOST_BY_KIND + kind`.
    pub const LOST_BY_KIND: u32 = 1;
    /// Events emitted (successfully reserved and submitted).
    pub const EMITTED: u32 = 8;
    /// Signals whose number is outside the emit mask (only counted per signal).
    pub const COUNTED_ONLY: u32 = 9;
    /// Events dropped because they concern the agent itself.
    pub const SELF_FILTERED: u32 = 10;
    /// Thread exits folded because they were not the last thread of their group.
    pub const THREAD_EXITS_FOLDED: u32 = 11;
    /// Number of slots in the `STATS` map.
    pub const COUNT: u32 = 16;
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
pub struct Header {
    pub kind: u32,
    pub cpu: u32,
    /// `CLOCK_MONOTONIC` nanoseconds (`bpf_ktime_get_ns`).
    pub ts_ns: u64,
}

/// What the kernel knows about one task at the instant of an event.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
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
pub struct OomVictim {
    pub header: Header,
    pub victim: TaskInfo,
    pub invoker_tgid: u32,
    pub _pad: u32,
}

/// Offsets into kernel structures, in bytes, resolved from the running kernel's BTF by
/// userspace and handed to the programs as a global. [`OFFSET_MISSING`] marks a field this
/// kernel does not have; the programs then leave the dependent value zero.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Offsets {
    pub task_pid: u32,
    pub task_tgid: u32,
    pub task_comm: u32,
    pub task_real_parent: u32,
    pub task_group_leader: u32,
    pub task_signal: u32,
    pub task_sighand: u32,
    pub task_cgroups: u32,
    pub task_thread_pid: u32,
    pub task_exit_code: u32,
    pub task_blocked: u32,
    pub task_flags: u32,
    pub task_start_time: u32,
    pub signal_flags: u32,
    pub signal_live: u32,
    pub signal_group_exit_code: u32,
    pub sighand_action: u32,
    /// `sizeof(struct k_sigaction)`.
    pub k_sigaction_size: u32,
    /// Offset of `sa.sa_handler` inside `struct k_sigaction`.
    pub k_sigaction_handler: u32,
    /// Offset of `sa.sa_flags` inside `struct k_sigaction`.
    pub k_sigaction_flags: u32,
    pub css_set_dfl_cgrp: u32,
    pub cgroup_kn: u32,
    pub kernfs_node_id: u32,
    pub pid_level: u32,
    pub pid_numbers: u32,
    /// `sizeof(struct upid)`.
    pub upid_size: u32,
    pub upid_nr: u32,
    pub siginfo_code: u32,
}

impl Offsets {
    /// Every offset unknown.
    pub const MISSING: Self = Self {
        task_pid: OFFSET_MISSING,
        task_tgid: OFFSET_MISSING,
        task_comm: OFFSET_MISSING,
        task_real_parent: OFFSET_MISSING,
        task_group_leader: OFFSET_MISSING,
        task_signal: OFFSET_MISSING,
        task_sighand: OFFSET_MISSING,
        task_cgroups: OFFSET_MISSING,
        task_thread_pid: OFFSET_MISSING,
        task_exit_code: OFFSET_MISSING,
        task_blocked: OFFSET_MISSING,
        task_flags: OFFSET_MISSING,
        task_start_time: OFFSET_MISSING,
        signal_flags: OFFSET_MISSING,
        signal_live: OFFSET_MISSING,
        signal_group_exit_code: OFFSET_MISSING,
        sighand_action: OFFSET_MISSING,
        k_sigaction_size: OFFSET_MISSING,
        k_sigaction_handler: OFFSET_MISSING,
        k_sigaction_flags: OFFSET_MISSING,
        css_set_dfl_cgrp: OFFSET_MISSING,
        cgroup_kn: OFFSET_MISSING,
        kernfs_node_id: OFFSET_MISSING,
        pid_level: OFFSET_MISSING,
        pid_numbers: OFFSET_MISSING,
        upid_size: OFFSET_MISSING,
        upid_nr: OFFSET_MISSING,
        siginfo_code: OFFSET_MISSING,
    };
}

/// Ids of the kernel fields the BTF-tracepoint programs load directly.
///
/// Those programs read kernel memory with plain loads, whose offsets must be constants in the
/// instructions; they are compiled with `FIELD_MARKER + id` as the offset, and userspace
/// rewrites every such load before loading the object, with the offset
/// [`Offsets::field`] resolves from the running kernel's BTF (or turns it into `dst = 0`
/// when this kernel lacks the field). The raw-tracepoint programs use the same ids with
/// `bpf_probe_read_kernel` and the offsets in `CONFIG`.
pub mod field {
    pub const TASK_PID: u8 = 0;
    pub const TASK_TGID: u8 = 1;
    pub const TASK_COMM: u8 = 2;
    /// The second half of `comm` (bytes 8..16).
    pub const TASK_COMM_HI: u8 = 3;
    pub const TASK_REAL_PARENT: u8 = 4;
    pub const TASK_GROUP_LEADER: u8 = 5;
    pub const TASK_SIGNAL: u8 = 6;
    pub const TASK_SIGHAND: u8 = 7;
    pub const TASK_CGROUPS: u8 = 8;
    pub const TASK_THREAD_PID: u8 = 9;
    pub const TASK_EXIT_CODE: u8 = 10;
    pub const TASK_BLOCKED: u8 = 11;
    pub const TASK_FLAGS: u8 = 12;
    pub const TASK_START_TIME: u8 = 13;
    pub const SIGNAL_FLAGS: u8 = 14;
    pub const SIGNAL_LIVE: u8 = 15;
    pub const SIGNAL_GROUP_EXIT_CODE: u8 = 16;
    /// `k_sigaction.sa.sa_handler`.
    pub const KA_HANDLER: u8 = 17;
    /// `k_sigaction.sa.sa_flags`.
    pub const KA_FLAGS: u8 = 18;
    pub const CSS_SET_DFL_CGRP: u8 = 19;
    pub const CGROUP_KN: u8 = 20;
    pub const KERNFS_NODE_ID: u8 = 21;
    pub const PID_LEVEL: u8 = 22;
    pub const SIGINFO_CODE: u8 = 23;
    /// `sighand_struct.action[n - 1].sa.sa_handler` for signal `n` is `SIGHAND_HANDLER + n - 1`.
    pub const SIGHAND_HANDLER: u8 = 64;
    /// `pid.numbers[level].nr` is `PID_NR + level` (levels 0..32).
    pub const PID_NR: u8 = 128;
    /// Number of ids.
    pub const COUNT: u8 = 160;
}

/// Load offsets `FIELD_MARKER + id` stand for field `id` (see [`field`]). Far above any real
/// offset the programs use (stack, context and map offsets are small).
pub const FIELD_MARKER: i16 = 0x7e00;

impl Offsets {
    /// Byte offset of field `id` ([`field`]) from the pointer it is loaded through, or
    /// [`OFFSET_MISSING`] when this kernel lacks it or `id` is not a field.
    pub const fn field(&self, id: u8) -> u32 {
        const fn add(a: u32, b: u32) -> u32 {
            if a == OFFSET_MISSING || b == OFFSET_MISSING {
                OFFSET_MISSING
            } else {
                a.wrapping_add(b)
            }
        }
        const fn mul(a: u32, n: u32) -> u32 {
            if a == OFFSET_MISSING {
                OFFSET_MISSING
            } else {
                a.wrapping_mul(n)
            }
        }
        match id {
            field::TASK_PID => self.task_pid,
            field::TASK_TGID => self.task_tgid,
            field::TASK_COMM => self.task_comm,
            field::TASK_COMM_HI => add(self.task_comm, 8),
            field::TASK_REAL_PARENT => self.task_real_parent,
            field::TASK_GROUP_LEADER => self.task_group_leader,
            field::TASK_SIGNAL => self.task_signal,
            field::TASK_SIGHAND => self.task_sighand,
            field::TASK_CGROUPS => self.task_cgroups,
            field::TASK_THREAD_PID => self.task_thread_pid,
            field::TASK_EXIT_CODE => self.task_exit_code,
            field::TASK_BLOCKED => self.task_blocked,
            field::TASK_FLAGS => self.task_flags,
            field::TASK_START_TIME => self.task_start_time,
            field::SIGNAL_FLAGS => self.signal_flags,
            field::SIGNAL_LIVE => self.signal_live,
            field::SIGNAL_GROUP_EXIT_CODE => self.signal_group_exit_code,
            field::KA_HANDLER => self.k_sigaction_handler,
            field::KA_FLAGS => self.k_sigaction_flags,
            field::CSS_SET_DFL_CGRP => self.css_set_dfl_cgrp,
            field::CGROUP_KN => self.cgroup_kn,
            field::KERNFS_NODE_ID => self.kernfs_node_id,
            field::PID_LEVEL => self.pid_level,
            field::SIGINFO_CODE => self.siginfo_code,
            64..=127 => add(
                add(
                    self.sighand_action,
                    mul(self.k_sigaction_size, (id - field::SIGHAND_HANDLER) as u32),
                ),
                self.k_sigaction_handler,
            ),
            128..=159 => add(
                add(
                    self.pid_numbers,
                    mul(self.upid_size, (id - field::PID_NR) as u32),
                ),
                self.upid_nr,
            ),
            _ => OFFSET_MISSING,
        }
    }
}

/// Everything the programs are configured with, set once at load time.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// Signals to emit as events: bit `n-1` for signal `n`. Others are only counted.
    pub signal_mask: u64,
    /// The agent's own thread-group id; its events are dropped.
    pub agent_tgid: u32,
    /// 1 when `sched_process_exit` carries `group_dead` as its second argument.
    pub exit_has_group_dead: u32,
    /// 1 to emit the exit of every thread rather than only the last of each group.
    pub emit_thread_exits: u32,
    /// Wake the reader only once this many bytes wait in the ring buffer (it also drains on
    /// a short timer): one wake-up per event would dominate the cost of busy signal paths.
    pub wakeup_bytes: u32,
    pub off: Offsets,
}

impl Config {
    pub const DEFAULT: Self = Self {
        signal_mask: 0,
        agent_tgid: 0,
        exit_has_group_dead: 0,
        emit_thread_exits: 0,
        wakeup_bytes: 0,
        off: Offsets::MISSING,
    };
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
            mask |= 1 << (sig - 1);
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
    assert!(core::mem::size_of::<Offsets>() == 28 * 4);
    assert!(core::mem::size_of::<Config>() == 24 + 28 * 4);
};

#[cfg(feature = "user")]
mod user {
    // SAFETY: plain-old-data structs of integers and byte arrays, no padding holes left implicit.
    unsafe impl aya::Pod for super::Config {}
    unsafe impl aya::Pod for super::Offsets {}
}
