//! The engine's records, a leaf the state machines import: the per-process, per-container
//! and per-pod shutdown records (the public JSON schema), the timeline lines, the diagnosis
//! vocabulary, and [`Output`], one of them.
mod container;
mod diagnosis;
mod pod;
mod process;
mod wire;

use serde::Serialize;

pub use container::{ContainerStop, ExecEntry};
pub use diagnosis::Diagnosis;
pub use pod::{PodStop, SandboxEnd};
pub use process::{
    outcome, ExitEntry, ForwardEntry, GraceSource, Peer, ProcessStop, SignalEntry, SignalOrigin,
    TimelineEvent, TimelineWhat,
};

/// One line of engine output, in processing order.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Output {
    /// A relevant event for a live terminal timeline.
    Timeline(TimelineEvent),
    /// The shutdown record of one process.
    ProcessStop(ProcessStop),
    /// The shutdown record of one container (after the records of its processes).
    ContainerStop(ContainerStop),
    /// The shutdown record of one Kubernetes pod (after the records of its containers).
    PodStop(PodStop),
}
