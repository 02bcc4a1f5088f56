//! Prometheus metrics: the metric families (names are a public contract used by
//! `dashboards/`) and the cardinality cap on per-container label sets. [`crate::http`] serves
//! them.
use std::{collections::HashSet, net::SocketAddr, sync::Mutex};

use rustc_hash::FxHashMap;

use prometheus::{
    CounterVec, Encoder, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Registry,
    TextEncoder,
};
use thiserror::Error;

use crate::{
    container::{ContainerInfo, ResolverStats},
    driver::LiveStats,
    engine::{outcome, ContainerStop, Diagnosis, EngineStats, Output, PodStop, ProcessStop},
    event::Signal,
};

mod families;

#[derive(Debug, Error)]
pub enum MetricsError {
    #[error("registering metric: {0}")]
    Register(#[from] prometheus::Error),
    #[error("cannot serve metrics on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Duration buckets: 10 ms to 120 s.
pub const DURATION_BUCKETS: [f64; 18] = [
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0,
    90.0, 120.0,
];

#[derive(Clone, Debug)]
pub struct MetricsOptions {
    /// Replace the `pod` label by "" (high-churn clusters).
    pub drop_pod: bool,
    /// Distinct (namespace, workload, pod, container) label sets allowed; beyond, dropped and
    /// counted.
    pub max_series: usize,
    pub version: String,
    pub kernel: String,
    pub node: String,
}

/// What one finished stop contributes to the metrics.
#[derive(Clone, Debug, Default)]
pub struct StopFacts<'a> {
    /// "container" or "process".
    pub kind: &'a str,
    pub namespace: &'a str,
    /// The pod's workload ("" when unknown or not a pod).
    pub workload: &'a str,
    pub pod: &'a str,
    pub container: &'a str,
    pub diagnosis: Diagnosis,
    /// "exited", "signaled", "killed" or "unknown".
    pub outcome: &'a str,
    pub duration_s: f64,
    pub overrun: bool,
    pub overrun_s: f64,
}

impl<'a> StopFacts<'a> {
    fn new(kind: &'a str, c: Option<&'a ContainerInfo>) -> Self {
        let (namespace, workload, pod, container) = match c {
            None => ("", "", "", ""),
            Some(c) => (
                c.namespace.as_deref().unwrap_or(""),
                c.workload_name(),
                c.pod.as_deref().unwrap_or(""),
                c.label(),
            ),
        };
        Self {
            kind,
            namespace,
            workload,
            pod,
            container,
            ..Default::default()
        }
    }

    pub fn of_process(p: &'a ProcessStop) -> Self {
        Self {
            diagnosis: p.diagnosis,
            outcome: outcome(p.exit.as_ref()),
            duration_s: p.duration_s,
            overrun: p.overrun,
            overrun_s: p.overrun_s,
            ..Self::new("process", p.container.as_deref())
        }
    }

    pub fn of_container(c: &'a ContainerStop) -> Self {
        Self {
            diagnosis: c.diagnosis,
            outcome: c.outcome(),
            duration_s: c.duration_s,
            overrun: c.overrun_s > 0.0 || c.killed,
            overrun_s: c.overrun_s,
            ..Self::new("container", Some(&c.container))
        }
    }
}

/// Totals polled from the kernel side, the reader and the engine.
#[derive(Clone, Debug, Default)]
pub struct Health {
    pub events_read: u64,
    pub events_lost: u64,
    pub decode_errors: u64,
    pub tracked_processes: u64,
    pub tracked_containers: u64,
    /// (what, total)
    pub evictions: Vec<(String, u64)>,
    pub metadata_misses: u64,
    pub unresolved_cgroups: u64,
    /// The CRI client's state, when there is one.
    pub cri: Option<crate::container::cri::CriStats>,
    /// (signal name, total)
    pub counted_only: Vec<(String, u64)>,
    /// (event kind, total): execs and exits the kernel side only counted.
    pub kernel_counted: Vec<(String, u64)>,
    /// The journal's state: `None` without a journal.
    pub journal: Option<crate::journal::LiveJournalStats>,
    /// Repeated signals over their sender's budget ([`crate::budget`]).
    pub over_budget: u64,
    /// Steps of the wall clock the live run followed.
    pub clock_steps: u64,
}

impl Health {
    /// The totals of one moment of a live run.
    pub fn gather(
        engine: &EngineStats,
        resolver: ResolverStats,
        live: &LiveStats,
        decode_errors: u64,
    ) -> Self {
        let mut evictions: Vec<(String, u64)> = engine
            .evictions_by_reason()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        evictions.push(("container_metadata".to_string(), resolver.evictions));
        // PIDs past the kernel's watch table (`kernel.pid_max` raised after start-up).
        evictions.push(("kernel_watch_table".to_string(), live.kernel.watch_full));
        Self {
            events_read: live.records_read,
            events_lost: live.kernel.lost,
            decode_errors,
            tracked_processes: engine.tracked_processes as u64,
            tracked_containers: engine.tracked_containers as u64,
            evictions,
            metadata_misses: resolver.metadata_misses,
            unresolved_cgroups: resolver.unresolved_cgroups,
            cri: resolver.cri,
            counted_only: live
                .kernel
                .counted_signals
                .iter()
                .map(|(s, n)| (Signal(*s).name(), *n))
                .collect(),
            kernel_counted: vec![
                ("exec".to_string(), live.kernel.execs_counted),
                ("exit".to_string(), live.kernel.exits_counted),
            ],
            journal: None,
            over_budget: 0,
            clock_steps: 0,
        }
    }
}

pub struct Metrics {
    registry: Registry,
    container_stops: IntCounterVec,
    pod_stops: IntCounterVec,
    pod_duration: HistogramVec,
    prestop_duration: HistogramVec,
    teardown_kills: IntCounterVec,
    process_stops: IntCounterVec,
    duration: HistogramVec,
    overruns: IntCounterVec,
    overrun_seconds: CounterVec,
    signals: IntCounterVec,
    oom_kills: IntCounterVec,
    force_kills: IntCounterVec,
    label_overflow: IntCounter,
    http_refused: IntCounter,
    journal_up: IntGauge,
    journal_errors: IntCounter,
    journal_dropped: IntCounterVec,
    metadata_errors: IntCounterVec,
    clock_steps: IntCounter,
    metadata_up: IntGaugeVec,
    over_budget: IntCounter,
    events_read: IntCounter,
    events_lost: IntCounter,
    decode_errors: IntCounter,
    tracked_processes: IntGauge,
    tracked_containers: IntGauge,
    evictions: IntCounterVec,
    metadata_misses: IntCounter,
    unresolved_cgroups: IntCounter,
    counted_only: IntCounterVec,
    kernel_counted: IntCounterVec,
    series: Mutex<HashSet<[String; 4]>>,
    /// `signals`' children by (signal, result, sender class): a stop-signal flood bumps one
    /// of a few counters, without building and hashing its labels each time.
    signal_counters: Mutex<FxHashMap<(Signal, &'static str, &'static str), IntCounter>>,
    opts: MetricsOptions,
}

fn reg<T: prometheus::core::Collector + Clone + 'static>(
    r: &Registry,
    c: T,
) -> Result<T, MetricsError> {
    r.register(Box::new(c.clone()))?;
    Ok(c)
}

/// Moves a counter up to `total` (totals come from elsewhere; counters only go up).
fn set_total(c: &IntCounter, total: u64) {
    let cur = c.get();
    if total > cur {
        c.inc_by(total - cur);
    }
}

impl Metrics {
    /// Applies the pod-label flag and the label-set cap; None when over the cap.
    fn workload<'a>(&self, f: &StopFacts<'a>) -> Option<[&'a str; 4]> {
        let pod = if self.opts.drop_pod { "" } else { f.pod };
        let labels = [f.namespace, f.workload, pod, f.container];
        let key = labels.map(str::to_owned);
        let mut series = self.series.lock().unwrap_or_else(|e| e.into_inner());
        if !series.contains(&key) {
            if series.len() >= self.opts.max_series {
                self.label_overflow.inc();
                return None;
            }
            series.insert(key);
        }
        Some(labels)
    }

    /// Records one pod stop (its containers were counted on their own).
    pub fn pod_stop(&self, p: &PodStop) {
        let ns = p.namespace.as_deref().unwrap_or("");
        let (workload, kind) = p
            .workload
            .as_ref()
            .map_or(("", ""), |w| (w.name.as_str(), w.kind.as_str()));
        let facts = StopFacts {
            namespace: ns,
            workload,
            ..Default::default()
        };
        // The pod-level series share the label-set cap (one set per workload).
        if self.workload(&facts).is_none() {
            return;
        }
        self.pod_stops
            .with_label_values(&[ns, workload, kind, p.diagnosis.as_str()])
            .inc();
        self.pod_duration
            .with_label_values(&[ns, workload])
            .observe(p.duration_s);
        if !p.killed_at_teardown.is_empty() {
            self.teardown_kills
                .with_label_values(&[ns, workload])
                .inc_by(p.killed_at_teardown.len() as u64);
        }
    }

    /// Records what the engine put out (finished stops; timeline lines count for nothing).
    pub fn output(&self, o: &Output) {
        match o {
            Output::ProcessStop(p) => self.stop(&StopFacts::of_process(p)),
            Output::ContainerStop(c) => {
                self.stop(&StopFacts::of_container(c));
                if let Some(d) = c.prestop_s {
                    self.prestop_duration
                        .with_label_values(&[
                            c.container.namespace.as_deref().unwrap_or(""),
                            c.container.workload_name(),
                        ])
                        .observe(d);
                }
            }
            Output::PodStop(p) => self.pod_stop(p),
            Output::Timeline(_) => {}
        }
    }

    /// Records one finished stop.
    pub fn stop(&self, f: &StopFacts<'_>) {
        self.duration
            .with_label_values(&[f.namespace, f.workload, f.kind])
            .observe(f.duration_s);
        if f.kind == "process" {
            self.process_stops
                .with_label_values(&[f.namespace, f.diagnosis.as_str(), f.outcome])
                .inc();
            if f.diagnosis == Diagnosis::OomKilled {
                if let Some(w) = self.workload(f) {
                    self.oom_kills.with_label_values(&w).inc();
                }
            }
            return;
        }
        let Some(w) = self.workload(f) else {
            return;
        };
        self.container_stops
            .with_label_values(&[w[0], w[1], w[2], w[3], f.diagnosis.as_str(), f.outcome])
            .inc();
        if f.overrun {
            self.overruns.with_label_values(&w).inc();
            self.overrun_seconds
                .with_label_values(&w)
                .inc_by(f.overrun_s.max(0.0));
        }
        if f.diagnosis == Diagnosis::ForceKilled {
            self.force_kills.with_label_values(&w).inc();
        }
    }

    /// A metrics client was turned away.
    pub fn http_refused(&self) {
        self.http_refused.inc();
    }

    /// Records one generated stop signal.
    pub fn signal(&self, signal: Signal, result: &'static str, sender_class: &'static str) {
        let mut counters = self
            .signal_counters
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        counters
            .entry((signal, result, sender_class))
            .or_insert_with(|| {
                self.signals
                    .with_label_values(&[&signal.name(), result, sender_class])
            })
            .inc();
    }

    /// Updates the agent-health metrics from current totals.
    pub fn health(&self, h: &Health) {
        set_total(&self.events_read, h.events_read);
        set_total(&self.events_lost, h.events_lost);
        set_total(&self.decode_errors, h.decode_errors);
        self.tracked_processes.set(h.tracked_processes as i64);
        self.tracked_containers.set(h.tracked_containers as i64);
        for (what, total) in &h.evictions {
            set_total(&self.evictions.with_label_values(&[what.as_str()]), *total);
        }
        set_total(&self.metadata_misses, h.metadata_misses);
        set_total(&self.unresolved_cgroups, h.unresolved_cgroups);
        if let Some(cri) = &h.cri {
            set_total(
                &self.metadata_errors.with_label_values(&["cri"]),
                cri.errors,
            );
            if let Some(up) = cri.up {
                self.metadata_up
                    .with_label_values(&["cri"])
                    .set(i64::from(up));
            }
        }
        set_total(&self.over_budget, h.over_budget);
        set_total(&self.clock_steps, h.clock_steps);
        if let Some(j) = &h.journal {
            self.journal_up.set(i64::from(j.up));
            set_total(&self.journal_errors, j.errors);
            set_total(
                &self.journal_dropped.with_label_values(&["suspended"]),
                j.dropped,
            );
            set_total(
                &self.journal_dropped.with_label_values(&["stalled"]),
                j.dropped_stalled,
            );
        }
        for (kind, total) in &h.kernel_counted {
            set_total(
                &self.kernel_counted.with_label_values(&[kind.as_str()]),
                *total,
            );
        }
        for (sig, total) in &h.counted_only {
            set_total(
                &self.counted_only.with_label_values(&[sig.as_str()]),
                *total,
            );
        }
    }

    /// The exposition in the Prometheus text format (0.0.4).
    pub fn encode(&self) -> String {
        let mut buf = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut buf) {
            tracing::warn!("encoding metrics: {e}");
        }
        String::from_utf8_lossy(&buf).into_owned()
    }
}

#[cfg(test)]
mod tests;
