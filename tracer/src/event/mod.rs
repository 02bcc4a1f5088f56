//! The decoded event model: what one kernel record means, in userspace types.
//!
//! Produced by [`crate::decode`] from ring-buffer (or journal) bytes and consumed by the
//! correlation engine and the sinks. Serialises to the JSON documented in the README
//! (`sigtrace run --raw`).
use std::fmt;

use serde::{Serialize, Serializer};

mod comm;
mod time;

pub(crate) use comm::nul_bits;
pub use comm::{Comm, COMM_LEN};
pub use time::{parse_rfc3339, parse_utc_stamp, rfc3339, utc_stamp, WallTime};

/// A signal number, shown by name ("SIGTERM", "SIGRTMIN+3").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Signal(pub i32);

impl Signal {
    /// Bit `n - 1` for signal `n` in 1..=64 (masks, the kernel's sigsets), else 0.
    pub const fn bit(self) -> u64 {
        tracer_common::signal_bit(self.0)
    }

    pub const HUP: Signal = Signal(1);
    pub const INT: Signal = Signal(2);
    pub const QUIT: Signal = Signal(3);
    pub const KILL: Signal = Signal(9);
    pub const USR1: Signal = Signal(10);
    pub const TERM: Signal = Signal(15);
    pub const CHLD: Signal = Signal(17);
    pub const URG: Signal = Signal(23);

    const NAMES: [&'static str; 32] = [
        "0",
        "SIGHUP",
        "SIGINT",
        "SIGQUIT",
        "SIGILL",
        "SIGTRAP",
        "SIGABRT",
        "SIGBUS",
        "SIGFPE",
        "SIGKILL",
        "SIGUSR1",
        "SIGSEGV",
        "SIGUSR2",
        "SIGPIPE",
        "SIGALRM",
        "SIGTERM",
        "SIGSTKFLT",
        "SIGCHLD",
        "SIGCONT",
        "SIGSTOP",
        "SIGTSTP",
        "SIGTTIN",
        "SIGTTOU",
        "SIGURG",
        "SIGXCPU",
        "SIGXFSZ",
        "SIGVTALRM",
        "SIGPROF",
        "SIGWINCH",
        "SIGIO",
        "SIGPWR",
        "SIGSYS",
    ];

    pub fn name(self) -> String {
        match self.0 {
            n @ 0..=31 => Self::NAMES[n as usize].to_string(),
            34 => "SIGRTMIN".to_string(),
            64 => "SIGRTMAX".to_string(),
            n @ 35..=63 => format!("SIGRTMIN+{}", n - 34),
            n => format!("SIG{n}"),
        }
    }

    /// Parses "SIGTERM", "TERM", "term" or "15".
    pub fn parse(s: &str) -> Option<Signal> {
        if let Ok(n) = s.parse::<i32>() {
            return (1..=64).contains(&n).then_some(Signal(n));
        }
        let upper = s.to_ascii_uppercase();
        let full = if upper.starts_with("SIG") {
            upper
        } else {
            format!("SIG{upper}")
        };
        (1..=64).map(Signal).find(|sig| sig.name() == full)
    }

    /// The signals a shutdown starts with by default (the engine adds `--stop-signal`s; ask
    /// it, `Engine::is_stop`, whether a signal is a stop signal).
    pub const DEFAULT_STOP: [Signal; 5] = [
        Signal::HUP,
        Signal::INT,
        Signal::QUIT,
        Signal::KILL,
        Signal::TERM,
    ];

    /// The stop signals as a mask (bit `n - 1` for signal `n`): the default ones and `extra`.
    pub fn stop_mask(extra: &[Signal]) -> u64 {
        Self::DEFAULT_STOP
            .iter()
            .chain(extra)
            .fold(0, |m, s| m | s.bit())
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl Serialize for Signal {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name())
    }
}

/// What `signal_generate` says the kernel did with the signal (its `result` field).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SigResult {
    Delivered,
    Ignored,
    AlreadyPending,
    Overflow,
    LoseInfo,
    Unknown,
}

impl SigResult {
    pub fn from_raw(v: i32) -> Self {
        match v {
            0 => Self::Delivered,
            1 => Self::Ignored,
            2 => Self::AlreadyPending,
            3 => Self::Overflow,
            4 => Self::LoseInfo,
            _ => Self::Unknown,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Ignored => "ignored",
            Self::AlreadyPending => "already_pending",
            Self::Overflow => "overflow",
            Self::LoseInfo => "lose_info",
            Self::Unknown => "unknown",
        }
    }
}

/// What the target had installed for a signal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Disposition {
    #[default]
    Default,
    Ignore,
    Handler,
    Unknown,
}

impl Disposition {
    pub fn from_code(code: u8) -> Self {
        match code {
            tracer_common::disp::DEFAULT => Self::Default,
            tracer_common::disp::IGNORE => Self::Ignore,
            tracer_common::disp::HANDLER => Self::Handler,
            _ => Self::Unknown,
        }
    }

    pub fn from_sa_handler(handler: u64) -> Self {
        match handler {
            0 => Self::Default,
            1 => Self::Ignore,
            _ => Self::Handler,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Default => "default",
            Self::Ignore => "ignore",
            Self::Handler => "handler",
            Self::Unknown => "unknown",
        }
    }
}

/// The target's dispositions for the four common stop signals, and in a shutdown record for
/// its stop signal when that is another one (a container's `STOPSIGNAL SIGWINCH`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Default)]
pub struct StopDispositions {
    #[serde(rename = "SIGTERM")]
    pub term: Disposition,
    #[serde(rename = "SIGINT")]
    pub int: Disposition,
    #[serde(rename = "SIGQUIT")]
    pub quit: Disposition,
    #[serde(rename = "SIGHUP")]
    pub hup: Disposition,
    /// The stop signal's own disposition, when it is none of the four.
    #[serde(skip)]
    pub other: Option<(Signal, Disposition)>,
}

impl StopDispositions {
    pub fn get(&self, sig: Signal) -> Option<Disposition> {
        match sig.0 {
            15 => Some(self.term),
            2 => Some(self.int),
            3 => Some(self.quit),
            1 => Some(self.hup),
            _ => self.other.filter(|(s, _)| *s == sig).map(|(_, d)| d),
        }
    }

    /// The four common stop signals and their dispositions, then `other`.
    pub fn entries(&self) -> impl Iterator<Item = (Signal, Disposition)> {
        [
            (Signal::TERM, self.term),
            (Signal::INT, self.int),
            (Signal::QUIT, self.quit),
            (Signal::HUP, self.hup),
        ]
        .into_iter()
        .chain(self.other)
    }
}

/// A task as the kernel saw it at the instant of an event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Default)]
pub struct Task {
    /// Host thread-group id (what `ps` calls PID).
    pub pid: u32,
    /// Host thread id.
    pub tid: u32,
    /// Host PID of the real parent.
    pub ppid: u32,
    /// PID inside the task's own PID namespace.
    pub ns_pid: u32,
    pub comm: Comm,
    pub parent_comm: Comm,
    /// cgroup v2 id (inode of the cgroup directory).
    pub cgroup_id: u64,
    /// Init of a PID namespace.
    pub ns_init: bool,
    /// The thread group was already exiting.
    pub group_exiting: bool,
    pub kthread: bool,
    /// Start time of the process (monotonic ns); with `pid` it identifies a process across
    /// PID reuse.
    pub start_ns: u64,
}

/// How a thread group ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ExitStatus {
    /// Exit status when it exited normally.
    pub code: Option<i32>,
    /// Terminating signal when a signal ended it.
    pub signal: Option<Signal>,
    pub core_dumped: bool,
    /// `task_struct.exit_code` as read.
    pub raw: i32,
}

impl ExitStatus {
    pub fn from_raw(raw: i32) -> Self {
        let sig = raw & 0x7f;
        if sig == 0 {
            Self {
                code: Some((raw >> 8) & 0xff),
                signal: None,
                core_dumped: false,
                raw,
            }
        } else {
            Self {
                code: None,
                signal: Some(Signal(sig)),
                core_dumped: raw & 0x80 != 0,
                raw,
            }
        }
    }

    /// The shell-style exit code (128 + signal for a signal death).
    pub fn shell_code(&self) -> i32 {
        match (self.code, self.signal) {
            (Some(c), _) => c,
            (None, Some(s)) => 128 + s.0,
            (None, None) => self.raw,
        }
    }
}

/// One decoded kernel event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum EventKind {
    /// A signal was generated (`signal:signal_generate`).
    SignalGenerate {
        signal: Signal,
        si_code: i32,
        /// Sent to the whole thread group (kill) rather than one thread (tgkill).
        group: bool,
        result: SigResult,
        sender: Task,
        target: Task,
        /// The target's disposition for this signal.
        disposition: Disposition,
        /// The target's dispositions for SIGTERM, SIGINT, SIGQUIT and SIGHUP.
        stop_dispositions: StopDispositions,
        /// The signal was in the target thread's blocked mask.
        blocked: bool,
    },
    /// A signal was delivered to a thread (`signal:signal_deliver`).
    SignalDeliver {
        signal: Signal,
        si_code: i32,
        receiver: Task,
        disposition: Disposition,
        sa_flags: u64,
        /// When the kernel turned a fatal default-action signal into a group-wide SIGKILL,
        /// delivery reports SIGKILL: this names the signal that really ended the group.
        converted_from: Option<Signal>,
    },
    /// The last thread of a thread group exited (`sched:sched_process_exit`).
    Exit {
        task: Task,
        exit: ExitStatus,
        group_dead: bool,
    },
    /// The OOM killer chose a victim (`oom:mark_victim`).
    OomVictim { victim: Task, invoker_pid: u32 },
    /// A container runtime exec'd a process into a container (`sched:sched_process_exec`,
    /// emitted only when the task's cgroup differs from its parent's and it is not in the
    /// initial PID namespace): an exec hook, an exec probe, `kubectl exec`, or a container's
    /// own init.
    Exec {
        task: Task,
        /// The executable as passed to execve (never argv).
        path: String,
        /// cgroup v2 id of the real parent.
        parent_cgroup_id: u64,
    },
}

/// A decoded event with its timestamps.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Event {
    /// `CLOCK_MONOTONIC` nanoseconds as taken by the kernel.
    pub mono_ns: u64,
    /// Wall-clock nanoseconds since the Unix epoch (monotonic + the offset of the session).
    pub wall_ns: i64,
    pub cpu: u32,
    #[serde(flatten)]
    pub kind: EventKind,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_names_round_trip() {
        for n in 1..=64 {
            let s = Signal(n);
            assert_eq!(Signal::parse(&s.name()), Some(s), "{n}");
        }
        assert_eq!(Signal::parse("term"), Some(Signal::TERM));
        assert_eq!(Signal::parse("9"), Some(Signal::KILL));
        assert_eq!(Signal::parse("SIGNOPE"), None);
        assert_eq!(Signal(36).name(), "SIGRTMIN+2");
    }

    #[test]
    fn exit_status_decoding() {
        assert_eq!(ExitStatus::from_raw(3 << 8).code, Some(3));
        let killed = ExitStatus::from_raw(9);
        assert_eq!((killed.code, killed.signal), (None, Some(Signal::KILL)));
        assert_eq!(killed.shell_code(), 137);
        let core = ExitStatus::from_raw(0x80 | 11);
        assert!(core.core_dumped);
        assert_eq!(core.signal, Some(Signal(11)));
    }

    #[test]
    fn rfc3339_fast_path_matches_the_formatter() {
        // jiff's own formatter.
        let slow = |wall_ns: i64| {
            jiff::Timestamp::from_microsecond(wall_ns.div_euclid(1000))
                .unwrap()
                .strftime("%Y-%m-%dT%H:%M:%S.%6fZ")
                .to_string()
        };
        let mut x = 0x1234_5678_9abc_def0u64;
        for _ in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let wall = (x % 4_000_000_000_000_000_000) as i64;
            assert_eq!(rfc3339(wall), slow(wall));
        }
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59.999999Z");
    }

    #[test]
    fn comm_reads_as_the_lossy_kernel_bytes() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut bytes = [0u8; COMM_LEN];
        for round in 0..20_000 {
            for b in bytes.iter_mut() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                // Mostly ASCII, some UTF-8 lead/continuation bytes, 0xFF, NUL and U+FFFD.
                *b = match x % 16 {
                    0 => 0xC3,
                    1 => 0xA9,
                    2 => 0xFF,
                    3 if round % 4 == 0 => 0,
                    4 => 0xEF,
                    5 => 0xBF,
                    6 => 0xBD,
                    _ => b'a' + (x % 26) as u8,
                };
            }
            let end = bytes.iter().position(|&b| b == 0).unwrap_or(COMM_LEN);
            let lossy = String::from_utf8_lossy(&bytes[..end]).into_owned();
            let c = Comm::from_kernel(&bytes);
            assert_eq!(c.as_str(), lossy, "{bytes:?}");
            assert_eq!(c.to_string(), lossy);
            assert_eq!(c, lossy.as_str());
            // Same name, same value; and the JSON string reads back to it.
            assert_eq!(Comm::new(&lossy), Some(c));
            let json = serde_json::to_string(&c).unwrap_or_default();
            assert_eq!(json, serde_json::to_string(&lossy).unwrap_or_default());
            assert_eq!(serde_json::from_str::<Comm>(&json).ok(), Some(c));
        }
        assert_eq!(Comm::from_kernel(b"runc\0garbage\xff\xfe\0x"), "runc");
        assert_eq!(Comm::from_kernel(b"0123456789abcdef"), "0123456789abcdef");
        assert_eq!(Comm::from_kernel(&[0; COMM_LEN]), Comm::default());
        assert_eq!(Comm::from("nginx"), "nginx");
        assert_eq!(
            Comm::from("containerd-shim-runc-v2").to_string(),
            "containerd-shim-"
        );
        assert_eq!(Comm::new("containerd-shim-runc-v2"), None);
        assert!(Comm::default().is_empty());
        assert_eq!(format!("{:<6}|", Comm::from("sh")), "sh    |");
    }

    #[test]
    fn wall_time_parses_what_it_prints() {
        let mut x = 0x1234_5678_9abc_def0u64;
        for _ in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let t = WallTime::from_ns(x as i64);
            let s = t.to_string();
            assert_eq!(WallTime::parse(&s), Some(t), "{s}");
            let json = serde_json::to_string(&t).unwrap_or_default();
            assert_eq!(json, format!("\"{s}\""));
            assert_eq!(serde_json::from_str::<WallTime>(&json).ok(), Some(t));
        }
        assert_eq!(WallTime::parse("2023-02-30T00:00:00.000000Z"), None);
        assert_eq!(WallTime::parse("2023-11-14 22:13:20.123456Z"), None);
        assert_eq!(WallTime::from_ns(-1), "1969-12-31T23:59:59.999999Z");
    }

    #[test]
    fn rfc3339_formatting() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(
            rfc3339(1_700_000_000_123_456_789),
            "2023-11-14T22:13:20.123456Z"
        );
        assert_eq!(
            rfc3339(951_782_400_000_000_000),
            "2000-02-29T00:00:00.000000Z"
        );
    }
}
