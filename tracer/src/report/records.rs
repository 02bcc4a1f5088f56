//! The stops a report is made of: [`Collector`] turns the records it is given (the engine's
//! output over a journal, or record lines read back, see [`super::read`]) into [`Stop`]s,
//! merged and deduplicated by node and identity. A container stop held by its pod's record is
//! shown in the pod's lane.
use std::collections::HashSet;

use serde_json::Value;

use crate::engine::Output;
use crate::event::WallTime;
use crate::output::OutputSink;

/// What a lane shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StopKind {
    Pod,
    Container,
    /// A host process (no container).
    Process,
}

/// A signal mark on a lane.
#[derive(Clone, Debug, PartialEq)]
pub struct Mark {
    pub at_us: i64,
    pub signal: String,
    pub sender: String,
    pub result: String,
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
    pub diagnosis: String,
    pub hint: Option<String>,
    pub killed: bool,
    /// When the grace ran out: the runtime's SIGKILL, or started + grace.
    pub deadline_us: Option<i64>,
    /// The preStop phase (start, end).
    pub prestop_us: Option<(i64, i64)>,
    pub marks: Vec<Mark>,
    /// Sub-lanes: a pod's containers, a container's processes.
    pub parts: Vec<Part>,
    /// The record as it came (for the details view).
    pub record: Value,
}

/// A container of a pod, or a process of a container: a sub-lane.
#[derive(Clone, Debug, PartialEq)]
pub struct Part {
    pub label: String,
    pub started_us: i64,
    pub ended_us: Option<i64>,
    pub diagnosis: String,
}

fn time_us(v: &Value) -> Option<i64> {
    v.as_str().and_then(WallTime::parse).map(WallTime::micros)
}

fn s(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

fn marks_of(processes: &[&Value]) -> Vec<Mark> {
    let mut out: Vec<Mark> = processes
        .iter()
        .flat_map(|p| p["signals"].as_array().into_iter().flatten())
        .filter_map(|e| {
            Some(Mark {
                at_us: time_us(&e["at"])?,
                signal: s(&e["signal"]),
                sender: e["sender"]["comm"].as_str().unwrap_or("?").to_string(),
                result: s(&e["result"]),
            })
        })
        .collect();
    out.sort_by_key(|m| m.at_us);
    out.dedup_by(|a, b| a.at_us == b.at_us && a.signal == b.signal);
    out
}

fn part_of(label: String, rec: &Value) -> Option<Part> {
    Some(Part {
        label,
        started_us: time_us(&rec["started"]).or_else(|| time_us(&rec["time"]))?,
        ended_us: time_us(&rec["ended"]).or_else(|| time_us(&rec["exit"]["at"])),
        diagnosis: s(&rec["diagnosis"]),
    })
}

/// The time the grace ran out: the first SIGKILL from the runtime or the same sender.
fn deadline(rec: &Value, started: i64, processes: &[&Value]) -> Option<i64> {
    let kill = marks_of(processes)
        .into_iter()
        .find(|m| m.signal == "SIGKILL" && m.sender != "?");
    kill.map(|k| k.at_us)
        .or_else(|| rec["grace_s"].as_f64().map(|g| started + (g * 1e6) as i64))
}

fn container_group(c: &Value) -> String {
    match (c["namespace"].as_str(), c["workload"].as_str()) {
        (Some(ns), Some(w)) => format!("{ns}/{w}"),
        (Some(ns), None) => ns.to_string(),
        _ => format!("containers ({})", c["runtime"].as_str().unwrap_or("?")),
    }
}

fn container_label(c: &Value) -> String {
    c["name"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| c["id"].as_str().unwrap_or("?").chars().take(12).collect())
}

/// A [`Stop`] from one record (`pod_stop`, `container_stop`, or a host `process_stop`).
/// `None` for other records and for a container's or pod's parts (shown in their parent).
pub fn stop_of(rec: Value, node: &str) -> Option<Stop> {
    let node = rec["node"].as_str().unwrap_or(node).to_string();
    let kind = match rec["type"].as_str()? {
        "pod_stop" => StopKind::Pod,
        "container_stop" => StopKind::Container,
        "process_stop" if rec["container"].is_null() => StopKind::Process,
        _ => return None,
    };
    let started = time_us(&rec["started"]).or_else(|| time_us(&rec["time"]))?;
    let ended = time_us(&rec["ended"]).or_else(|| time_us(&rec["exit"]["at"]));
    let (group, label, parts, procs): (String, String, Vec<Part>, Vec<&Value>) = match kind {
        StopKind::Pod => {
            let containers: Vec<&Value> =
                rec["containers"].as_array().into_iter().flatten().collect();
            let parts = containers
                .iter()
                .filter_map(|c| part_of(container_label(&c["container"]), c))
                .collect();
            let procs = containers
                .iter()
                .flat_map(|c| c["processes"].as_array().into_iter().flatten())
                .collect();
            let group = match (rec["namespace"].as_str(), rec["workload"].as_str()) {
                (Some(ns), Some(w)) => format!("{ns}/{w}"),
                (Some(ns), None) => ns.to_string(),
                _ => "pods".into(),
            };
            (group, s(&rec["pod"]), parts, procs)
        }
        StopKind::Container => {
            let procs: Vec<&Value> = rec["processes"].as_array().into_iter().flatten().collect();
            let parts = procs
                .iter()
                .filter_map(|p| part_of(format!("{}[{}]", s(&p["comm"]), p["pid"]), p))
                .collect();
            (
                container_group(&rec["container"]),
                container_label(&rec["container"]),
                parts,
                procs,
            )
        }
        StopKind::Process => (
            "host".into(),
            format!("{}[{}]", s(&rec["comm"]), rec["pid"]),
            Vec::new(),
            vec![&rec],
        ),
    };
    let marks = marks_of(&procs);
    let deadline_us = if rec["killed"] == true || rec["overrun"] == true {
        deadline(&rec, started, &procs)
    } else {
        None
    };
    let prestop = rec["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(std::iter::once(&rec))
        .filter_map(|c| {
            let p = &c["prestop"];
            let start = time_us(&p["start"])?;
            let end = time_us(&p["end"]).unwrap_or(started);
            Some((start, end))
        })
        .min();
    Some(Stop {
        kind,
        node,
        group,
        label,
        started_us: started.min(prestop.map_or(started, |p| p.0)),
        ended_us: ended,
        duration_s: rec["duration_s"].as_f64().unwrap_or(0.0),
        diagnosis: s(&rec["diagnosis"]),
        hint: rec["hint"].as_str().map(str::to_string),
        killed: rec["killed"] == true || rec["overrun"] == true,
        deadline_us,
        prestop_us: prestop,
        marks,
        parts,
        record: rec,
    })
}

/// Collects stops, deduplicated, and counts what was skipped.
#[derive(Default)]
pub struct Collector {
    pub stops: Vec<Stop>,
    seen: HashSet<(String, StopKind, String, i64)>,
    /// Records seen more than once (from overlapping inputs).
    pub duplicates: u64,
    /// The node of records that do not name one (a journal's host).
    pub default_node: String,
}

impl Collector {
    pub fn new(default_node: &str) -> Self {
        Self {
            default_node: default_node.to_string(),
            ..Self::default()
        }
    }

    /// Adds one record, if it is a stop this view shows.
    pub fn record(&mut self, rec: Value) {
        let Some(stop) = stop_of(rec, &self.default_node) else {
            return;
        };
        let id = match stop.kind {
            StopKind::Pod => s(&stop.record["pod_uid"]),
            StopKind::Container => s(&stop.record["container"]["id"]),
            StopKind::Process => stop.record["pid"].to_string(),
        };
        if !self
            .seen
            .insert((stop.node.clone(), stop.kind, id, stop.started_us))
        {
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
            .filter(|s| s.kind == StopKind::Pod)
            .flat_map(|s| {
                s.record["containers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|c| (s.node.clone(), self::s(&c["container"]["id"])))
                    .collect::<Vec<_>>()
            })
            .collect();
        self.stops.retain(|st| {
            st.kind != StopKind::Container
                || !in_pods.contains(&(st.node.clone(), s(&st.record["container"]["id"])))
        });
        self
    }
}

impl OutputSink for Collector {
    fn output(&mut self, o: &Output) -> std::io::Result<()> {
        let rec = match o {
            Output::Timeline(_) => return Ok(()),
            Output::ProcessStop(p) if p.container.is_some() => return Ok(()),
            other => serde_json::to_value(other).map_err(std::io::Error::other)?,
        };
        self.record(rec);
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
