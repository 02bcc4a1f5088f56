//! The pure shutdown correlation engine: decoded [`Event`]s in, [`Output`]s out (timeline
//! lines and one [`ProcessStop`] record per process shutdown, with a diagnosis and a hint).
//!
//! This file owns the public API ([`Engine`], [`EngineConfig`], [`EngineStats`]) and the
//! reorder window. No I/O, no clocks, no threads: all time comes from event timestamps (and
//! the `now` passed to [`Engine::advance`]), so a live run and a journal replay of the same
//! events produce the same records.
//!
//! Files, leaves first (no import cycle among them: `tests/layout.rs` checks it):
//! - [`record`]: the records (public JSON schema) and the [`Diagnosis`] vocabulary;
//!   [`config`]: settings and counters; [`classify`]: who sent a signal; [`queue`]: time queues.
//! - [`episode`]: what is kept per process and per shutdown.
//! - [`diagnose`]: the rule table and the timing (grace, overrun), episode → [`ProcessStop`].
//! - [`execs`], [`pods`], [`containers`]: the state machines that group process records into
//!   [`ContainerStop`]s and [`PodStop`]s.
//! - [`state`]: the tracker (processes, episodes, expiry, emission); [`apply`]: how each kind
//!   of event changes it.
//! - this file: the public API and the reorder window.
//!
//! # Ordering
//!
//! Events from different CPUs arrive slightly out of order. [`Engine::push`] buffers them and
//! releases, in (timestamp, arrival) order, those older than the newest timestamp seen minus
//! `reorder_window_ns`; [`Engine::advance`] releases those older than `now - window`. An event
//! older than something already released (or than an `advance` threshold) is *late*: it is
//! applied at once, out of order, and counted in [`EngineStats::late_events`].
//!
//! An episode whose process died is emitted once engine time passes its exit plus
//! `exit_settle_ns`, so that the namespace teardown its death causes (kernel SIGKILLs to the
//! remaining processes) is attributed to it; its record holds exactly the events up to that
//! deadline whatever the batching of the input.
use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};
use std::sync::Arc;

use crate::container::ContainerInfo;
use crate::event::{Event, EventKind, Signal};

mod apply;
mod classify;
mod config;
mod containers;
mod diagnose;
mod episode;
mod execs;
mod pods;
mod queue;
mod record;
mod state;
#[cfg(test)]
pub(crate) mod tests;

pub use classify::{classify, SenderClass, RUNTIME_COMMS};
pub use config::{EngineConfig, EngineStats, Evictions};
pub use diagnose::{is_shell, SHELLS};
pub use record::{
    outcome, ContainerStop, Diagnosis, ExecEntry, ExitEntry, ForwardEntry, GraceSource, Output,
    Peer, PodStop, ProcessStop, SandboxEnd, SignalEntry, SignalOrigin, TimelineEvent, TimelineWhat,
};

/// Upper bound on buffered events, whatever the timestamps say.
const MAX_BUFFERED: usize = 1 << 20;

/// How long after the trace's start a stop signal delivered without a seen generation is taken
/// for one sent before it ([`Engine::trace_started`]): a generation and its delivery are
/// microseconds apart for a running process.
pub const BEFORE_TRACE_NS: u64 = 1_000_000_000;

// Nearly every item is an event; boxing them to shrink the rare `Lost` marker would cost an
// allocation per event.
#[allow(clippy::large_enum_variant)]
enum Item {
    Event(Event),
    Lost(u64),
}

/// A buffered item, ordered by (timestamp, arrival).
struct Pending {
    ts: u64,
    seq: u64,
    item: Item,
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        (self.ts, self.seq) == (other.ts, other.seq)
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Pending {
    /// Reversed, so that `BinaryHeap` pops the oldest first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.ts, other.seq).cmp(&(self.ts, self.seq))
    }
}

/// The reorder window's items: those that arrived in (timestamp, arrival) order — nearly all
/// of them — in a queue, the others in a heap; the oldest of the two fronts comes out first.
/// Same order as one heap, without moving every event through it.
#[derive(Default)]
struct Buffer {
    in_order: VecDeque<Pending>,
    out_of_order: BinaryHeap<Pending>,
}

impl Buffer {
    fn len(&self) -> usize {
        self.in_order.len() + self.out_of_order.len()
    }

    fn push(&mut self, p: Pending) {
        if self
            .in_order
            .back()
            .is_none_or(|b| (b.ts, b.seq) < (p.ts, p.seq))
        {
            self.in_order.push_back(p);
        } else {
            self.out_of_order.push(p);
        }
    }

    /// The oldest item comes from the queue (else from the heap).
    fn queue_first(&self) -> bool {
        match (self.in_order.front(), self.out_of_order.peek()) {
            (Some(a), Some(b)) => (a.ts, a.seq) < (b.ts, b.seq),
            (Some(_), None) => true,
            (None, _) => false,
        }
    }

    /// The oldest item.
    fn front(&self) -> Option<&Pending> {
        if self.queue_first() {
            self.in_order.front()
        } else {
            self.out_of_order.peek()
        }
    }

    /// Removes the oldest item.
    fn pop(&mut self) -> Option<Pending> {
        if self.queue_first() {
            self.in_order.pop_front()
        } else {
            self.out_of_order.pop()
        }
    }
}

/// The correlation engine. See the module docs.
pub struct Engine {
    tracker: state::Tracker,
    buffer: Buffer,
    seq: u64,
    max_seen: u64,
    /// Everything older was released: an event below it is late.
    watermark: u64,
    late_events: u64,
    lost_events: u64,
}

impl Engine {
    pub fn new(cfg: EngineConfig) -> Self {
        Self {
            tracker: state::Tracker::new(cfg),
            buffer: Buffer::default(),
            seq: 0,
            max_seen: 0,
            watermark: 0,
            late_events: 0,
            lost_events: 0,
        }
    }

    /// The sender class of a generated signal, with the attribution known now.
    pub fn sender_class(&self, ev: &crate::event::Event) -> SenderClass {
        match &ev.kind {
            crate::event::EventKind::SignalGenerate {
                sender,
                target,
                si_code,
                ..
            } => classify(
                sender,
                target,
                *si_code,
                &self.tracker.containers,
                &self.tracker.cfg.runtime_comms,
            ),
            _ => SenderClass::Host,
        }
    }

    /// Whether `s` starts a shutdown: the default stop signals and `--stop-signal`s.
    pub fn is_stop(&self, s: Signal) -> bool {
        self.tracker.is_stop(s)
    }

    /// Its settings.
    pub fn config(&self) -> &EngineConfig {
        &self.tracker.cfg
    }

    /// New settings from now on (a replay entering a session recorded with other flags).
    pub fn reconfigure(&mut self, cfg: EngineConfig) {
        self.tracker.stop_mask = Signal::stop_mask(&cfg.extra_stop_signals);
        self.tracker.cfg = cfg;
    }

    /// Buffers `ev` in the reorder window and applies, in timestamp order, the buffered events
    /// older than the newest timestamp seen minus the window.
    pub fn push(&mut self, ev: Event, out: &mut Vec<Output>) {
        let ts = ev.mono_ns;
        if ts < self.watermark {
            self.late_events += 1;
            self.apply(ts, &Item::Event(ev), out);
            return;
        }
        self.max_seen = self.max_seen.max(ts);
        self.enqueue(ts, Item::Event(ev));
        let threshold = self
            .max_seen
            .saturating_sub(self.tracker.cfg.reorder_window_ns);
        self.release(threshold, out);
        while self.buffer.len() > MAX_BUFFERED {
            if let Some(p) = self.buffer.pop() {
                self.apply(p.ts, &p.item, out);
            }
        }
    }

    /// `count` events were lost (ring buffer full), noticed at `mono_ns`: the records of
    /// shutdowns open at that time are marked incomplete.
    pub fn lost(&mut self, count: u64, mono_ns: u64) {
        self.lost_events += count;
        if mono_ns < self.watermark {
            self.tracker.lost(count, mono_ns);
        } else {
            self.enqueue(mono_ns, Item::Lost(count));
        }
    }

    /// Engine time is `now_mono_ns`: applies buffered events older than `now - window`, emits
    /// the records that are due and expires old episodes.
    pub fn advance(&mut self, now_mono_ns: u64, out: &mut Vec<Output>) {
        let threshold = now_mono_ns.saturating_sub(self.tracker.cfg.reorder_window_ns);
        self.release(threshold, out);
        self.watermark = self.watermark.max(threshold);
        self.tracker.tick(threshold, out);
    }

    /// End of stream: applies everything buffered, emits every record; episodes still open are
    /// emitted as incomplete ("still running when the trace ended").
    pub fn finish(&mut self, out: &mut Vec<Output>) {
        while let Some(p) = self.buffer.pop() {
            self.apply(p.ts, &p.item, out);
        }
        self.tracker.finish(out);
    }

    /// The end of a live run whose journal keeps what is still going on: the records of
    /// processes that died are emitted, the stops still in progress (and the container and
    /// pod records waiting for them) are left to the journal, from which the next agent on
    /// the data dir (or a replay) finishes them. Returns how many stops were left.
    pub fn finish_leaving_open(&mut self, out: &mut Vec<Output>) -> usize {
        while let Some(p) = self.buffer.pop() {
            self.apply(p.ts, &p.item, out);
        }
        self.tracker.finish_settled(out);
        self.tracker.open_count()
    }

    /// Stops in progress (their process has not died).
    pub fn open_stops(&self) -> usize {
        self.tracker.open_count()
    }

    /// The processes of the stops in progress.
    pub fn open_pids(&self) -> Vec<u32> {
        self.tracker.open_pids()
    }

    /// The processes (pid, start time) of the stops in progress whose first stop signal came
    /// before `before` (engine time), to check whether they are still alive.
    pub fn open_since(&self, before: u64) -> Vec<(u32, u64)> {
        self.tracker.open_since(before)
    }

    /// The process (`pid`, `start_ns`) of a stop in progress is gone (the caller checked) and
    /// no exit of it waits in the reorder window: its exit was never traced. The stop is
    /// closed without a record (nothing says how it ended) and counted
    /// (`evictions{what="exit_not_seen"}`). Returns whether a stop was closed.
    pub fn exit_not_seen(&mut self, pid: u32, start_ns: u64, out: &mut Vec<Output>) -> bool {
        let pending_exit = self
            .buffer
            .in_order
            .iter()
            .chain(self.buffer.out_of_order.iter())
            .any(|p| matches!(&p.item, Item::Event(Event { kind: EventKind::Exit { task, .. }, .. }) if task.pid == pid));
        !pending_exit && self.tracker.exit_not_seen(pid, start_ns, out)
    }

    /// Applies every buffered event now (a rebuilt engine before the live run).
    pub fn settle(&mut self, out: &mut Vec<Output>) {
        while let Some(p) = self.buffer.pop() {
            self.watermark = self.watermark.max(p.ts);
            self.apply(p.ts, &p.item, out);
        }
    }

    /// The trace starts at `mono` (every hook attached; the kernel records before it were
    /// dropped). A stop signal delivered within [`BEFORE_TRACE_NS`] after it, whose
    /// generation was not seen, was most likely sent before it: that stop began before the
    /// trace and is not reported (counted, `evictions{what="began_before_trace"}`), where it
    /// would give an incomplete record of a stop half seen.
    pub fn trace_started(&mut self, mono: u64) {
        self.tracker.trace_start = Some(mono);
    }

    /// An agent restarted at `mono`: stops going on across it carry `agent_restarted_during`.
    pub fn restarted(&mut self, mono: u64) {
        self.tracker.restarted(mono);
    }

    /// Container attribution for a cgroup: records (and timeline lines) of processes in it
    /// carry `info` from now on.
    pub fn set_container(&mut self, cgroup_id: u64, info: Arc<ContainerInfo>) {
        self.tracker.set_container(cgroup_id, info);
    }

    pub fn stats(&self) -> EngineStats {
        EngineStats {
            buffered_events: self.buffer.len(),
            late_events: self.late_events,
            lost_events: self.lost_events,
            ..self.tracker.stats()
        }
    }

    fn enqueue(&mut self, ts: u64, item: Item) {
        self.seq += 1;
        self.buffer.push(Pending {
            ts,
            seq: self.seq,
            item,
        });
    }

    fn release(&mut self, threshold: u64, out: &mut Vec<Output>) {
        // Applied in place, then dropped: events are not moved out of the window.
        while let Some(p) = self.buffer.front().filter(|p| p.ts < threshold) {
            Self::apply_to(&mut self.tracker, &mut self.watermark, p.ts, &p.item, out);
            self.buffer.pop();
        }
    }

    fn apply(&mut self, ts: u64, item: &Item, out: &mut Vec<Output>) {
        Self::apply_to(&mut self.tracker, &mut self.watermark, ts, item, out);
    }

    fn apply_to(
        tracker: &mut state::Tracker,
        watermark: &mut u64,
        ts: u64,
        item: &Item,
        out: &mut Vec<Output>,
    ) {
        *watermark = (*watermark).max(ts);
        tracker.tick(ts, out);
        match item {
            Item::Event(ev) => tracker.apply(ev, out),
            Item::Lost(n) => tracker.lost(*n, ts),
        }
    }
}
