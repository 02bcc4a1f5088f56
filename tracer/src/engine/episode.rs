//! What the engine keeps per process and per shutdown: the tracked process ([`Proc`]), one
//! shutdown's episode ([`Episode`]) with the signals, forwards and exit it collected, and the
//! per-episode caps. A leaf: the tracker ([`super::state`]) owns them, the event handlers
//! ([`super::apply`]) fill them, the rules ([`super::diagnose`]) read them.
use std::num::NonZeroU64;

use super::classify::SenderClass;
use super::record::{Peer, SignalOrigin};
use crate::event::{Comm, Disposition, ExitStatus, SigResult, Signal, StopDispositions, Task};

/// `si_code` of kernel-originated signals.
pub(super) use tracer_common::SI_KERNEL;
/// Per-episode caps on the lists a record carries.
pub(super) const MAX_SIGNALS: usize = 64;
pub(super) const MAX_FORWARDED: usize = 64;
pub(super) const MAX_CHILDREN: usize = 32;
/// How far back an OOM victim event looks for the victim's self-sent kernel SIGKILL.
pub(super) const OOM_MATCH_NS: u64 = 1_000_000_000;
pub(super) const INTERNAL_KILL_STASH: usize = 256;

/// What is kept for a tracked process (small: 32 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Proc {
    pub start_ns: u64,
    pub last_seen_ns: u64,
    /// Its episode (open, or ended and waiting to be emitted).
    pub episode: Option<NonZeroU64>,
    /// Sticky: some event showed it as a PID-namespace init.
    pub ns_init: bool,
}

/// How a signal came about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum SigKind {
    User,
    /// Kernel SIGKILL not from a dying namespace init (OOM killer, or unexplained).
    Kernel,
    /// Kernel SIGKILL from the dying init of the target's PID namespace.
    Orphan,
}

impl SigKind {
    pub(super) fn origin(self) -> SignalOrigin {
        match self {
            Self::User => SignalOrigin::User,
            Self::Kernel => SignalOrigin::Kernel,
            Self::Orphan => SignalOrigin::NamespaceTeardown,
        }
    }
}

/// A signal received during an episode.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct SigRec {
    pub mono: u64,
    pub wall: i64,
    pub signal: Signal,
    pub sender: Option<Peer>,
    pub result: SigResult,
    pub disposition: Disposition,
    pub si_code: i32,
    pub kind: SigKind,
    pub delivered_wall: Option<i64>,
    /// `None` when the generation was not seen.
    pub sender_class: Option<SenderClass>,
}

/// A signal sent by the episode's process to one of its children.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Fwd {
    pub wall: i64,
    pub signal: Signal,
    pub stop: bool,
    pub target: Peer,
    pub result: SigResult,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct ExitRec {
    pub mono: u64,
    pub wall: i64,
    pub status: ExitStatus,
}

/// Who sent the first stop signal (to recognise the escalation's sender).
#[derive(Clone, Debug, PartialEq)]
pub(super) struct SenderId {
    pub pid: u32,
    pub ppid: u32,
    pub comm: Comm,
}

impl SenderId {
    /// Same pid, or same comm with the same parent (`runc kill TERM` then `runc kill KILL`).
    pub(super) fn same(&self, t: &Task) -> bool {
        self.pid == t.pid || (self.ppid != 0 && self.ppid == t.ppid && self.comm == t.comm)
    }
}

/// One shutdown of one process: from its first stop signal to its death (and a short settle
/// time after it, to see the namespace teardown its death causes).
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Episode {
    pub id: u64,
    pub pid: u32,
    pub start_ns: u64,
    pub ns_pid: u32,
    pub comm: Comm,
    pub ppid: u32,
    pub cgroup_id: u64,
    pub ns_init: bool,
    pub first_mono: u64,
    pub first_wall: i64,
    pub last_mono: u64,
    /// The first stop signal; `None` only for an OOM kill whose SIGKILL was not seen.
    pub first_signal: Option<Signal>,
    pub first_sender: Option<SenderId>,
    pub first_result: Option<SigResult>,
    /// The target's disposition for the first stop signal.
    pub first_disposition: Option<Disposition>,
    pub first_blocked: bool,
    pub dispositions: Option<StopDispositions>,
    pub signals: Vec<SigRec>,
    /// Entries of `signals` not delivered yet, and bit `n - 1` for each signal `n` in it: a
    /// delivery finds its generation, or that it has none, without scanning the list (a
    /// process that handles a flood of stop signals has a full list).
    undelivered: usize,
    listed: u64,
    signals_capped: bool,
    pub forwarded: Vec<Fwd>,
    pub children: Vec<Peer>,
    pub exit: Option<ExitRec>,
    pub oom_invoker: Option<u32>,
    pub orphan_killed: bool,
    pub kernel_killed: bool,
    /// A stop signal was delivered to a handler.
    pub handler_ran: bool,
    /// First user-space SIGKILL after a non-SIGKILL first stop signal: (mono, wall).
    pub kill: Option<(u64, i64)>,
    /// First SIGKILL from the first stop signal's sender (observed grace end).
    pub grace_kill: Option<u64>,
    pub incomplete: Vec<String>,
}

impl Episode {
    pub(super) fn new(id: u64, t: &Task, ns_init: bool, mono: u64, wall: i64) -> Self {
        Self {
            id,
            pid: t.pid,
            start_ns: t.start_ns,
            ns_pid: t.ns_pid,
            comm: t.comm,
            ppid: t.ppid,
            cgroup_id: t.cgroup_id,
            ns_init: ns_init || t.ns_init,
            first_mono: mono,
            first_wall: wall,
            last_mono: mono,
            first_signal: None,
            first_sender: None,
            first_result: None,
            first_disposition: None,
            first_blocked: false,
            dispositions: None,
            signals: Vec::new(),
            undelivered: 0,
            listed: 0,
            signals_capped: false,
            forwarded: Vec::new(),
            children: Vec::new(),
            exit: None,
            oom_invoker: None,
            orphan_killed: false,
            kernel_killed: false,
            handler_ran: false,
            kill: None,
            grace_kill: None,
            incomplete: Vec::new(),
        }
    }

    pub(super) fn mark_incomplete(&mut self, reason: impl Into<String>) {
        let reason = reason.into();
        if !self.incomplete.contains(&reason) {
            self.incomplete.push(reason);
        }
    }

    pub(super) fn add_child(&mut self, t: &Task) {
        if t.pid != self.pid
            && self.children.len() < MAX_CHILDREN
            && !self.children.iter().any(|c| c.pid == t.pid)
        {
            self.children.push(peer(t));
        }
    }

    pub(super) fn push_signal(&mut self, rec: SigRec) {
        if self.signals.len() < MAX_SIGNALS {
            self.undelivered += usize::from(rec.delivered_wall.is_none());
            self.listed |= rec.signal.bit();
            self.signals.push(rec);
        } else if !self.signals_capped {
            // Said once: the list stays full.
            self.signals_capped = true;
            self.mark_incomplete(format!(
                "more than {MAX_SIGNALS} signals; later ones are not listed"
            ));
        }
    }

    /// The first listed generation of `signal` not delivered yet that `pick` accepts.
    pub(super) fn undelivered_position(
        &self,
        signal: Signal,
        pick: impl Fn(&SigRec) -> bool,
    ) -> Option<usize> {
        if self.undelivered == 0 {
            return None;
        }
        self.signals
            .iter()
            .position(|r| r.signal == signal && r.delivered_wall.is_none() && pick(r))
    }

    /// Marks listed signal `i` delivered.
    pub(super) fn deliver(&mut self, i: usize, wall: i64, disposition: Disposition) {
        let r = &mut self.signals[i];
        if r.delivered_wall.is_none() {
            self.undelivered -= 1;
        }
        r.delivered_wall = Some(wall);
        r.disposition = disposition;
    }

    /// Some signal `signal` is listed.
    pub(super) fn lists(&self, signal: Signal) -> bool {
        match signal.bit() {
            0 => self.signals.iter().any(|r| r.signal == signal),
            bit => self.listed & bit != 0,
        }
    }

    pub(super) fn is_open(&self) -> bool {
        self.exit.is_none()
    }
}

pub(super) fn peer(t: &Task) -> Peer {
    Peer {
        pid: t.pid,
        comm: t.comm,
    }
}

pub(super) fn same_start(a: u64, b: u64) -> bool {
    a == 0 || b == 0 || a == b
}
