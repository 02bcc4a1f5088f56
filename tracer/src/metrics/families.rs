//! The metric families sigtrace exports, one entry each (name, help, labels, buckets):
//! [`Metrics::new`] registers them.
use std::collections::HashSet;
use std::sync::Mutex;

use prometheus::{
    CounterVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec,
    Opts, Registry,
};
use rustc_hash::FxHashMap;

use super::{reg, Metrics, MetricsError, MetricsOptions, DURATION_BUCKETS};

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
            clock_steps: reg(
                &r,
                IntCounter::new(
                    "sigtrace_clock_steps_total",
                    "Steps of the wall clock (1 s or more) the agent followed: records after one \
                     carry the new time.",
                )?,
            )?,
            metadata_errors: cvec(
                "sigtrace_metadata_errors_total",
                "Calls to a metadata source that failed (source=\"cri\": the node's CRI socket); \
                 attribution falls back to the runtimes' files.",
                &["source"],
            )?,
            metadata_up: reg(
                &r,
                IntGaugeVec::new(
                    Opts::new(
                        "sigtrace_metadata_up",
                        "1 while a metadata source answers, 0 after it failed (source=\"cri\").",
                    ),
                    &["source"],
                )?,
            )?,
            journal_dropped: cvec(
                "sigtrace_journal_records_dropped_total",
                "Records not journaled, by reason: suspended (after a write error), stalled (the \
                 disk did not answer and the writer's queue was full).",
                &["reason"],
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
            unresolved_cgroups: reg(
                &r,
                IntCounter::new(
                    "sigtrace_cgroups_unresolved_total",
                    "cgroups of traced processes whose path could not be found (gone before \
                     the agent looked, and their creation not seen): those processes have no \
                     container.",
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
}
