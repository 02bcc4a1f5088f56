//! Output types of the engine: the per-process shutdown record ([`ProcessStop`], the public
//! JSON schema, one object per line), the live timeline lines ([`TimelineEvent`]), the
//! diagnosis vocabulary ([`Diagnosis`]) and the serde helpers they need.
//!
//! Times are [`WallTime`]s from event timestamps, shown as RFC 3339 strings
//! ([`crate::event::rfc3339`]), so a record depends only on the events that produced it; names
//! are inline [`Comm`]s (JSON strings).
use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::container::ContainerInfo;
use crate::event::{Comm, Disposition, SigResult, Signal, StopDispositions, WallTime};

/// One line of engine output, in processing order.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Output {
    /// A relevant event for a live terminal timeline.
    Timeline(TimelineEvent),
    /// The shutdown record of one process.
    ProcessStop(ProcessStop),
    /// The shutdown record of one container (after the records of its processes).
    ContainerStop(super::containers::ContainerStop),
    /// The shutdown record of one Kubernetes pod (after the records of its containers).
    PodStop(super::pods::PodStop),
}

/// What went wrong (or right) in one shutdown. The snake_case names are a public interface
/// (JSON, metric labels, dashboards).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Diagnosis {
    Graceful,
    DefaultAction,
    IgnoredByPid1,
    ShellNotForwarding,
    WrongSignal,
    SignalIgnored,
    SignalBlocked,
    SlowHandler,
    ForceKilled,
    OomKilled,
    OrphanKilled,
    SlowPrestop,
}

impl Diagnosis {
    /// Every diagnosis, in vocabulary order.
    pub const ALL: [Diagnosis; 12] = [
        Self::Graceful,
        Self::DefaultAction,
        Self::IgnoredByPid1,
        Self::ShellNotForwarding,
        Self::WrongSignal,
        Self::SignalIgnored,
        Self::SignalBlocked,
        Self::SlowHandler,
        Self::ForceKilled,
        Self::OomKilled,
        Self::OrphanKilled,
        Self::SlowPrestop,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Graceful => "graceful",
            Self::DefaultAction => "default_action",
            Self::IgnoredByPid1 => "ignored_by_pid1",
            Self::ShellNotForwarding => "shell_not_forwarding",
            Self::WrongSignal => "wrong_signal",
            Self::SignalIgnored => "signal_ignored",
            Self::SignalBlocked => "signal_blocked",
            Self::SlowHandler => "slow_handler",
            Self::ForceKilled => "force_killed",
            Self::OomKilled => "oom_killed",
            Self::OrphanKilled => "orphan_killed",
            Self::SlowPrestop => "slow_prestop",
        }
    }

    /// The one-line fix shown to the user (`None` for `graceful` and `force_killed`).
    pub fn hint(self) -> Option<&'static str> {
        match self {
            Self::Graceful | Self::ForceKilled => None,
            Self::DefaultAction => Some("install a handler if in-flight work matters"),
            Self::IgnoredByPid1 => {
                Some("handle the signal, or run under an init (tini, dumb-init, `--init`)")
            }
            Self::ShellNotForwarding => {
                Some("`exec` the app from the script, or trap and forward, or use tini/dumb-init")
            }
            Self::WrongSignal => Some("set STOPSIGNAL to the handled signal, or handle SIGTERM"),
            Self::SignalIgnored => Some("stop ignoring it"),
            Self::SignalBlocked => Some("unblock it / investigate D-state"),
            Self::SlowHandler => {
                Some("shorten cleanup or raise the grace period (by how much is in the record)")
            }
            Self::OomKilled => Some("raise the memory limit / fix the leak"),
            Self::OrphanKilled => Some("the init must stop and reap its children"),
            Self::SlowPrestop => {
                Some("shorten the preStop hook or raise terminationGracePeriodSeconds")
            }
        }
    }
}

impl fmt::Display for Diagnosis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

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
    pub sender_class: Option<super::SenderClass>,
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
    /// `EngineConfig::grace_s` (`--grace`), used when none was observed.
    Configured,
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
    pub diagnosis: Diagnosis,
    pub hint: Option<Cow<'static, str>>,
    pub complete: bool,
    pub incomplete_reason: Option<String>,
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
        sender_class: super::SenderClass,
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

// ---- serde helpers -----------------------------------------------------------------------

fn ser_signal<S: Serializer>(sig: &Signal, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&sig.name())
}

pub(super) fn ser_opt_signal<S: Serializer>(sig: &Option<Signal>, s: S) -> Result<S::Ok, S::Error> {
    match sig {
        Some(sig) => s.serialize_str(&sig.name()),
        None => s.serialize_none(),
    }
}

fn ser_result<S: Serializer>(r: &SigResult, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(r.as_str())
}

fn ser_disposition<S: Serializer>(d: &Disposition, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(d.as_str())
}

fn ser_container<S: Serializer>(c: &Option<Arc<ContainerInfo>>, s: S) -> Result<S::Ok, S::Error> {
    c.as_deref().serialize(s)
}

pub(super) fn ser_container_req<S: Serializer>(
    c: &Arc<ContainerInfo>,
    s: S,
) -> Result<S::Ok, S::Error> {
    c.as_ref().serialize(s)
}

pub(super) fn de_container_req<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Arc<ContainerInfo>, D::Error> {
    ContainerInfo::deserialize(d).map(Arc::new)
}

fn ser_dispositions<S: Serializer>(d: &Option<StopDispositions>, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let Some(d) = d else {
        return s.serialize_none();
    };
    let mut m = s.serialize_map(None)?;
    for (sig, disp) in d.entries() {
        m.serialize_entry(&sig.name(), disp.as_str())?;
    }
    m.end()
}

fn parse_signal<E: serde::de::Error>(s: &str) -> Result<Signal, E> {
    Signal::parse(s).ok_or_else(|| E::custom(format!("unknown signal {s:?}")))
}

fn parse_disposition<E: serde::de::Error>(s: &str) -> Result<Disposition, E> {
    [
        Disposition::Default,
        Disposition::Ignore,
        Disposition::Handler,
        Disposition::Unknown,
    ]
    .into_iter()
    .find(|d| d.as_str() == s)
    .ok_or_else(|| E::custom(format!("unknown disposition {s:?}")))
}

fn de_signal<'de, D: Deserializer<'de>>(d: D) -> Result<Signal, D::Error> {
    parse_signal(&String::deserialize(d)?)
}

pub(super) fn de_opt_signal<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Signal>, D::Error> {
    Option::<String>::deserialize(d)?
        .map(|s| parse_signal(&s))
        .transpose()
}

fn de_result<'de, D: Deserializer<'de>>(d: D) -> Result<SigResult, D::Error> {
    let s = String::deserialize(d)?;
    (0..=5)
        .map(SigResult::from_raw)
        .find(|r| r.as_str() == s)
        .ok_or_else(|| serde::de::Error::custom(format!("unknown signal result {s:?}")))
}

fn de_disposition<'de, D: Deserializer<'de>>(d: D) -> Result<Disposition, D::Error> {
    parse_disposition(&String::deserialize(d)?)
}

fn de_container<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Arc<ContainerInfo>>, D::Error> {
    Ok(Option::<ContainerInfo>::deserialize(d)?.map(Arc::new))
}

fn de_dispositions<'de, D: Deserializer<'de>>(d: D) -> Result<Option<StopDispositions>, D::Error> {
    let Some(raw) = Option::<std::collections::BTreeMap<String, String>>::deserialize(d)? else {
        return Ok(None);
    };
    let mut out = StopDispositions::default();
    for (sig, disp) in &raw {
        let (sig, disp) = (parse_signal(sig)?, parse_disposition(disp)?);
        match sig.0 {
            15 => out.term = disp,
            2 => out.int = disp,
            3 => out.quit = disp,
            1 => out.hup = disp,
            _ => out.other = Some((sig, disp)),
        }
    }
    for need in ["SIGTERM", "SIGINT", "SIGQUIT", "SIGHUP"] {
        if !raw.contains_key(need) {
            return Err(serde::de::Error::custom(format!(
                "dispositions without {need}"
            )));
        }
    }
    Ok(Some(out))
}
