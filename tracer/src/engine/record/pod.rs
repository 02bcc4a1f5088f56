//! The per-pod shutdown record ([`PodStop`]) and how its sandbox ended ([`SandboxEnd`]).
use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use super::container::ContainerStop;
use super::diagnosis::Diagnosis;
use super::process::ExitEntry;
use crate::container::workload::Workload;
use crate::event::{Signal, WallTime};

/// How the pod's sandbox (pause) container ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SandboxEnd {
    pub id: String,
    /// RFC 3339 time of its first stop signal (SIGKILL at `StopPodSandbox`).
    pub stopped: WallTime,
    #[serde(
        serialize_with = "super::wire::ser_opt_signal",
        deserialize_with = "super::wire::de_opt_signal",
        default
    )]
    pub stop_signal: Option<Signal>,
    pub exit: Option<ExitEntry>,
}

/// The shutdown record of one pod (`"type": "pod_stop"`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "pod_stop")]
pub struct PodStop {
    /// RFC 3339 time of the first stop signal to any of its containers (or to the sandbox), or
    /// of the first preStop hook's start.
    pub started: WallTime,
    /// RFC 3339 time the sandbox (or, without it, the last container) was gone.
    pub ended: Option<WallTime>,
    pub pod: Option<String>,
    pub namespace: Option<String>,
    pub pod_uid: String,
    #[serde(flatten, default)]
    pub workload: Option<Workload>,
    /// The pod's termination time: `started` → `ended` (preStop hooks included).
    pub duration_s: f64,
    /// The container whose stop took longest: the one that held the pod up.
    pub held_up_by: Option<String>,
    /// Its stop's duration.
    pub held_up_s: f64,
    /// Containers SIGKILLed by the sandbox teardown with no stop signal before.
    pub killed_at_teardown: Vec<String>,
    /// Some container needed a SIGKILL or overran its grace period.
    pub overrun: bool,
    /// One of its container records spans an agent restart.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub agent_restarted_during: bool,
    /// The diagnosis that explains the pod's least clean container (same rank as containers).
    pub diagnosis: Diagnosis,
    pub hint: Option<Cow<'static, str>>,
    /// The sandbox's end; `null` when the trace ended before it.
    pub sandbox: Option<SandboxEnd>,
    /// Its containers' records (the last one per container name), first stop first.
    pub containers: Vec<ContainerStop>,
}

impl PodStop {
    /// When the grace of its first container to run out of it ran out.
    pub fn grace_end(&self) -> Option<WallTime> {
        self.containers
            .iter()
            .filter_map(ContainerStop::grace_end)
            .min()
    }

    /// The pod's name as a person knows it: `namespace/pod`, else its uid.
    pub fn label(&self) -> String {
        match (&self.namespace, &self.pod) {
            (Some(ns), Some(p)) => format!("{ns}/{p}"),
            (None, Some(p)) => p.clone(),
            _ => self.pod_uid.clone(),
        }
    }
}
