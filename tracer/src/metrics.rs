//! Prometheus metrics: the metric families (names are a public contract used by
//! `dashboards/`) and the cardinality cap on per-container label sets. [`crate::http`] serves
//! them.
use std::{collections::HashSet, net::SocketAddr, sync::Mutex};

use rustc_hash::FxHashMap;

use prometheus::{
    CounterVec, Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};
use thiserror::Error;

use crate::{
    container::{ContainerInfo, ResolverStats},
    driver::LiveStats,
    engine::{outcome, ContainerStop, Diagnosis, EngineStats, Output, PodStop, ProcessStop},
    event::Signal,
};

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
    /// (signal name, total)
    pub counted_only: Vec<(String, u64)>,
    /// (event kind, total): execs and exits the kernel side only counted.
    pub kernel_counted: Vec<(String, u64)>,
    /// The journal's state: `None` without a journal.
    pub journal: Option<crate::journal::LiveJournalStats>,
    /// Repeated signals over their sender's budget ([`crate::budget`]).
    pub over_budget: u64,
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
    journal_dropped: IntCounter,
    over_budget: IntCounter,
    events_read: IntCounter,
    events_lost: IntCounter,
    decode_errors: IntCounter,
    tracked_processes: IntGauge,
    tracked_containers: IntGauge,
    evictions: IntCounterVec,
    metadata_misses: IntCounter,
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
    pub fn new(opts: MetricsOptions) -> Result<Self, MetricsError> {
        let r = Registry::new();
        let cvec =
            |name: &str, help: &str, labels: &[&str]| -> Result<IntCounterVec, MetricsError> {
                reg(&r, IntCounterVec::new(Opts::new(name, help), labels)?)
            };
        let wl = ["namespace", "workload", "pod", "container"];
        let m = Self {
            container_stops: cvec(
                "sigtrace_container_stops_total",
                "Container stops by diagnosis and outcome (exited, signaled, killed).",
                &[
                    "namespace",
                    "workload",
                    "pod",
                    "container",
                    "diagnosis",
                    "outcome",
                ],
            )?,
            pod_stops: cvec(
                "sigtrace_pod_stops_total",
                "Kubernetes pod stops (all containers and the sandbox ended), by the diagnosis of the least clean container.",
                &["namespace", "workload", "workload_type", "diagnosis"],
            )?,
            pod_duration: reg(
                &r,
                HistogramVec::new(
                    HistogramOpts::new(
                        "sigtrace_pod_termination_seconds",
                        "A pod's termination time: first stop signal to the end of its sandbox.",
                    )
                    .buckets(DURATION_BUCKETS.to_vec()),
                    &["namespace", "workload"],
                )?,
            )?,
            prestop_duration: reg(
                &r,
                HistogramVec::new(
                    HistogramOpts::new(
                        "sigtrace_prestop_duration_seconds",
                        "Run time of Kubernetes preStop hooks (up to the runtime's SIGKILL when they outlived the grace).",
                    )
                    .buckets(DURATION_BUCKETS.to_vec()),
                    &["namespace", "workload"],
                )?,
            )?,
            teardown_kills: cvec(
                "sigtrace_teardown_kills_total",
                "Containers SIGKILLed at pod sandbox teardown with no stop signal before.",
                &["namespace", "workload"],
            )?,
            process_stops: cvec(
                "sigtrace_process_stops_total",
                "Process shutdowns (container and host) by diagnosis and outcome.",
                &["namespace", "diagnosis", "outcome"],
            )?,
            duration: reg(
                &r,
                HistogramVec::new(
                    HistogramOpts::new(
                        "sigtrace_stop_duration_seconds",
                        "Time from the first stop signal to the end of the stop.",
                    )
                    .buckets(DURATION_BUCKETS.to_vec()),
                    &["namespace", "workload", "kind"],
                )?,
            )?,
            overruns: cvec(
                "sigtrace_grace_overruns_total",
                "Container stops that outlived the grace period (SIGKILL needed).",
                &wl,
            )?,
            overrun_seconds: reg(
                &r,
                CounterVec::new(
                    Opts::new(
                        "sigtrace_grace_overrun_seconds_total",
                        "Seconds container stops ran past the grace period.",
                    ),
                    &wl,
                )?,
            )?,
            signals: cvec(
                "sigtrace_signals_total",
                "Stop signals generated, by signal, kernel result and sender class.",
                &["signal", "result", "sender_class"],
            )?,
            oom_kills: cvec(
                "sigtrace_oom_kills_total",
                "Processes killed by the OOM killer.",
                &wl,
            )?,
            force_kills: cvec(
                "sigtrace_force_kills_total",
                "Stops that began with SIGKILL (no stop signal first).",
                &wl,
            )?,
            label_overflow: reg(
                &r,
                IntCounter::new(
                    "sigtrace_label_sets_overflow_total",
                    "Observations dropped because the label-set cap was reached.",
                )?,
            )?,
            http_refused: reg(
                &r,
                IntCounter::new(
                    "sigtrace_http_connections_refused_total",
                    "Metrics connections closed at once: too many clients, or accept failed.",
                )?,
            )?,
            journal_up: reg(
                &r,
                IntGauge::new(
                    "sigtrace_journal_up",
                    "1 while the journal is written, 0 while it is suspended after a write error (or off).",
                )?,
            )?,
            journal_errors: reg(
                &r,
                IntCounter::new(
                    "sigtrace_journal_errors_total",
                    "Journal writes or reopenings that failed (the journal is suspended, tracing goes on).",
                )?,
            )?,
            over_budget: reg(
                &r,
                IntCounter::new(
                    "sigtrace_signals_over_budget_total",
                    "Repeated signals (already pending, or ignored) beyond a sender's budget of 1000 a second: counted, not recorded.",
                )?,
            )?,
            journal_dropped: reg(
                &r,
                IntCounter::new(
                    "sigtrace_journal_records_dropped_total",
                    "Records not journaled while the journal was suspended.",
                )?,
            )?,
            events_read: reg(
                &r,
                IntCounter::new(
                    "sigtrace_events_read_total",
                    "Kernel records read from the ring buffer.",
                )?,
            )?,
            events_lost: reg(
                &r,
                IntCounter::new(
                    "sigtrace_events_lost_total",
                    "Kernel records lost (ring buffer full).",
                )?,
            )?,
            decode_errors: reg(
                &r,
                IntCounter::new(
                    "sigtrace_decode_errors_total",
                    "Kernel records that could not be decoded.",
                )?,
            )?,
            tracked_processes: reg(
                &r,
                IntGauge::new(
                    "sigtrace_tracked_processes",
                    "Processes the engine holds state for.",
                )?,
            )?,
            tracked_containers: reg(
                &r,
                IntGauge::new(
                    "sigtrace_tracked_containers",
                    "Containers the engine holds state for.",
                )?,
            )?,
            evictions: cvec(
                "sigtrace_evictions_total",
                "State evicted by the memory bounds, by what.",
                &["what"],
            )?,
            metadata_misses: reg(
                &r,
                IntCounter::new(
                    "sigtrace_metadata_misses_total",
                    "Container metadata lookups that found nothing usable.",
                )?,
            )?,
            counted_only: cvec(
                "sigtrace_signals_counted_only_total",
                "Signals outside the emit set, only counted in the kernel.",
                &["signal"],
            )?,
            kernel_counted: cvec(
                "sigtrace_events_counted_only_total",
                "Execs (not a runtime's exec into a container) and exits (of processes no \
                 emitted signal, exec or OOM kill concerned) only counted in the kernel.",
                &["kind"],
            )?,
            series: Mutex::new(HashSet::new()),
            signal_counters: Mutex::new(FxHashMap::default()),
            registry: r,
            opts,
        };
        let build = IntGaugeVec::new(
            Opts::new(
                "sigtrace_build_info",
                "sigtrace version and kernel; always 1.",
            ),
            &["version", "kernel", "node"],
        )?;
        m.registry.register(Box::new(build.clone()))?;
        build
            .with_label_values(&[
                m.opts.version.as_str(),
                m.opts.kernel.as_str(),
                m.opts.node.as_str(),
            ])
            .set(1);
        Ok(m)
    }

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
        set_total(&self.over_budget, h.over_budget);
        if let Some(j) = &h.journal {
            self.journal_up.set(i64::from(j.up));
            set_total(&self.journal_errors, j.errors);
            set_total(&self.journal_dropped, j.dropped);
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
mod tests {
    use super::*;

    fn metrics(max_series: usize) -> Metrics {
        Metrics::new(MetricsOptions {
            drop_pod: false,
            max_series,
            version: "t".into(),
            kernel: "k".into(),
            node: "n".into(),
        })
        .unwrap()
    }

    #[test]
    fn counts_stops_and_caps_label_sets() {
        let m = metrics(1);
        let f = StopFacts {
            kind: "container",
            namespace: "ns",
            workload: "w",
            pod: "p",
            container: "c",
            diagnosis: Diagnosis::SlowHandler,
            outcome: "killed",
            duration_s: 2.1,
            overrun: true,
            overrun_s: 0.1,
        };
        m.stop(&f);
        m.stop(&StopFacts {
            container: "other",
            ..f.clone()
        });
        let text = m.encode();
        assert!(text.contains(r#"sigtrace_container_stops_total{container="c",diagnosis="slow_handler",namespace="ns",outcome="killed",pod="p",workload="w"} 1"#), "{text}");
        assert!(text.contains(
            r#"sigtrace_grace_overruns_total{container="c",namespace="ns",pod="p",workload="w"} 1"#
        ));
        assert!(!text.contains(r#"container="other""#));
        assert!(text.contains("sigtrace_label_sets_overflow_total 1"));
        assert!(text.contains(
            r#"sigtrace_stop_duration_seconds_bucket{kind="container",namespace="ns",workload="w",le="2.5"} 2"#
        ));
    }

    #[test]
    fn health_totals_only_go_up() {
        let m = metrics(10);
        m.health(&Health {
            events_read: 10,
            events_lost: 2,
            ..Default::default()
        });
        m.health(&Health {
            events_read: 7,
            events_lost: 5,
            ..Default::default()
        });
        let text = m.encode();
        assert!(text.contains("sigtrace_events_read_total 10"));
        assert!(text.contains("sigtrace_events_lost_total 5"));
        assert!(text.contains(r#"sigtrace_build_info{kernel="k",node="n",version="t"} 1"#));
    }
}
