//! Pod-level shutdown records ([`PodStop`]): the container records of one Kubernetes pod
//! (same pod uid), closed by the end of the pod's sandbox (pause) container.
//!
//! kubelet deletes a pod by stopping every container with the grace period, then stopping the
//! sandbox (`StopPodSandbox`, which SIGKILLs whatever is still running, then the pause
//! process). So a pod *stopped* when its sandbox's init died. Its record is emitted once no
//! container record of the pod is still being collected and [`POD_SETTLE_NS`] of event time
//! passed after the sandbox's end (the kills of the teardown land within milliseconds), or at
//! the end of the trace.
//!
//! - The sandbox's own records never leave the engine as process or container records: the
//!   pause container runs no workload. Its end is the pod record's `sandbox`.
//! - A container restarted inside a running pod (liveness failure, crash) leaves a record per
//!   run; the pod record keeps the last one per container name.
//! - Container records of a pod whose sandbox is not seen ending are dropped from this layer
//!   after [`POD_WAIT_NS`] without news (they were emitted on their own already), and a pod
//!   record needs at least one container record: a pod whose containers had all exited on
//!   their own (a finished Job) makes none.
//! - `killed_at_teardown`: containers whose first stop signal from outside was SIGKILL, sent
//!   within [`TEARDOWN_NS`] before the sandbox's end: `StopPodSandbox` found them running, and
//!   they never got a stop signal they could handle.
use std::borrow::Cow;
use std::collections::BTreeSet;
use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::record::{ContainerStop, Diagnosis, Output, PodStop, SandboxEnd};
use crate::event::{Signal, WallTime};

/// Event time a pod record waits after its sandbox's end for late container records.
pub const POD_SETTLE_NS: u64 = 500_000_000;
/// Container records of a pod whose sandbox did not end are kept this long without news.
pub const POD_WAIT_NS: u64 = 120_000_000_000;
/// A SIGKILL this close before the sandbox's end is the sandbox teardown's.
pub const TEARDOWN_NS: u64 = 2_000_000_000;
/// Bound on pods with pending container records.
const MAX_PODS: usize = 10_000;

struct PodGroup {
    /// (record, first stop signal mono, end mono)
    containers: Vec<(ContainerStop, u64, u64)>,
    sandbox: Option<(ContainerStop, u64)>,
    last_news: u64,
}

/// Groups container records into pod records.
#[derive(Default)]
pub(super) struct Pods {
    pods: FxHashMap<Arc<str>, PodGroup>,
    /// (last news or sandbox end, pod uid) for the settle and wait expiries.
    due: BTreeSet<(u64, Arc<str>)>,
    /// Pods dropped by the `MAX_PODS` cap.
    pub evicted: u64,
}

impl Pods {
    /// (pods waiting for their sandbox's end, pods dropped by the cap).
    pub fn counts(&self) -> (usize, u64) {
        (self.pods.len(), self.evicted)
    }

    /// A container record was built; `first`/`end` are its first stop signal and end (mono).
    /// Records outside pods pass through; the sandbox's is kept for the pod record.
    pub fn container(&mut self, stop: ContainerStop, first: u64, end: u64, out: &mut Vec<Output>) {
        let Some(uid) = stop.container.pod_uid.clone() else {
            out.push(Output::ContainerStop(stop));
            return;
        };
        let sandbox = stop.container.is_sandbox();
        if !sandbox {
            out.push(Output::ContainerStop(stop.clone()));
        }
        let uid: Arc<str> = uid.into();
        if !self.pods.contains_key(&uid) && self.pods.len() >= MAX_PODS {
            if let Some((_, old)) = self.due.pop_first() {
                self.pods.remove(&old);
                self.evicted += 1;
            }
        }
        let g = self.pods.entry(uid.clone()).or_insert_with(|| PodGroup {
            containers: Vec::new(),
            sandbox: None,
            last_news: end,
        });
        self.due.remove(&(due_at(g), uid.clone()));
        g.last_news = g.last_news.max(end);
        if sandbox {
            g.sandbox = Some((stop, end));
        } else {
            let name = stop.container.label().to_owned();
            g.containers.retain(|(c, _, _)| c.container.label() != name);
            g.containers.push((stop, first, end));
        }
        self.due.insert((due_at(g), uid));
    }

    /// Event time reached `t`: emits the pods whose sandbox ended long enough ago, unless
    /// `open(uid)` says a container of the pod is still being collected; drops pods that
    /// waited [`POD_WAIT_NS`] for a sandbox.
    pub fn tick(&mut self, t: u64, open: impl Fn(&str) -> bool, out: &mut Vec<Output>) {
        let mut waiting = Vec::new();
        while self.due.first().is_some_and(|(at, _)| *at < t) {
            let Some((_, uid)) = self.due.pop_first() else {
                break;
            };
            let Some(g) = self.pods.get(&uid) else {
                continue;
            };
            if g.sandbox.is_none() {
                self.pods.remove(&uid);
            } else if open(&uid) {
                waiting.push((t.saturating_add(POD_SETTLE_NS), uid));
            } else {
                self.emit(&uid, out);
            }
        }
        self.due.extend(waiting);
    }

    /// End of the trace: emits every pod whose sandbox ended.
    pub fn finish(&mut self, out: &mut Vec<Output>) {
        let mut ready: Vec<Arc<str>> = self
            .pods
            .iter()
            .filter(|(_, g)| g.sandbox.is_some())
            .map(|(uid, _)| uid.clone())
            .collect();
        ready.sort_unstable();
        for uid in ready {
            self.emit(&uid, out);
        }
        self.pods.clear();
        self.due.clear();
    }

    fn emit(&mut self, uid: &Arc<str>, out: &mut Vec<Output>) {
        let Some(mut g) = self.pods.remove(uid) else {
            return;
        };
        self.due.remove(&(due_at(&g), uid.clone()));
        if g.containers.is_empty() {
            return;
        }
        g.containers.sort_by_key(|(_, first, _)| *first);
        let sandbox_end = g.sandbox.as_ref().map(|(_, end)| *end);
        let (first_mono, last_mono) = span(&g);
        let killed_at_teardown: Vec<String> = g
            .containers
            .iter()
            .filter(|(c, first, _)| {
                c.stop_signal == Some(Signal::KILL)
                    && sandbox_end.is_some_and(|s| first.saturating_add(TEARDOWN_NS) >= s)
            })
            .map(|(c, _, _)| c.container.label().to_owned())
            .collect();
        let held = g
            .containers
            .iter()
            .map(|(c, _, _)| c)
            .max_by(|a, b| a.duration_s.total_cmp(&b.duration_s));
        let worst = g.containers.iter().map(|(c, _, _)| c).min_by(|a, b| {
            a.diagnosis
                .rank()
                .cmp(&b.diagnosis.rank())
                .then(b.duration_s.total_cmp(&a.duration_s))
        });
        let diagnosis = worst.map_or(Diagnosis::Graceful, |c| c.diagnosis);
        let hint = if !killed_at_teardown.is_empty() && diagnosis == Diagnosis::ForceKilled {
            Some(Cow::Borrowed(
                "a container was still running at sandbox teardown and got SIGKILL without a \
                 stop signal: look at why its stop was skipped or returned early",
            ))
        } else {
            worst.and_then(|c| c.hint.clone())
        };
        let info = g
            .containers
            .first()
            .map(|(c, _, _)| c.container.clone())
            .expect("non-empty");
        let started = g
            .containers
            .iter()
            .map(|(c, _, _)| {
                c.prestop
                    .as_ref()
                    .map_or(c.started, |h| h.start.min(c.started))
            })
            .chain(g.sandbox.as_ref().map(|(s, _)| s.started))
            .min()
            .unwrap_or(WallTime::from_ns(0));
        let ended = g
            .sandbox
            .as_ref()
            .and_then(|(s, _)| s.ended)
            .or_else(|| g.containers.iter().filter_map(|(c, _, _)| c.ended).max());
        let stop = PodStop {
            started,
            ended,
            pod: info.pod.clone(),
            namespace: info.namespace.clone(),
            pod_uid: uid.to_string(),
            workload: info.workload.clone(),
            duration_s: last_mono.saturating_sub(first_mono) as f64 / 1e9,
            held_up_by: held.map(|c| c.container.label().to_owned()),
            held_up_s: held.map_or(0.0, |c| c.duration_s),
            killed_at_teardown,
            overrun: g.containers.iter().any(|(c, _, _)| c.overrun || c.killed),
            agent_restarted_during: g
                .containers
                .iter()
                .any(|(c, _, _)| c.agent_restarted_during),
            diagnosis,
            hint,
            sandbox: g.sandbox.map(|(s, _)| SandboxEnd {
                id: s.container.id.clone(),
                stopped: s.started,
                stop_signal: s.stop_signal,
                exit: s.exit,
            }),
            containers: g.containers.into_iter().map(|(c, _, _)| c).collect(),
        };
        out.push(Output::PodStop(stop));
    }
}

fn ns(s: f64) -> u64 {
    (s * 1e9) as u64
}

/// The pod's termination in event time: (first container stop or sandbox stop, last end).
fn span(g: &PodGroup) -> (u64, u64) {
    let sandbox_end = g.sandbox.as_ref().map(|(_, end)| *end);
    let first_mono = g
        .containers
        .iter()
        .map(|(_, f, _)| *f)
        .chain(
            g.sandbox
                .as_ref()
                .map(|(s, end)| end.saturating_sub(ns(s.duration_s))),
        )
        .min()
        .unwrap_or(0);
    let last_mono = sandbox_end
        .into_iter()
        .chain(g.containers.iter().map(|(_, _, e)| *e))
        .max()
        .unwrap_or(first_mono);
    (first_mono, last_mono)
}

/// When a pod is looked at again: the settle time after its sandbox's end, else the wait.
fn due_at(g: &PodGroup) -> u64 {
    match &g.sandbox {
        Some((_, end)) => end.saturating_add(POD_SETTLE_NS),
        None => g.last_news.saturating_add(POD_WAIT_NS),
    }
}
