//! Engine tests: a small builder for synthetic [`Event`] streams (this file), one test per
//! diagnosis and scenario ([`diagnoses`]), and the robustness properties — ordering, PID
//! reuse, threads, losses, eviction, determinism, schema ([`robustness`]), and the
//! container-level records ([`containers`]).
use crate::event::{
    Comm, Disposition, Event, EventKind, ExitStatus, SigResult, Signal, StopDispositions, Task,
};

use super::{Engine, EngineConfig, Output, ProcessStop};

mod accuracy;
mod containers;
mod diagnoses;
mod layout;
mod liveness;
mod pods;
mod prestop;
mod robustness;

/// Monotonic time of `ms = 0` in the test streams.
pub const BASE_NS: u64 = 1_000_000_000_000;
/// Wall clock = monotonic + this.
pub const WALL_OFFSET: i64 = 1_700_000_000_000_000_000;
pub const TERM: Signal = Signal::TERM;
pub const KILL: Signal = Signal::KILL;
pub const INT: Signal = Signal::INT;

pub fn ns(ms: f64) -> u64 {
    BASE_NS + (ms * 1e6).round() as u64
}

pub fn wall(ms: f64) -> i64 {
    ns(ms) as i64 + WALL_OFFSET
}

pub fn time(ms: f64) -> String {
    crate::event::rfc3339(wall(ms))
}

fn event(ms: f64, kind: EventKind) -> Event {
    Event {
        mono_ns: ns(ms),
        wall_ns: wall(ms),
        cpu: 0,
        kind,
    }
}

/// A single-threaded process in cgroup 7 whose parent is pid 1; start time derived from pid.
pub fn task(pid: u32, comm: &str) -> Task {
    Task {
        pid,
        tid: pid,
        ppid: 1,
        ns_pid: pid,
        comm: comm.into(),
        parent_comm: Comm::default(),
        cgroup_id: 7,
        ns_init: false,
        group_exiting: false,
        kthread: false,
        start_ns: 1_000 + u64::from(pid),
    }
}

/// Chainable tweaks of a [`Task`].
pub trait TaskExt: Sized {
    fn with(self, f: impl FnOnce(&mut Task)) -> Task;
    fn ppid(self, ppid: u32) -> Task {
        self.with(|t| t.ppid = ppid)
    }
    /// The init of its own PID namespace.
    fn init(self) -> Task {
        self.with(|t| {
            t.ns_init = true;
            t.ns_pid = 1;
        })
    }
    /// A dying init: the kernel replaced SIGNAL_UNKILLABLE with SIGNAL_GROUP_EXIT.
    fn dying(self) -> Task {
        self.with(|t| {
            t.ns_init = false;
            t.group_exiting = true;
        })
    }
    fn start(self, start_ns: u64) -> Task {
        self.with(|t| t.start_ns = start_ns)
    }
    fn tid(self, tid: u32) -> Task {
        self.with(|t| t.tid = tid)
    }
    fn cgroup(self, id: u64) -> Task {
        self.with(|t| t.cgroup_id = id)
    }
}

impl TaskExt for Task {
    fn with(mut self, f: impl FnOnce(&mut Task)) -> Task {
        f(&mut self);
        self
    }
}

/// A `signal_generate` event under construction. The result defaults to what the kernel
/// would say: ignored for SIG_IGN, and for a PID-namespace init with the default action.
pub struct Gen {
    ms: f64,
    signal: Signal,
    si_code: i32,
    sender: Task,
    target: Task,
    result: Option<SigResult>,
    dispositions: StopDispositions,
    /// The disposition of a signal outside the four common stop signals.
    own: Option<Disposition>,
    blocked: bool,
}

pub fn generate(ms: f64, signal: Signal, sender: &Task, target: &Task) -> Gen {
    Gen {
        ms,
        signal,
        si_code: 0,
        sender: sender.clone(),
        target: target.clone(),
        result: None,
        dispositions: StopDispositions::default(),
        own: None,
        blocked: false,
    }
}

impl Gen {
    pub fn result(mut self, r: SigResult) -> Self {
        self.result = Some(r);
        self
    }
    /// The target has handlers for these signals.
    pub fn handles(mut self, sigs: &[Signal]) -> Self {
        for &s in sigs {
            self.set(s, Disposition::Handler);
        }
        self
    }
    /// The target set these signals to SIG_IGN.
    pub fn ignores(mut self, sigs: &[Signal]) -> Self {
        for &s in sigs {
            self.set(s, Disposition::Ignore);
        }
        self
    }
    pub fn blocked(mut self) -> Self {
        self.blocked = true;
        self
    }
    /// si_code SI_KERNEL.
    pub fn kernel(mut self) -> Self {
        self.si_code = 0x80;
        self
    }
    fn set(&mut self, s: Signal, d: Disposition) {
        match s.0 {
            15 => self.dispositions.term = d,
            2 => self.dispositions.int = d,
            3 => self.dispositions.quit = d,
            1 => self.dispositions.hup = d,
            _ if s == self.signal => self.own = Some(d),
            _ => {}
        }
    }
    pub fn ev(self) -> Event {
        let disposition = self
            .dispositions
            .get(self.signal)
            .or(self.own)
            .unwrap_or_default();
        let result = self.result.unwrap_or(
            if disposition == Disposition::Ignore
                || (self.target.ns_init
                    && disposition == Disposition::Default
                    && self.signal != Signal::KILL)
            {
                SigResult::Ignored
            } else {
                SigResult::Delivered
            },
        );
        event(
            self.ms,
            EventKind::SignalGenerate {
                signal: self.signal,
                si_code: self.si_code,
                group: true,
                result,
                sender: self.sender,
                target: self.target,
                disposition,
                stop_dispositions: self.dispositions,
                blocked: self.blocked,
            },
        )
    }
}

impl From<Gen> for Event {
    fn from(g: Gen) -> Event {
        g.ev()
    }
}

pub fn deliver(ms: f64, signal: Signal, receiver: &Task, d: Disposition) -> Event {
    event(
        ms,
        EventKind::SignalDeliver {
            signal,
            si_code: 0,
            receiver: receiver.clone(),
            disposition: d,
            sa_flags: 0,
            converted_from: None,
        },
    )
}

/// The SIGKILL delivery the kernel reports for the fatal default action of `from`.
pub fn deliver_default(ms: f64, from: Signal, receiver: &Task) -> Event {
    event(
        ms,
        EventKind::SignalDeliver {
            signal: KILL,
            si_code: 0,
            receiver: receiver.clone(),
            disposition: Disposition::Default,
            sa_flags: 0,
            converted_from: Some(from),
        },
    )
}

fn exit_raw(ms: f64, task: &Task, raw: i32, group_dead: bool) -> Event {
    event(
        ms,
        EventKind::Exit {
            task: task.clone(),
            exit: ExitStatus::from_raw(raw),
            group_dead,
        },
    )
}

pub fn exit_code(ms: f64, task: &Task, code: i32) -> Event {
    exit_raw(ms, task, code << 8, true)
}

pub fn exit_signal(ms: f64, task: &Task, sig: Signal) -> Event {
    exit_raw(ms, task, sig.0, true)
}

/// One thread exits; the group lives on.
pub fn thread_exit(ms: f64, task: &Task) -> Event {
    exit_raw(ms, task, 0, false)
}

pub fn oom(ms: f64, victim: &Task, invoker_pid: u32) -> Event {
    event(
        ms,
        EventKind::OomVictim {
            victim: victim.clone(),
            invoker_pid,
        },
    )
}

/// A runtime exec'd `task` (its path: `/bin/<comm>`) into its container.
pub fn exec(ms: f64, task: &Task) -> Event {
    event(
        ms,
        EventKind::Exec {
            task: task.clone(),
            path: format!("/bin/{}", task.comm),
            parent_cgroup_id: 1,
        },
    )
}

/// Pushes every event, then finishes.
pub fn run_with(cfg: EngineConfig, events: Vec<Event>) -> Vec<Output> {
    let mut engine = Engine::new(cfg);
    let mut out = Vec::new();
    for ev in events {
        engine.push(ev, &mut out);
    }
    engine.finish(&mut out);
    out
}

pub fn run(events: Vec<Event>) -> Vec<Output> {
    run_with(EngineConfig::default(), events)
}

pub fn stops(out: &[Output]) -> Vec<ProcessStop> {
    out.iter()
        .filter_map(|o| match o {
            Output::ProcessStop(s) => Some(s.clone()),
            _ => None,
        })
        .collect()
}

/// The one record of `pid` (panics if there is not exactly one).
pub fn stop_of(out: &[Output], pid: u32) -> ProcessStop {
    let mut v: Vec<_> = stops(out).into_iter().filter(|s| s.pid == pid).collect();
    assert_eq!(v.len(), 1, "records of pid {pid}: {v:#?}");
    v.remove(0)
}

pub fn container_stops(out: &[Output]) -> Vec<super::ContainerStop> {
    out.iter()
        .filter_map(|o| match o {
            Output::ContainerStop(c) => Some(c.clone()),
            _ => None,
        })
        .collect()
}

pub fn approx(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-6
}

// Common actors: the two short-lived `runc kill` processes a shim (pid 50) starts.
/// The graceful stop of S1: the runtime's SIGTERM to `app`, which handles it; delivered at
/// `deliver_ms`, exit 0 at `exit_ms`.
pub fn handled_runtime_term(app: &Task, deliver_ms: f64, exit_ms: f64) -> Vec<Event> {
    vec![
        generate(0.0, TERM, &runc_term(), app).handles(&[TERM]).ev(),
        deliver(deliver_ms, TERM, app, Disposition::Handler),
        exit_code(exit_ms, app, 0),
    ]
}

pub fn runc_term() -> Task {
    task(60, "runc").ppid(50)
}
pub fn runc_kill() -> Task {
    task(61, "runc").ppid(50)
}
