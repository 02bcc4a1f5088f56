//! The per-container shutdown record ([`ContainerStop`]) and the runtime execs it shows
//! ([`ExecEntry`]: preStop hooks, exec probes, `kubectl exec`).
use std::borrow::Cow;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::diagnosis::Diagnosis;
use super::process::{ExitEntry, Peer, ProcessStop};
use super::wire::{de_container_req, ser_container_req};
use crate::container::ContainerInfo;
use crate::engine::classify::SenderClass;
use crate::event::{Comm, Signal, WallTime};

/// One runtime exec into a container.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExecEntry {
    pub pid: u32,
    pub comm: Comm,
    /// The executable as the runtime exec'd it (never its arguments).
    pub path: String,
    pub start: WallTime,
    /// `null` while it runs.
    pub end: Option<WallTime>,
    /// Start to end; `null` while it runs.
    pub duration_s: Option<f64>,
    pub exit: Option<ExitEntry>,
    /// It ended by SIGKILL.
    pub killed: bool,
    #[serde(skip)]
    pub start_mono: u64,
    #[serde(skip)]
    pub end_mono: Option<u64>,
}

impl ExecEntry {
    /// Its run time up to `t` (mono) when it had not ended by then.
    pub fn ran_until(&self, t: u64) -> f64 {
        let end = self.end_mono.map_or(t, |e| e.min(t).max(self.start_mono));
        end.saturating_sub(self.start_mono) as f64 / 1e9
    }
}

/// The shutdown record of one container (`"type": "container_stop"`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "container_stop")]
pub struct ContainerStop {
    /// RFC 3339 time of the first stop signal from outside the container (else the first stop
    /// signal to any of its processes).
    pub started: WallTime,
    /// RFC 3339 time the last of its processes was gone (`null` if none was seen exiting).
    pub ended: Option<WallTime>,
    /// The stop signal (the first signal from outside the container) and who sent it.
    #[serde(
        serialize_with = "super::wire::ser_opt_signal",
        deserialize_with = "super::wire::de_opt_signal",
        default
    )]
    pub stop_signal: Option<Signal>,
    pub sender: Option<Peer>,
    pub sender_class: Option<SenderClass>,
    #[serde(
        serialize_with = "ser_container_req",
        deserialize_with = "de_container_req"
    )]
    pub container: Arc<ContainerInfo>,
    pub cgroup_id: u64,
    /// Host pid of its PID-namespace init.
    pub init_pid: u32,
    /// How the init ended.
    pub exit: Option<ExitEntry>,
    /// First stop signal → last exit among its processes.
    pub duration_s: f64,
    /// The init's grace period (observed or configured).
    pub grace_s: Option<f64>,
    /// Some process needed a SIGKILL escalation.
    pub killed: bool,
    /// One of its process records spans an agent restart ([`super::ProcessStop`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub agent_restarted_during: bool,
    /// The runtime's stop signal to its SIGKILL of the init (`null` without that SIGKILL):
    /// the time the app really had.
    pub effective_grace_s: Option<f64>,
    /// The declared grace: the pod's terminationGracePeriodSeconds as the runtime's state
    /// records it (`termination_grace_source` "runtime"), else the effective grace plus the
    /// preStop hook's run time ("inferred"); a plain docker container's stop timeout
    /// (`--stop-timeout`, else docker's 10 s: "docker").
    pub termination_grace_s: Option<f64>,
    pub termination_grace_source: Option<String>,
    /// The preStop hook (Kubernetes): the runtime exec that ran just before the stop signal.
    pub prestop: Option<ExecEntry>,
    /// The hook's run time, up to its end or to the runtime's SIGKILL if it outlived that.
    pub prestop_s: Option<f64>,
    /// Runtime execs into the container around the stop (hooks, probes, `kubectl exec`).
    #[serde(default)]
    pub execs: Vec<ExecEntry>,
    /// Some process overran its grace period.
    pub overrun: bool,
    /// The largest overrun among its processes.
    pub overrun_s: f64,
    pub diagnosis: Diagnosis,
    pub hint: Option<Cow<'static, str>>,
    /// The process records, first stop first.
    pub processes: Vec<ProcessStop>,
    pub complete: bool,
    pub incomplete_reason: Option<String>,
}

impl ContainerStop {
    /// When its grace ran out: the runtime's SIGKILL of the init (the effective grace), else
    /// its init's [`ProcessStop::grace_end`].
    pub fn grace_end(&self) -> Option<WallTime> {
        match self.effective_grace_s {
            Some(e) => Some(WallTime::from_micros(
                self.started.micros().saturating_add((e * 1e6) as i64),
            )),
            None => self
                .processes
                .iter()
                .find(|p| p.pid == self.init_pid)
                .and_then(ProcessStop::grace_end),
        }
    }

    /// How the init ended: "exited", "killed" (SIGKILL), "signaled" or "unknown".
    pub fn outcome(&self) -> &'static str {
        super::process::outcome(self.exit.as_ref())
    }
}
