//! Decoding of kernel records (ring buffer or journal bytes) into [`Event`]s.
//!
//! Every record is checked: its length must cover its kind's struct and the kind must be known;
//! anything else is a [`DecodeError`] that callers count, never a panic. The bytes are copied
//! into the plain-old-data structs of `tracer-common` with `bytemuck` (every bit pattern of
//! them is valid). Monotonic kernel timestamps become wall-clock time through one [`Clock`]
//! offset taken once per session.
use thiserror::Error;
use tracer_common::{
    kind, task_flags, CgroupMkdir, Header, OomVictim, ProcessExec, ProcessExit, SignalDeliver,
    SignalGenerate, TaskInfo,
};

use crate::event::{
    Comm, Disposition, Event, EventKind, ExitStatus, SigResult, Signal, StopDispositions, Task,
};

#[derive(Debug, Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("record of {len} bytes is shorter than the {need}-byte {what}")]
    Short {
        len: usize,
        need: usize,
        what: &'static str,
    },
    #[error("unknown record kind {0}")]
    UnknownKind(u32),
    #[error("impossible record: {0}")]
    Invalid(&'static str),
}

/// A kernel record, checked and copied out of its byte buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelRecord {
    Generate(SignalGenerate),
    Deliver(SignalDeliver),
    Exit(ProcessExit),
    Oom(OomVictim),
    Exec(ProcessExec),
}

/// Copies a `T` out of the first bytes of `bytes` after checking the length.
fn read_pod<T: bytemuck::AnyBitPattern>(
    bytes: &[u8],
    what: &'static str,
) -> Result<T, DecodeError> {
    let need = std::mem::size_of::<T>();
    match bytes.get(..need) {
        Some(b) => Ok(bytemuck::pod_read_unaligned(b)),
        None => Err(DecodeError::Short {
            len: bytes.len(),
            need,
            what,
        }),
    }
}

impl TryFrom<&[u8]> for KernelRecord {
    type Error = DecodeError;

    fn try_from(bytes: &[u8]) -> Result<Self, Self::Error> {
        let header: Header = read_pod(bytes, "header")?;
        let rec = match header.kind {
            kind::SIGNAL_GENERATE => Self::Generate(read_pod(bytes, "signal_generate record")?),
            kind::SIGNAL_DELIVER => Self::Deliver(read_pod(bytes, "signal_deliver record")?),
            kind::PROCESS_EXIT => Self::Exit(read_pod(bytes, "process_exit record")?),
            kind::OOM_VICTIM => Self::Oom(read_pod(bytes, "oom_victim record")?),
            kind::PROCESS_EXEC => Self::Exec(read_pod(bytes, "process_exec record")?),
            other => return Err(DecodeError::UnknownKind(other)),
        };
        rec.check()?;
        Ok(rec)
    }
}

/// Converts kernel monotonic timestamps to wall-clock time with one fixed offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Clock {
    /// `CLOCK_REALTIME - CLOCK_MONOTONIC`, in nanoseconds.
    pub offset_ns: i64,
}

impl Clock {
    /// Samples both clocks now: the best of three readings (the narrowest monotonic bracket
    /// around the realtime read), so that a preemption does not skew the offset.
    pub fn now() -> Self {
        let read = |id| {
            let mut ts = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            // SAFETY: valid pointer to a timespec; both clock ids exist on Linux.
            unsafe { libc::clock_gettime(id, &mut ts) };
            ts.tv_sec * 1_000_000_000 + ts.tv_nsec
        };
        let sample = || {
            let mono1 = read(libc::CLOCK_MONOTONIC);
            let real = read(libc::CLOCK_REALTIME);
            let mono2 = read(libc::CLOCK_MONOTONIC);
            (mono2 - mono1, real - (mono1 + (mono2 - mono1) / 2))
        };
        let best = (0..3)
            .map(|_| sample())
            .min_by_key(|s| s.0)
            .unwrap_or((0, 0));
        Self { offset_ns: best.1 }
    }

    /// Current `CLOCK_MONOTONIC` in nanoseconds, the kernel timestamps' clock.
    pub fn monotonic_now_ns() -> u64 {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: as above.
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
        ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
    }

    pub fn wall_ns(&self, mono_ns: u64) -> i64 {
        mono_ns as i64 + self.offset_ns
    }
}

impl From<&TaskInfo> for Task {
    fn from(t: &TaskInfo) -> Self {
        Task {
            pid: t.tgid,
            tid: t.tid,
            ppid: t.ppid,
            ns_pid: t.ns_pid,
            comm: Comm::from_kernel(&t.comm),
            parent_comm: Comm::from_kernel(&t.parent_comm),
            cgroup_id: t.cgroup_id,
            ns_init: t.flags & task_flags::NS_INIT != 0,
            group_exiting: t.flags & task_flags::GROUP_EXITING != 0,
            kthread: t.flags & task_flags::KTHREAD != 0,
            start_ns: t.start_ns,
        }
    }
}

/// What the kernel side can write into a task: names end within their 16 bytes, and only
/// the known flags.
fn check_task(t: &TaskInfo) -> Result<(), DecodeError> {
    let named = |c: &[u8; tracer_common::COMM_LEN]| crate::event::nul_bits(c).1 != 0;
    if !named(&t.comm) || !named(&t.parent_comm) {
        return Err(DecodeError::Invalid(
            "a process name without its terminating NUL",
        ));
    }
    let known = task_flags::NS_INIT | task_flags::GROUP_EXITING | task_flags::KTHREAD;
    if t.flags & !known != 0 {
        return Err(DecodeError::Invalid("unknown task flags"));
    }
    Ok(())
}

fn check_signal(sig: i32) -> Result<(), DecodeError> {
    if (0..=64).contains(&sig) {
        Ok(())
    } else {
        Err(DecodeError::Invalid("a signal number outside 0..=64"))
    }
}

impl KernelRecord {
    /// Rejects what the kernel side never writes (forged or damaged journal payloads).
    fn check(&self) -> Result<(), DecodeError> {
        match self {
            Self::Generate(r) => {
                check_signal(r.sig)?;
                if !(0..=4).contains(&r.result) || !(0..=1).contains(&r.group) {
                    return Err(DecodeError::Invalid(
                        "a result or group value the kernel never gives",
                    ));
                }
                let disp_ok = |d: &u8| {
                    matches!(
                        *d,
                        tracer_common::disp::DEFAULT
                            | tracer_common::disp::IGNORE
                            | tracer_common::disp::HANDLER
                            | tracer_common::disp::UNKNOWN
                    )
                };
                if !r.disp[..tracer_common::DISP_SIGNALS.len()]
                    .iter()
                    .all(disp_ok)
                {
                    return Err(DecodeError::Invalid("an unknown disposition code"));
                }
                check_task(&r.sender)?;
                check_task(&r.target)
            }
            Self::Deliver(r) => {
                check_signal(r.sig)?;
                check_task(&r.receiver)
            }
            Self::Exit(r) => {
                if r.group_dead > 1 {
                    return Err(DecodeError::Invalid("group_dead is neither 0 nor 1"));
                }
                check_task(&r.task)
            }
            Self::Oom(r) => check_task(&r.victim),
            Self::Exec(r) => {
                if !r.path.contains(&0) {
                    return Err(DecodeError::Invalid("an exec path without its NUL"));
                }
                check_task(&r.task)
            }
        }
    }

    pub fn header(&self) -> Header {
        match self {
            Self::Generate(r) => r.header,
            Self::Deliver(r) => r.header,
            Self::Exit(r) => r.header,
            Self::Oom(r) => r.header,
            Self::Exec(r) => r.header,
        }
    }

    /// Interprets the record; `clock` gives its wall-clock time.
    pub fn into_event(self, clock: &Clock) -> Event {
        let header = self.header();
        let kind = match self {
            Self::Generate(r) => {
                let signal = Signal(r.sig);
                let d = |i: usize| Disposition::from_code(r.disp[i]);
                let blocked = r.target_blocked & tracer_common::signal_bit(r.sig) != 0;
                EventKind::SignalGenerate {
                    signal,
                    si_code: r.code,
                    group: r.group != 0,
                    result: SigResult::from_raw(r.result),
                    sender: Task::from(&r.sender),
                    target: Task::from(&r.target),
                    disposition: d(0),
                    stop_dispositions: StopDispositions {
                        term: d(1),
                        int: d(2),
                        quit: d(3),
                        hup: d(4),
                        other: None,
                    },
                    blocked,
                }
            }
            Self::Deliver(r) => {
                let code = r.group_exit_code;
                // A group exit set by a fatal signal stores that signal number (no status byte);
                // delivery of SIGKILL then is the kernel's fan-out of that signal.
                let converted_from =
                    (r.sig == 9 && code & 0x7f != 0 && code & 0x7f != 9 && code & !0xff == 0)
                        .then_some(Signal(code & 0x7f));
                EventKind::SignalDeliver {
                    signal: Signal(r.sig),
                    si_code: r.code,
                    receiver: Task::from(&r.receiver),
                    disposition: Disposition::from_sa_handler(r.sa_handler),
                    sa_flags: r.sa_flags,
                    converted_from,
                }
            }
            Self::Exit(r) => EventKind::Exit {
                task: Task::from(&r.task),
                exit: ExitStatus::from_raw(r.exit_code),
                group_dead: r.group_dead != 0,
            },
            Self::Oom(r) => EventKind::OomVictim {
                victim: Task::from(&r.victim),
                invoker_pid: r.invoker_tgid,
            },
            Self::Exec(r) => {
                let end = r.path.iter().position(|&b| b == 0).unwrap_or(r.path.len());
                EventKind::Exec {
                    task: Task::from(&r.task),
                    path: String::from_utf8_lossy(&r.path[..end]).into_owned(),
                    parent_cgroup_id: r.parent_cgroup_id,
                }
            }
        };
        Event {
            mono_ns: header.ts_ns,
            wall_ns: clock.wall_ns(header.ts_ns),
            cpu: header.cpu,
            kind,
        }
    }
}

/// A cgroup v2 directory's creation (`cgroup:cgroup_mkdir`): not an event of a process, an
/// entry for the index of cgroups, so that a cgroup gone before its first event is read is
/// still known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CgroupCreated {
    pub mono_ns: u64,
    pub cgroup_id: u64,
    /// From the hierarchy's root, starting with '/'.
    pub path: String,
}

impl CgroupCreated {
    /// Whether `bytes` is a cgroup creation record (by its kind only).
    pub fn is(bytes: &[u8]) -> bool {
        bytes
            .get(..4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_ne_bytes)
            == Some(kind::CGROUP_MKDIR)
    }
}

impl TryFrom<&[u8]> for CgroupCreated {
    type Error = DecodeError;

    fn try_from(bytes: &[u8]) -> Result<Self, Self::Error> {
        let r: CgroupMkdir = read_pod(bytes, "cgroup_mkdir record")?;
        if r.header.kind != kind::CGROUP_MKDIR {
            return Err(DecodeError::UnknownKind(r.header.kind));
        }
        let end = r
            .path
            .iter()
            .position(|&b| b == 0)
            .ok_or(DecodeError::Invalid(
                "a cgroup path without its NUL (longer than the record keeps)",
            ))?;
        let path = std::str::from_utf8(&r.path[..end])
            .map_err(|_| DecodeError::Invalid("a cgroup path that is not UTF-8"))?;
        if !path.starts_with('/') {
            return Err(DecodeError::Invalid("a cgroup path not from the root"));
        }
        Ok(Self {
            mono_ns: r.header.ts_ns,
            cgroup_id: r.cgroup_id,
            path: path.to_owned(),
        })
    }
}

/// Decodes one record's bytes into an event.
pub fn decode(bytes: &[u8], clock: &Clock) -> Result<Event, DecodeError> {
    KernelRecord::try_from(bytes).map(|r| r.into_event(clock))
}

/// The bytes of a record, as the kernel writes them (tests, benchmarks).
pub fn encode(record: &KernelRecord) -> Vec<u8> {
    match record {
        KernelRecord::Generate(r) => bytemuck::bytes_of(r).to_vec(),
        KernelRecord::Deliver(r) => bytemuck::bytes_of(r).to_vec(),
        KernelRecord::Exit(r) => bytemuck::bytes_of(r).to_vec(),
        KernelRecord::Oom(r) => bytemuck::bytes_of(r).to_vec(),
        KernelRecord::Exec(r) => bytemuck::bytes_of(r).to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(tgid: u32, name: &str) -> TaskInfo {
        let mut t = TaskInfo {
            tgid,
            tid: tgid,
            ppid: 1,
            ns_pid: tgid,
            ..Default::default()
        };
        t.comm[..name.len()].copy_from_slice(name.as_bytes());
        t
    }

    #[test]
    fn round_trips_a_generate_record() {
        let rec = SignalGenerate {
            header: Header {
                kind: kind::SIGNAL_GENERATE,
                cpu: 1,
                ts_ns: 5_000,
            },
            sig: 15,
            code: 0,
            group: 1,
            result: 1,
            sender: task(10, "runc"),
            target: TaskInfo {
                flags: task_flags::NS_INIT,
                ..task(20, "sleep")
            },
            disp: [0, 0, 2, 0, 1, 0, 0, 0],
            target_blocked: 1 << 14,
        };
        let bytes = encode(&KernelRecord::Generate(rec));
        let ev = decode(&bytes, &Clock { offset_ns: 1_000 }).unwrap();
        assert_eq!(ev.wall_ns, 6_000);
        let EventKind::SignalGenerate {
            signal,
            result,
            target,
            stop_dispositions,
            blocked,
            sender,
            ..
        } = ev.kind
        else {
            panic!("wrong kind")
        };
        assert_eq!(signal, Signal::TERM);
        assert_eq!(result, SigResult::Ignored);
        assert!(target.ns_init && blocked);
        assert_eq!(sender.comm, "runc");
        assert_eq!(stop_dispositions.int, Disposition::Handler);
        assert_eq!(stop_dispositions.hup, Disposition::Ignore);
    }

    #[test]
    fn cgroup_creation_records_decode_and_bad_paths_are_errors() {
        let mut r = CgroupMkdir {
            header: Header {
                kind: kind::CGROUP_MKDIR,
                cpu: 0,
                ts_ns: 7,
            },
            cgroup_id: 4242,
            ..Default::default()
        };
        let path = b"/system.slice/docker-ab.scope";
        r.path[..path.len()].copy_from_slice(path);
        let bytes = bytemuck::bytes_of(&r).to_vec();
        assert!(CgroupCreated::is(&bytes));
        let c = CgroupCreated::try_from(&bytes[..]).unwrap();
        assert_eq!((c.mono_ns, c.cgroup_id), (7, 4242));
        assert_eq!(c.path, "/system.slice/docker-ab.scope");
        // Cut short, a path filling the record, a relative path: errors, no panic.
        assert!(CgroupCreated::try_from(&bytes[..100]).is_err());
        let mut full = r;
        full.path = [b'a'; tracer_common::CGROUP_PATH_LEN];
        assert!(CgroupCreated::try_from(bytemuck::bytes_of(&full)).is_err());
        let mut relative = r;
        relative.path[0] = b'x';
        assert!(CgroupCreated::try_from(bytemuck::bytes_of(&relative)).is_err());
        // Not an event record.
        assert!(matches!(
            KernelRecord::try_from(&bytes[..]),
            Err(DecodeError::UnknownKind(kind::CGROUP_MKDIR))
        ));
    }

    #[test]
    fn short_and_unknown_records_are_errors() {
        assert!(matches!(
            decode(&[1, 2, 3], &Clock { offset_ns: 0 }),
            Err(DecodeError::Short { .. })
        ));
        let mut bytes = encode(&KernelRecord::Exit(ProcessExit::default()));
        bytes[0] = 99;
        assert_eq!(
            decode(&bytes, &Clock { offset_ns: 0 }),
            Err(DecodeError::UnknownKind(99))
        );
        let mut bytes = encode(&KernelRecord::Generate(SignalGenerate::default()));
        bytes[0] = kind::SIGNAL_GENERATE as u8;
        assert!(matches!(
            decode(&bytes[..100], &Clock { offset_ns: 0 }),
            Err(DecodeError::Short { .. })
        ));
    }

    #[test]
    fn deliver_side_sigkill_of_a_fatal_sigterm_is_marked() {
        let rec = SignalDeliver {
            header: Header {
                kind: kind::SIGNAL_DELIVER,
                cpu: 0,
                ts_ns: 1,
            },
            sig: 9,
            group_exit_code: 15,
            ..Default::default()
        };
        let ev = decode(
            &encode(&KernelRecord::Deliver(rec)),
            &Clock { offset_ns: 0 },
        )
        .unwrap();
        let EventKind::SignalDeliver { converted_from, .. } = ev.kind else {
            panic!()
        };
        assert_eq!(converted_from, Some(Signal::TERM));
        let real = SignalDeliver {
            group_exit_code: 9,
            ..rec
        };
        let ev = decode(
            &encode(&KernelRecord::Deliver(real)),
            &Clock { offset_ns: 0 },
        )
        .unwrap();
        let EventKind::SignalDeliver { converted_from, .. } = ev.kind else {
            panic!()
        };
        assert_eq!(converted_from, None);
    }
}
