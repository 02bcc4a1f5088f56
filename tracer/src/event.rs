//! The decoded event model: what one kernel record means, in userspace types.
//!
//! Produced by [`crate::decode`] from ring-buffer (or journal) bytes and consumed by the
//! correlation engine and the sinks. Serialises to the JSON documented in the README
//! (`sigtrace run --raw`).
use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A signal number, shown by name ("SIGTERM", "SIGRTMIN+3").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Signal(pub i32);

impl Signal {
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

    /// The stop signals a shutdown starts with by default.
    pub fn is_stop_signal(self) -> bool {
        matches!(self.0, 1 | 2 | 3 | 9 | 15)
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

/// The target's dispositions for the four common stop signals.
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
}

impl StopDispositions {
    pub fn get(&self, sig: Signal) -> Option<Disposition> {
        match sig.0 {
            15 => Some(self.term),
            2 => Some(self.int),
            3 => Some(self.quit),
            1 => Some(self.hup),
            _ => None,
        }
    }
}

/// Bytes of a process name (`task_struct.comm`, NUL included when it fits).
pub const COMM_LEN: usize = 16;

/// A process name (`task_struct.comm`), held inline (16 bytes, `Copy`, no allocation).
///
/// It reads as the kernel's bytes up to the first NUL, decoded as UTF-8 with every invalid
/// sequence replaced by U+FFFD (`String::from_utf8_lossy`), which is what it displays,
/// compares as and serialises to (a JSON string). Stored form: those characters, except that
/// each U+FFFD is the single byte 0xFF (never valid in UTF-8), zero-padded; so the kernel's
/// at most 16 bytes always fit, and equal names have equal bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Comm([u8; COMM_LEN]);

impl Comm {
    /// The name in the kernel's `comm` bytes (up to the first NUL).
    pub fn from_kernel(bytes: &[u8; COMM_LEN]) -> Self {
        // Word-at-a-time: the first NUL byte (the classic "has a zero byte" test, exact for
        // the lowest one), then the bytes before it kept if they are all ASCII.
        const LOW: u128 = u128::from_le_bytes([0x01; COMM_LEN]);
        const HIGH: u128 = u128::from_le_bytes([0x80; COMM_LEN]);
        let v = u128::from_le_bytes(*bytes);
        let zeros = v.wrapping_sub(LOW) & !v & HIGH;
        let end = (zeros.trailing_zeros() / 8) as usize;
        let keep = if end >= COMM_LEN {
            u128::MAX
        } else {
            (1u128 << (8 * end)) - 1
        };
        if v & keep & HIGH == 0 {
            return Self((v & keep).to_le_bytes());
        }
        let raw = &bytes[..end.min(COMM_LEN)];
        let mut out = [0u8; COMM_LEN];
        let mut n = 0;
        for chunk in raw.utf8_chunks() {
            // Never longer than `raw`: characters keep their length, U+FFFD (3 bytes) and
            // each invalid sequence (≥ 1 byte) become one byte.
            for c in chunk.valid().chars() {
                n += Self::put(&mut out[n..], c);
            }
            if !chunk.invalid().is_empty() {
                out[n] = 0xFF;
                n += 1;
            }
        }
        Self(out)
    }

    fn stored_len(c: char) -> usize {
        if c == char::REPLACEMENT_CHARACTER {
            1
        } else {
            c.len_utf8()
        }
    }

    /// Stores `c` at the start of `out`, returns its stored length.
    fn put(out: &mut [u8], c: char) -> usize {
        if c == char::REPLACEMENT_CHARACTER {
            out[0] = 0xFF;
            1
        } else {
            c.encode_utf8(out).len()
        }
    }

    /// `name` as a comm; `None` when it holds a NUL or does not fit in 16 bytes (U+FFFD counts
    /// as one byte).
    pub fn new(name: &str) -> Option<Self> {
        let mut out = [0u8; COMM_LEN];
        let mut n = 0;
        for c in name.chars() {
            if c == '\0' || n + Self::stored_len(c) > COMM_LEN {
                return None;
            }
            n += Self::put(&mut out[n..], c);
        }
        Some(Self(out))
    }

    /// The stored bytes (see the type's docs), without the padding.
    fn stored(&self) -> &[u8] {
        let end = self.0.iter().position(|&b| b == 0).unwrap_or(COMM_LEN);
        &self.0[..end]
    }

    /// The name (borrowed unless it had invalid UTF-8).
    pub fn as_str(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(self.stored())
    }

    pub fn is_empty(&self) -> bool {
        self.0[0] == 0
    }
}

impl From<&str> for Comm {
    /// `name`, cut at its first NUL and to the characters that fit in 16 bytes.
    fn from(name: &str) -> Self {
        let name = name.split('\0').next().unwrap_or_default();
        let mut out = [0u8; COMM_LEN];
        let mut n = 0;
        for c in name.chars() {
            if n + Self::stored_len(c) > COMM_LEN {
                break;
            }
            n += Self::put(&mut out[n..], c);
        }
        Self(out)
    }
}

impl PartialEq<str> for Comm {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Comm {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl fmt::Display for Comm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.as_str())
    }
}

impl fmt::Debug for Comm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.as_str(), f)
    }
}

impl Serialize for Comm {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.as_str())
    }
}

impl<'de> Deserialize<'de> for Comm {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Cow::<str>::deserialize(d)?;
        Comm::new(&s).ok_or_else(|| serde::de::Error::custom(format!("not a process name: {s:?}")))
    }
}

/// A wall-clock instant (microseconds since the Unix epoch), shown and serialised as an
/// RFC 3339 UTC string with microseconds ([`rfc3339`]); formatted only when shown.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WallTime(i64);

impl WallTime {
    /// The instant of wall-clock nanoseconds since the epoch (truncated to microseconds).
    pub fn from_ns(wall_ns: i64) -> Self {
        Self(wall_ns.div_euclid(1000))
    }

    pub fn micros(self) -> i64 {
        self.0
    }

    /// Parses what [`fmt::Display`] writes ("2023-11-14T22:13:20.123456Z").
    pub fn parse(s: &str) -> Option<Self> {
        let b = s.as_bytes();
        if b.len() != 27 {
            return None;
        }
        let num = |at: usize, width: usize| -> Option<i64> {
            b[at..at + width].iter().try_fold(0i64, |v, &c| {
                c.is_ascii_digit().then(|| v * 10 + i64::from(c - b'0'))
            })
        };
        let (y, m, d) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
        let (hh, mm, ss, us) = (num(11, 2)?, num(14, 2)?, num(17, 2)?, num(20, 6)?);
        if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 59 {
            return None;
        }
        let days = days_from_civil(y, m, d);
        let t = Self((days * 86_400 + hh * 3600 + mm * 60 + ss) * 1_000_000 + us);
        // Rejects what does not format back the same (a 30th of February, separators).
        t.is(s).then_some(t)
    }
}

impl WallTime {
    /// The RFC 3339 text, without the formatting machinery, for years 0 to 9999 (every time
    /// an i64 of nanoseconds can hold).
    fn rfc3339_bytes(self) -> Option<[u8; 27]> {
        let secs = self.0.div_euclid(1_000_000);
        let micros = self.0.rem_euclid(1_000_000);
        let sod = secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
        if !(0..=9999).contains(&y) {
            return None;
        }
        let mut b = *b"0000-00-00T00:00:00.000000Z";
        let mut put = |at: usize, width: usize, mut v: i64| {
            for i in (at..at + width).rev() {
                b[i] = b'0' + (v % 10) as u8;
                v /= 10;
            }
        };
        put(0, 4, y);
        put(5, 2, m);
        put(8, 2, d);
        put(11, 2, sod / 3600);
        put(14, 2, sod % 3600 / 60);
        put(17, 2, sod % 60);
        put(20, 6, micros);
        Some(b)
    }

    fn is(self, text: &str) -> bool {
        match self.rfc3339_bytes() {
            Some(b) => b[..] == *text.as_bytes(),
            None => format!("{self}") == text,
        }
    }
}

impl fmt::Display for WallTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(b) = self.rfc3339_bytes() {
            return f.pad(std::str::from_utf8(&b).unwrap_or_default());
        }
        let secs = self.0.div_euclid(1_000_000);
        let micros = self.0.rem_euclid(1_000_000);
        let sod = secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
        f.pad(&format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}Z",
            sod / 3600,
            sod % 3600 / 60,
            sod % 60
        ))
    }
}

impl fmt::Debug for WallTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

impl PartialEq<str> for WallTime {
    fn eq(&self, other: &str) -> bool {
        self.is(other)
    }
}

impl PartialEq<&str> for WallTime {
    fn eq(&self, other: &&str) -> bool {
        self.is(other)
    }
}

impl PartialEq<String> for WallTime {
    fn eq(&self, other: &String) -> bool {
        self.is(other)
    }
}

impl Serialize for WallTime {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for WallTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Cow::<str>::deserialize(d)?;
        WallTime::parse(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("not an RFC 3339 UTC time: {s:?}")))
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

impl Event {
    /// The thread group this event is about (target, receiver, exiting task, OOM victim).
    pub fn subject_pid(&self) -> u32 {
        match &self.kind {
            EventKind::SignalGenerate { target, .. } => target.pid,
            EventKind::SignalDeliver { receiver, .. } => receiver.pid,
            EventKind::Exit { task, .. } => task.pid,
            EventKind::OomVictim { victim, .. } => victim.pid,
        }
    }
}

/// (year, month, day) of a day count since 1970-01-01 (Howard Hinnant's civil_from_days).
pub(crate) fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Days since 1970-01-01 of a (year, month, day) (Howard Hinnant's days_from_civil).
pub(crate) fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Formats wall-clock nanoseconds since the epoch as RFC 3339 UTC with microseconds.
pub fn rfc3339(wall_ns: i64) -> String {
    WallTime::from_ns(wall_ns).to_string()
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
        // The formatter-only version this replaced.
        let slow = |wall_ns: i64| {
            let secs = wall_ns.div_euclid(1_000_000_000);
            let micros = wall_ns.rem_euclid(1_000_000_000) / 1000;
            let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
            let (y, m, d) = civil_from_days(days);
            format!(
                "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}Z",
                sod / 3600,
                sod % 3600 / 60,
                sod % 60
            )
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
