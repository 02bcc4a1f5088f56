//! The stops a report is made of: [`Collector`] turns the typed records it is given (the
//! engine's output over a journal, or record lines deserialised back, see [`super::read`])
//! into [`Stop`]s, merged and deduplicated by node and identity. A container stop held by its
//! pod's record is shown in the pod's lane. Labels, deadlines and diagnoses are the records'
//! own ([`ContainerInfo::label`], `grace_end`, [`Diagnosis`]).
use std::collections::HashSet;

use crate::container::ContainerInfo;
use crate::engine::{ContainerStop, Diagnosis, Output, PodStop, ProcessStop};
use crate::event::{SigResult, Signal, WallTime};
use crate::output::OutputSink;

/// What a lane shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StopKind {
    Pod,
    Container,
    /// A host process (no container).
    Process,
}

/// The record a lane shows.
#[derive(Clone, Debug, PartialEq)]
pub enum StopRecord {
    Pod(PodStop),
    Container(ContainerStop),
    /// A host process.
    Process(ProcessStop),
}

impl StopRecord {
    pub fn kind(&self) -> StopKind {
        match self {
            Self::Pod(_) => StopKind::Pod,
            Self::Container(_) => StopKind::Container,
            Self::Process(_) => StopKind::Process,
        }
    }

    /// Every process record it holds, first stop first within each container.
    pub fn processes(&self) -> Vec<&ProcessStop> {
        match self {
            Self::Pod(p) => p.containers.iter().flat_map(|c| &c.processes).collect(),
            Self::Container(c) => c.processes.iter().collect(),
            Self::Process(p) => vec![p],
        }
    }

    /// The preStop hook of the stop (a pod's: its first container's that had one).
    pub fn prestop(&self) -> Option<&crate::engine::ExecEntry> {
        match self {
            Self::Pod(p) => p.containers.iter().find_map(|c| c.prestop.as_ref()),
            Self::Container(c) => c.prestop.as_ref(),
            Self::Process(_) => None,
        }
    }

    /// Its identity within a node: pod uid, container id, or pid.
    fn id(&self) -> String {
        match self {
            Self::Pod(p) => p.pod_uid.clone(),
            Self::Container(c) => c.container.id.clone(),
            Self::Process(p) => p.pid.to_string(),
        }
    }
}

/// A signal mark on a lane.
#[derive(Clone, Debug, PartialEq)]
pub struct Mark {
    pub at_us: i64,
    pub signal: Signal,
    /// The sender's comm ("?" when the generation was not seen).
    pub sender: String,
    pub result: SigResult,
}

/// One stop: a pod, a container outside a pod, or a host process.
#[derive(Clone, Debug, PartialEq)]
pub struct Stop {
    pub kind: StopKind,
    pub node: String,
    /// The lane's group: `namespace/workload`, the container runtime, or "host".
    pub group: String,
    /// The lane's name: the pod, the container, or `comm[pid]`.
    pub label: String,
    pub started_us: i64,
    pub ended_us: Option<i64>,
    pub duration_s: f64,
    pub diagnosis: Diagnosis,
    pub hint: Option<String>,
    pub killed: bool,
    /// When the grace ran out (the record's `grace_end`), for a stop that was killed or
    /// overran.
    pub deadline_us: Option<i64>,
    /// The preStop phase (start, end).
    pub prestop_us: Option<(i64, i64)>,
    pub marks: Vec<Mark>,
    /// Sub-lanes: a pod's containers, a container's processes.
    pub parts: Vec<Part>,
    /// The record (for the details view).
    pub record: StopRecord,
}

/// A container of a pod, or a process of a container: a sub-lane.
#[derive(Clone, Debug, PartialEq)]
pub struct Part {
    pub label: String,
    pub started_us: i64,
    pub ended_us: Option<i64>,
    pub diagnosis: Diagnosis,
}

fn us(t: WallTime) -> i64 {
    t.micros()
}

fn marks_of(processes: &[&ProcessStop]) -> Vec<Mark> {
    let mut out: Vec<Mark> = processes
        .iter()
        .flat_map(|p| &p.signals)
        .map(|e| Mark {
            at_us: us(e.at),
            signal: e.signal,
            sender: e
                .sender
                .map_or_else(|| "?".to_string(), |s| s.comm.as_str().into_owned()),
            result: e.result,
        })
        .collect();
    out.sort_by_key(|m| m.at_us);
    out.dedup_by(|a, b| a.at_us == b.at_us && a.signal == b.signal);
    out
}

fn process_label(p: &ProcessStop) -> String {
    format!("{}[{}]", p.comm.as_str(), p.pid)
}

fn process_part(p: &ProcessStop) -> Part {
    Part {
        label: process_label(p),
        started_us: us(p.time),
        ended_us: p.exit.as_ref().map(|x| us(x.at)),
        diagnosis: p.diagnosis,
    }
}

fn container_group(c: &ContainerInfo) -> String {
    match (&c.namespace, c.workload.as_ref().map(|w| &w.name)) {
        (Some(ns), Some(w)) => format!("{ns}/{w}"),
        (Some(ns), None) => ns.clone(),
        _ => format!("containers ({})", c.runtime),
    }
}

/// A [`Stop`] from one record (`pod_stop`, `container_stop`, or a host `process_stop`).
/// `None` for timeline lines and for a container's processes (shown in their container).
pub fn stop_of(o: &Output, node: &str) -> Option<Stop> {
    let record = match o {
        Output::PodStop(p) => StopRecord::Pod(p.clone()),
        Output::ContainerStop(c) => StopRecord::Container(c.clone()),
        Output::ProcessStop(p) if p.container.is_none() => StopRecord::Process(p.clone()),
        _ => return None,
    };
    let (group, label, parts, started, ended, duration_s, diagnosis, hint, killed, grace_end) =
        match &record {
            StopRecord::Pod(p) => (
                match (&p.namespace, p.workload.as_ref().map(|w| &w.name)) {
                    (Some(ns), Some(w)) => format!("{ns}/{w}"),
                    (Some(ns), None) => ns.clone(),
                    _ => "pods".into(),
                },
                p.pod.clone().unwrap_or_else(|| p.pod_uid.clone()),
                p.containers
                    .iter()
                    .map(|c| Part {
                        label: c.container.label().to_string(),
                        started_us: us(c.started),
                        ended_us: c.ended.map(us),
                        diagnosis: c.diagnosis,
                    })
                    .collect(),
                p.started,
                p.ended,
                p.duration_s,
                p.diagnosis,
                p.hint.as_deref(),
                p.overrun,
                p.grace_end(),
            ),
            StopRecord::Container(c) => (
                container_group(&c.container),
                c.container.label().to_string(),
                c.processes.iter().map(process_part).collect(),
                c.started,
                c.ended,
                c.duration_s,
                c.diagnosis,
                c.hint.as_deref(),
                c.killed || c.overrun,
                c.grace_end(),
            ),
            StopRecord::Process(p) => (
                "host".into(),
                process_label(p),
                Vec::new(),
                p.time,
                p.exit.as_ref().map(|x| x.at),
                p.duration_s,
                p.diagnosis,
                p.hint.as_deref(),
                p.killed || p.overrun,
                p.grace_end(),
            ),
        };
    let started = us(started);
    let prestop = match &record {
        StopRecord::Pod(p) => p
            .containers
            .iter()
            .filter_map(|c| c.prestop.as_ref())
            .map(|x| (us(x.start), x.end.map_or(started, us)))
            .min(),
        _ => record
            .prestop()
            .map(|x| (us(x.start), x.end.map_or(started, us))),
    };
    Some(Stop {
        kind: record.kind(),
        node: node.to_string(),
        group,
        label,
        started_us: started.min(prestop.map_or(started, |p| p.0)),
        ended_us: ended.map(us),
        duration_s,
        diagnosis,
        hint: hint.map(str::to_string),
        killed,
        deadline_us: grace_end.filter(|_| killed).map(us),
        prestop_us: prestop,
        marks: marks_of(&record.processes()),
        parts,
        record,
    })
}

/// Collects stops, deduplicated, and counts what was skipped.
#[derive(Default)]
pub struct Collector {
    pub stops: Vec<Stop>,
    seen: HashSet<(String, StopKind, String, i64)>,
    /// Records seen more than once (from overlapping inputs).
    pub duplicates: u64,
    /// The node of the records given now (a journal's host, a record line's `node`).
    pub node: String,
}

impl Collector {
    pub fn new(node: &str) -> Self {
        Self {
            node: node.to_string(),
            ..Self::default()
        }
    }

    /// Adds one record, if it is a stop this view shows.
    pub fn record(&mut self, o: &Output) {
        let Some(stop) = stop_of(o, &self.node) else {
            return;
        };
        let key = (
            stop.node.clone(),
            stop.kind,
            stop.record.id(),
            stop.started_us,
        );
        if !self.seen.insert(key) {
            self.duplicates += 1;
            return;
        }
        self.stops.push(stop);
    }

    /// The stops to show: a container stop that its pod's record also holds is shown in the
    /// pod's lane only.
    pub fn finish(mut self) -> Self {
        let in_pods: HashSet<(String, String)> = self
            .stops
            .iter()
            .filter_map(|s| match &s.record {
                StopRecord::Pod(p) => Some((s, p)),
                _ => None,
            })
            .flat_map(|(s, p)| {
                p.containers
                    .iter()
                    .map(|c| (s.node.clone(), c.container.id.clone()))
            })
            .collect();
        self.stops.retain(|st| match &st.record {
            StopRecord::Container(c) => {
                !in_pods.contains(&(st.node.clone(), c.container.id.clone()))
            }
            _ => true,
        });
        self
    }
}

impl OutputSink for Collector {
    fn output(&mut self, o: &Output) -> std::io::Result<()> {
        self.record(o);
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
