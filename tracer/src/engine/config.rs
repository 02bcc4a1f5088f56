//! The engine's settings ([`EngineConfig`]) and what it counts ([`EngineStats`],
//! [`Evictions`]).
use serde::Serialize;

use crate::event::Signal;

/// Engine settings. All durations are in nanoseconds of event time.
#[derive(Clone, Debug, PartialEq)]
pub struct EngineConfig {
    /// User-stated expected grace period in seconds (`--grace`); used when none is observed.
    pub grace_s: Option<f64>,
    /// Stop signals beyond SIGTERM, SIGINT, SIGQUIT, SIGHUP and SIGKILL.
    pub extra_stop_signals: Vec<Signal>,
    /// How long events are held back to be put in timestamp order (default 20 ms).
    pub reorder_window_ns: u64,
    /// Cap on tracked processes (default 200 000); the least recently seen ones that are not
    /// in a shutdown are evicted first.
    pub max_processes: usize,
    /// Cap on open shutdown episodes (default 50 000); the oldest is emitted as incomplete.
    pub max_episodes: usize,
    /// An episode still open this long after its first stop signal is emitted as incomplete
    /// (default 10 min).
    pub episode_timeout_ns: u64,
    /// How long after a process's death its record waits for the kernel's namespace teardown
    /// (default 50 ms).
    pub exit_settle_ns: u64,
    /// A tracked process not in a shutdown and not seen for this long is forgotten
    /// (default 10 min).
    pub process_idle_ns: u64,
    /// Process records of a container whose init did not die are grouped into no container
    /// record; their group is dropped after this long without new records (default 5 s).
    pub container_quiet_ns: u64,
    /// Extra process names that count as the container runtime when they send a signal.
    pub runtime_comms: Vec<String>,
    /// Emit [`Output::Timeline`] lines (a terminal shows them; JSON output and metrics do
    /// not need them, and building them is most of the engine's per-event cost).
    pub timeline: bool,
    /// The kernel side's emit mask (`--signals`; bit `n - 1` for signal `n`). It emits the
    /// deliveries to a handler of the stop signals within it only: another stop signal (a
    /// runtime's `STOPSIGNAL SIGWINCH` or SIGUSR1) that found a handler, unblocked, counts as
    /// handled, since its delivery cannot be seen.
    pub emit_mask: u64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            grace_s: None,
            extra_stop_signals: Vec::new(),
            reorder_window_ns: 20_000_000,
            max_processes: 200_000,
            max_episodes: 50_000,
            episode_timeout_ns: 600_000_000_000,
            exit_settle_ns: 50_000_000,
            process_idle_ns: 600_000_000_000,
            container_quiet_ns: 5_000_000_000,
            runtime_comms: Vec::new(),
            timeline: true,
            emit_mask: tracer_common::DEFAULT_SIGNAL_MASK,
        }
    }
}

/// State dropped before its natural end, by reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Evictions {
    /// Tracked processes dropped by the `max_processes` cap.
    pub process_count: u64,
    /// Tracked processes dropped after `process_idle_ns` without events.
    pub process_age: u64,
    /// Episodes emitted early (incomplete) by the `max_episodes` cap.
    pub episode_count: u64,
    /// Episodes emitted incomplete after `episode_timeout_ns`.
    pub episode_age: u64,
    /// Episodes emitted incomplete because their pid was reused by a new process.
    pub pid_reused: u64,
    /// Episodes closed without a record: their process was gone and its exit never traced.
    pub exit_not_seen: u64,
    /// Stop signals delivered just after the trace started, their generation not seen
    /// ([`super::Engine::trace_started`]): stops not reported.
    pub began_before_trace: u64,
    /// Container groups (waiting for their init to die) dropped by their count cap.
    pub container_count: u64,
    /// Pods (container records waiting for the sandbox's end) dropped by their count cap.
    pub pod_count: u64,
}

/// Counters and gauges for metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct EngineStats {
    pub tracked_processes: usize,
    /// Episodes not emitted yet (open, or ended and settling).
    pub open_episodes: usize,
    /// Cgroups with a known container attribution.
    pub tracked_containers: usize,
    /// Containers with process records waiting for the container's stop to complete.
    pub open_container_stops: usize,
    /// Pods with container records waiting for the pod's stop to complete.
    pub open_pod_stops: usize,
    /// Events waiting in the reorder window.
    pub buffered_events: usize,
    pub evictions: Evictions,
    pub late_events: u64,
    pub lost_events: u64,
    pub records_emitted: u64,
}

impl EngineStats {
    /// Evictions as (reason, count), for a labelled metric.
    pub fn evictions_by_reason(&self) -> Vec<(&'static str, u64)> {
        let e = &self.evictions;
        vec![
            ("process_count", e.process_count),
            ("process_age", e.process_age),
            ("episode_count", e.episode_count),
            ("episode_age", e.episode_age),
            ("pid_reused", e.pid_reused),
            ("exit_not_seen", e.exit_not_seen),
            ("began_before_trace", e.began_before_trace),
            ("container_count", e.container_count),
            ("pod_count", e.pod_count),
        ]
    }
}
