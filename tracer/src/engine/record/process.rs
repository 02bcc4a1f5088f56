//! The per-process shutdown record ([`ProcessStop`], the public JSON schema, one object per
//! line), its parts (signals, forwards, the exit) and the live timeline lines
//! ([`TimelineEvent`]).
//!
//! Times are [`WallTime`]s from event timestamps, shown as RFC 3339 strings
//! ([`crate::event::rfc3339`]), so a record depends only on the events that produced it; names
//! are inline [`Comm`]s (JSON strings).
use std::borrow::Cow;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::diagnosis::Diagnosis;
use super::wire::{
    de_container, de_disposition, de_dispositions, de_opt_signal, de_result, de_signal,
    ser_container, ser_disposition, ser_dispositions, ser_opt_signal, ser_result, ser_signal,
};
use crate::container::ContainerInfo;
use crate::engine::classify::SenderClass;
use crate::event::{Comm, Disposition, SigResult, Signal, StopDispositions, WallTime};

/// A process named by host pid and comm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Peer {
    pub pid: u32,
    pub comm: Comm,
}

/// A signal the stopping process received during its shutdown.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SignalEntry {
    /// Generation time (delivery time when the generation was not seen).
    pub at: WallTime,
    #[serde(serialize_with = "ser_signal", deserialize_with = "de_signal")]
    pub signal: Signal,
    /// `null` when the generation was not seen (sent before the trace started, or lost).
    pub sender: Option<Peer>,
    #[serde(serialize_with = "ser_result", deserialize_with = "de_result")]
    pub result: SigResult,
    /// The target's disposition for this signal: from the delivery when it was seen
    /// (`default` for a fatal default action), else from the generation.
    #[serde(
        serialize_with = "ser_disposition",
        deserialize_with = "de_disposition"
    )]
    pub disposition: Disposition,
    pub delivered_at: Option<WallTime>,
    pub si_code: i32,
    /// Who sent it in container terms (`null` when the generation was not seen).
    #[serde(default)]
    pub sender_class: Option<SenderClass>,
}

/// A signal the stopping process sent to one of its children (forwarding).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ForwardEntry {
    pub at: WallTime,
    #[serde(serialize_with = "ser_signal", deserialize_with = "de_signal")]
    pub signal: Signal,
    pub target: Peer,
    #[serde(serialize_with = "ser_result", deserialize_with = "de_result")]
    pub result: SigResult,
}

/// How the process ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExitEntry {
    pub at: WallTime,
    /// Exit status when it exited normally.
    pub code: Option<i32>,
    /// Terminating signal when a signal ended it.
    #[serde(serialize_with = "ser_opt_signal", deserialize_with = "de_opt_signal")]
    pub signal: Option<Signal>,
    pub core_dumped: bool,
}

impl ExitEntry {
    /// How the process ended: "exited", "killed" (SIGKILL), "signaled" or "unknown".
    pub fn outcome(&self) -> &'static str {
        match (self.code, self.signal) {
            (Some(_), _) => "exited",
            (None, Some(Signal::KILL)) => "killed",
            (None, Some(_)) => "signaled",
            (None, None) => "unknown",
        }
    }
}

/// How a process or container whose exit may be unknown ended (see [`ExitEntry::outcome`]).
pub fn outcome(exit: Option<&ExitEntry>) -> &'static str {
    exit.map_or("unknown", ExitEntry::outcome)
}

/// Where `grace_s` comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GraceSource {
    /// Gap between the first stop signal and the SIGKILL from the same sender.
    Observed,
    /// `EngineConfig::grace_s` (`--grace`), used when none was observed or declared.
    Configured,
    /// Declared by the runtime for the process's container (a pod's
    /// terminationGracePeriodSeconds, docker's stop timeout), used when none was observed.
    Declared,
}

/// The shutdown record of one process: the public JSON schema (`"type": "process_stop"`).
///
/// Timing fields:
/// - `duration_s`: first stop signal → exit; when the process did not exit during the trace,
///   first stop signal → the end of observation (trace end, timeout, eviction).
/// - `grace_s`: observed grace (first stop signal → SIGKILL from the same sender: same pid,
///   or same comm and parent pid, e.g. two `runc kill` children of one shim), else the
///   configured grace when the first stop signal is not SIGKILL, else `null`.
/// - `killed`: a user-space SIGKILL (si_code ≠ SI_KERNEL) followed a non-SIGKILL stop signal
///   before the exit: the runtime had to escalate. A SIGKILL-first stop (`force_killed`) and
///   kernel kills (OOM, namespace teardown) are not escalations.
/// - `overrun`: `killed`, or (grace known, no SIGKILL) the process outlived the grace.
/// - `overrun_s`: time from the end of the grace period (first stop signal + `grace_s`, or the
///   SIGKILL when no grace is known) to the exit (or end of observation); ≥ 0, and 0 when not
///   overrun.
/// - `near_overrun`: not overrun, exited, and the exit came after 80 % of the known grace.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "process_stop")]
pub struct ProcessStop {
    /// RFC 3339 time of the first stop signal (of the OOM kill when no signal was seen).
    pub time: WallTime,
    pub pid: u32,
    pub ns_pid: u32,
    pub comm: Comm,
    pub ppid: u32,
    pub cgroup_id: u64,
    #[serde(serialize_with = "ser_container", deserialize_with = "de_container")]
    pub container: Option<Arc<ContainerInfo>>,
    pub ns_init: bool,
    /// The first stop signal (`null` for an OOM kill whose SIGKILL was not seen).
    #[serde(serialize_with = "ser_opt_signal", deserialize_with = "de_opt_signal")]
    pub stop_signal: Option<Signal>,
    /// What the process had installed for SIGTERM, SIGINT, SIGQUIT and SIGHUP when the first
    /// stop signal was generated (`null` when no generation was seen).
    #[serde(
        serialize_with = "ser_dispositions",
        deserialize_with = "de_dispositions"
    )]
    pub dispositions: Option<StopDispositions>,
    pub signals: Vec<SignalEntry>,
    pub forwarded: Vec<ForwardEntry>,
    /// Children (same cgroup, or killed by this init's namespace teardown) that got no stop
    /// signal from this process.
    pub children_not_signalled: Vec<Peer>,
    pub exit: Option<ExitEntry>,
    pub duration_s: f64,
    pub grace_s: Option<f64>,
    pub grace_source: Option<GraceSource>,
    pub killed: bool,
    /// Time of the escalation SIGKILL when `killed`.
    pub killed_at: Option<WallTime>,
    pub overrun: bool,
    pub overrun_s: f64,
    pub near_overrun: bool,
    /// The agent restarted while this stop went on: the record was finished by the next agent,
    /// which rebuilt its beginning from the journal.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub agent_restarted_during: bool,
    pub diagnosis: Diagnosis,
    pub hint: Option<Cow<'static, str>>,
    pub complete: bool,
    pub incomplete_reason: Option<String>,
}

impl ProcessStop {
    /// When its grace ran out: the escalation SIGKILL, else the first stop signal plus the
    /// grace (`None` when neither is known).
    pub fn grace_end(&self) -> Option<WallTime> {
        self.killed_at.or_else(|| {
            let grace_us = (self.grace_s? * 1e6) as i64;
            Some(WallTime::from_micros(
                self.time.micros().saturating_add(grace_us),
            ))
        })
    }
}

/// How a timeline line's signal came about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SignalOrigin {
    /// kill()/tgkill() from user space.
    User,
    /// A kernel-generated SIGKILL (OOM killer or unexplained).
    Kernel,
    /// SIGKILL from a dying PID-namespace init (namespace teardown).
    NamespaceTeardown,
}

/// What a timeline line says.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "what", rename_all = "snake_case")]
pub enum TimelineWhat {
    /// A signal was generated: a stop signal to anyone, or any signal forwarded to a child by a
    /// process in a shutdown.
    Generate {
        #[serde(serialize_with = "ser_signal")]
        signal: Signal,
        sender: Peer,
        target: Peer,
        #[serde(serialize_with = "ser_result")]
        result: SigResult,
        #[serde(serialize_with = "ser_disposition")]
        disposition: Disposition,
        si_code: i32,
        origin: SignalOrigin,
        sender_class: SenderClass,
        /// Sent by a process in a shutdown to its child.
        forwarded: bool,
        /// A SIGKILL after an earlier stop signal (the runtime escalated).
        escalation: bool,
    },
    /// A stop signal was delivered to a thread of the process.
    Deliver {
        #[serde(serialize_with = "ser_signal")]
        signal: Signal,
        tid: u32,
        #[serde(serialize_with = "ser_disposition")]
        disposition: Disposition,
        /// Delivery reported SIGKILL, but it is the default action of this signal.
        #[serde(serialize_with = "ser_opt_signal")]
        converted_from: Option<Signal>,
    },
    /// A process in a shutdown exited.
    Exit {
        exit: ExitEntry,
        /// Seconds since its first stop signal.
        after_s: f64,
    },
    /// The OOM killer chose this process.
    OomVictim { invoker_pid: u32 },
}

/// One line of the live timeline. `pid`/`comm` are the process the line is about (target,
/// receiver, exiting process, OOM victim).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type", rename = "timeline")]
pub struct TimelineEvent {
    pub time: WallTime,
    pub mono_ns: u64,
    pub wall_ns: i64,
    pub pid: u32,
    pub comm: Comm,
    pub cgroup_id: u64,
    #[serde(serialize_with = "ser_container")]
    pub container: Option<Arc<ContainerInfo>>,
    #[serde(flatten)]
    pub what: TimelineWhat,
}
