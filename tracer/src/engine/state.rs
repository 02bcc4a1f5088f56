//! Per-process tracking and shutdown episodes: the tracked-process and episode types, process
//! identity and PID reuse, episode opening, expiry, eviction and emission (the event handlers
//! that fill them are in [`super::apply`]).
//!
//! Identity: a process is (pid, `start_ns`); one live process per pid, so the map is keyed by
//! pid and an entry with another start time is a different process (PID reuse: the old one
//! must be gone; an event carrying an *older* start time is stale and is ignored). A start
//! time of 0 means unknown and matches any.
//!
//! State is kept only for processes seen as signal targets/receivers or OOM victims (small
//! [`Proc`] entries, removed at their exit, by age and by count) and for open episodes
//! (bounded lists). Plain exits of untracked processes leave no trace.
use std::collections::VecDeque;
use std::num::NonZeroU64;
use std::sync::Arc;

use super::config::{EngineConfig, EngineStats, Evictions};
use super::containers::Containers;
use super::diagnose;
use super::episode::{same_start, Episode, Proc, SigRec};
use super::queue::LazyQueue;
use super::record::{Output, TimelineEvent, TimelineWhat};
use crate::container::ContainerInfo;
use crate::event::{Signal, Task, WallTime};
use rustc_hash::FxHashMap;

/// How many dead (pid, start) identities are remembered to drop late events about them.
const TOMBSTONES: usize = 4096;

/// Whether a key of [`Tracker::open`] still stands for an open episode.
pub(super) fn open_key(
    episodes: &FxHashMap<u64, Episode>,
) -> impl Fn((u64, u64)) -> bool + use<'_> {
    |(_, id)| episodes.get(&id).is_some_and(Episode::is_open)
}

/// Whether a key of [`Tracker::settling`] still stands for an episode not emitted yet (it
/// enters `settling` when its process dies, and leaves `episodes` when emitted).
pub(super) fn settling_key(
    episodes: &FxHashMap<u64, Episode>,
) -> impl Fn((u64, u64)) -> bool + use<'_> {
    |(_, id)| episodes.contains_key(&id)
}

/// A SIGKILL the kernel sent a thread group from inside itself, kept briefly in case an OOM
/// victim event explains it.
#[derive(Clone, Debug)]
pub(super) struct InternalKill {
    pub pid: u32,
    pub start_ns: u64,
    pub rec: SigRec,
}

/// The tracking state; [`super::Engine`] feeds it events in timestamp order.
pub(super) struct Tracker {
    pub cfg: EngineConfig,
    /// [`Signal::stop_mask`] of the configuration.
    pub(super) stop_mask: u64,
    pub procs: FxHashMap<u32, Proc>,
    pub episodes: FxHashMap<u64, Episode>,
    /// (first stop signal time, id) of episodes whose process has not died yet (and stale
    /// keys, see [`open_key`]).
    pub(super) open: LazyQueue,
    /// (emit deadline, id) of episodes whose process died (and stale keys, see
    /// [`settling_key`]).
    pub(super) settling: LazyQueue,
    pub(super) next_id: u64,
    pub(super) internal_kills: VecDeque<InternalKill>,
    pub(super) containers: FxHashMap<u64, Arc<ContainerInfo>>,
    /// Open (not yet emitted) episodes per cgroup.
    pub(super) open_per_cgroup: FxHashMap<u64, usize>,
    /// Container-level records under construction.
    pub(super) stops: Containers,
    pub(super) last_age_sweep: u64,
    /// Latest event time applied.
    pub now: u64,
    /// Recently dead processes that had an episode: pid → start time (late events about them
    /// must not open a new episode), with their insertion order for the bound.
    pub(super) dead: FxHashMap<u32, u64>,
    pub(super) dead_order: VecDeque<(u32, u64)>,
    pub evictions: Evictions,
    pub records_emitted: u64,
    /// When an agent restarted on this journal (mono), for `agent_restarted_during`.
    pub(super) restarts: Vec<u64>,
    /// See [`super::Engine::trace_started`].
    pub(super) trace_start: Option<u64>,
}

impl Tracker {
    pub fn new(cfg: EngineConfig) -> Self {
        let stop_mask = Signal::stop_mask(&cfg.extra_stop_signals);
        Self {
            cfg,
            stop_mask,
            procs: FxHashMap::default(),
            episodes: FxHashMap::default(),
            open: LazyQueue::default(),
            settling: LazyQueue::default(),
            next_id: 1,
            internal_kills: VecDeque::new(),
            containers: FxHashMap::default(),
            open_per_cgroup: FxHashMap::default(),
            stops: Containers::default(),
            last_age_sweep: 0,
            now: 0,
            dead: FxHashMap::default(),
            dead_order: VecDeque::new(),
            evictions: Evictions::default(),
            records_emitted: 0,
            restarts: Vec::new(),
            trace_start: None,
        }
    }

    /// Its counters and gauges (the reorder window's are the engine's).
    pub fn stats(&self) -> EngineStats {
        let (open_container_stops, container_count) = self.stops.counts();
        let (open_pod_stops, pod_count) = self.stops.pods.counts();
        EngineStats {
            tracked_processes: self.procs.len(),
            open_episodes: self.episodes.len(),
            tracked_containers: self.containers.len(),
            open_container_stops,
            open_pod_stops,
            evictions: Evictions {
                container_count,
                pod_count,
                ..self.evictions
            },
            records_emitted: self.records_emitted,
            ..EngineStats::default()
        }
    }

    pub fn is_stop(&self, s: Signal) -> bool {
        self.stop_mask & s.bit() != 0
    }

    /// The first stop signal of `t`'s open episode.
    pub(super) fn episode_signal(&self, t: &Task) -> Option<Signal> {
        let id = self.open_episode_of(t)?;
        self.episodes.get(&id)?.first_signal
    }

    pub fn set_container(&mut self, cgroup_id: u64, info: Arc<ContainerInfo>) {
        self.containers.insert(cgroup_id, info);
    }

    pub(super) fn container(&self, cgroup_id: u64) -> Option<Arc<ContainerInfo>> {
        self.containers.get(&cgroup_id).cloned()
    }

    // ---- time ------------------------------------------------------------------------------

    /// (first stop signal time, id) of the oldest episode whose process has not died.
    pub(super) fn first_open(&mut self) -> Option<(u64, u64)> {
        self.open.first(open_key(&self.episodes))
    }

    /// (emit deadline, id) of the first episode to emit among those whose process died.
    pub(super) fn first_settling(&mut self) -> Option<(u64, u64)> {
        self.settling.first(settling_key(&self.episodes))
    }

    /// Engine time reached `t`: emit settled episodes, time out old ones, sweep idle processes.
    /// Everything strictly before `t` is final.
    pub fn tick(&mut self, t: u64, out: &mut Vec<Output>) {
        self.now = self.now.max(t);
        // Only a due front key is checked against `episodes` (keys are in order).
        while let Some((deadline, id)) = self
            .settling
            .first_due(|(d, _)| d < t, settling_key(&self.episodes))
        {
            self.emit(id, deadline, out);
        }
        let timeout = self.cfg.episode_timeout_ns;
        while let Some((first, id)) = self.open.first_due(
            |(f, _)| f.saturating_add(timeout) < t,
            open_key(&self.episodes),
        ) {
            let expiry = first.saturating_add(timeout);
            if let Some(ep) = self.episodes.get_mut(&id) {
                ep.mark_incomplete(format!(
                    "still running {:.0} s after the first stop signal (episode timeout)",
                    self.cfg.episode_timeout_ns as f64 / 1e9
                ));
            }
            self.evictions.episode_age += 1;
            self.emit(id, expiry, out);
        }
        let every = (self.cfg.process_idle_ns / 4).max(1);
        if t >= self.last_age_sweep.saturating_add(every) {
            self.last_age_sweep = t;
            let idle = self.cfg.process_idle_ns;
            let before = self.procs.len();
            self.procs
                .retain(|_, p| p.episode.is_some() || p.last_seen_ns.saturating_add(idle) >= t);
            self.evictions.process_age += (before - self.procs.len()) as u64;
        }
        self.stops.execs.tick(t);
        let open = &self.open_per_cgroup;
        self.stops.tick(
            t,
            self.cfg.container_quiet_ns,
            |cg| open.get(&cg).copied().unwrap_or(0),
            out,
        );
    }

    /// Events were lost at `mono`: every episode still being collected may be incomplete.
    pub fn lost(&mut self, count: u64, mono: u64) {
        self.now = self.now.max(mono);
        let reason = format!("{count} events lost (ring buffer full) during this shutdown");
        for ep in self.episodes.values_mut() {
            ep.mark_incomplete(reason.clone());
        }
    }

    /// End of stream: emit ended episodes, then the ones still open as incomplete.
    pub fn finish(&mut self, out: &mut Vec<Output>) {
        self.finish_settled(out);
        let now = self.now;
        while let Some((_, id)) = self.first_open() {
            if let Some(ep) = self.episodes.get_mut(&id) {
                ep.mark_incomplete("still running when the trace ended");
            }
            self.emit(id, now, out);
        }
        self.stops.finish(out);
    }

    /// Emits the records of every episode whose process died.
    pub fn finish_settled(&mut self, out: &mut Vec<Output>) {
        while let Some((deadline, id)) = self.first_settling() {
            self.emit(id, deadline, out);
        }
    }

    /// Episodes whose process has not died.
    pub fn open_count(&self) -> usize {
        self.episodes.values().filter(|e| e.is_open()).count()
    }

    /// Their processes.
    pub fn open_pids(&self) -> Vec<u32> {
        self.episodes
            .values()
            .filter(|e| e.is_open())
            .map(|e| e.pid)
            .collect()
    }

    /// An agent restarted at `mono` (this engine was rebuilt from the journal before it).
    pub fn restarted(&mut self, mono: u64) {
        if self.restarts.last() != Some(&mono) {
            self.restarts.push(mono);
        }
    }

    /// Removes episode `id` and emits its record; `end` is when observation stopped for a
    /// process that did not exit.
    pub(super) fn emit(&mut self, id: u64, end: u64, out: &mut Vec<Output>) {
        let Some((ep, open_in_cgroup)) = self.take(id) else {
            return;
        };
        let container = self.container(ep.cgroup_id);
        let stop = diagnose::build(&ep, &self.cfg, end, container, &self.restarts);
        self.records_emitted += 1;
        if let Some(c) = &stop.container {
            let end = ep.exit.as_ref().map_or(end.max(ep.last_mono), |x| x.mono);
            let first = (ep.first_mono, ep.first_wall);
            // A pod sandbox's processes show only in the pod record.
            if !c.is_sandbox() {
                out.push(Output::ProcessStop(stop.clone()));
            }
            self.stops.record(stop, first, end, open_in_cgroup, out);
        } else {
            out.push(Output::ProcessStop(stop));
            self.stops.episode_closed(ep.cgroup_id, open_in_cgroup, out);
        }
    }

    /// Removes episode `id` from every index: (the episode, its cgroup's episodes still open).
    fn take(&mut self, id: u64) -> Option<(Episode, usize)> {
        let ep = self.episodes.remove(&id)?;
        // Its keys in `open`/`settling` are stale now that it left `episodes`.
        if ep.is_open() {
            self.open.removed(open_key(&self.episodes));
        } else {
            self.settling.removed(settling_key(&self.episodes));
        }
        if let Some(p) = self.procs.get_mut(&ep.pid) {
            if p.episode.map(NonZeroU64::get) == Some(id) {
                if ep.exit.is_some() {
                    self.procs.remove(&ep.pid);
                    self.bury(ep.pid, ep.start_ns);
                } else {
                    p.episode = None;
                }
            }
        }
        let open_in_cgroup = match self.open_per_cgroup.get_mut(&ep.cgroup_id) {
            Some(n) if *n > 1 => {
                *n -= 1;
                *n
            }
            _ => {
                self.open_per_cgroup.remove(&ep.cgroup_id);
                0
            }
        };
        Some((ep, open_in_cgroup))
    }

    /// Processes of the stops in progress whose first stop signal came before `before`:
    /// (pid, start time).
    pub fn open_since(&self, before: u64) -> Vec<(u32, u64)> {
        self.episodes
            .values()
            .filter(|e| e.is_open() && e.first_mono < before)
            .map(|e| (e.pid, e.start_ns))
            .collect()
    }

    /// The process (`pid`, `start_ns`) of an open stop is gone and its exit was never traced
    /// (lost, or before the hooks): its stop is closed without a record, since nothing says
    /// how it ended, and counted. Returns whether there was such a stop.
    pub fn exit_not_seen(&mut self, pid: u32, start_ns: u64, out: &mut Vec<Output>) -> bool {
        let id = self
            .episodes
            .values()
            .find(|e| e.is_open() && e.pid == pid && same_start(e.start_ns, start_ns))
            .map(|e| e.id);
        let Some((ep, open_in_cgroup)) = id.and_then(|id| self.take(id)) else {
            return false;
        };
        self.procs.remove(&ep.pid);
        self.bury(ep.pid, ep.start_ns);
        self.evictions.exit_not_seen += 1;
        self.stops.episode_closed(ep.cgroup_id, open_in_cgroup, out);
        true
    }

    // ---- processes -------------------------------------------------------------------------

    /// The tracked process `t` is, without creating it.
    pub(super) fn lookup(&self, t: &Task) -> Option<&Proc> {
        self.procs
            .get(&t.pid)
            .filter(|p| same_start(p.start_ns, t.start_ns))
    }

    /// The open (not yet dead) episode of `t`.
    pub(super) fn open_episode_of(&self, t: &Task) -> Option<u64> {
        let id = self.lookup(t)?.episode?.get();
        self.episodes.get(&id).filter(|e| e.is_open()).map(|e| e.id)
    }

    /// Remembers that (pid, start) died.
    fn bury(&mut self, pid: u32, start_ns: u64) {
        while self.dead_order.len() >= TOMBSTONES {
            if let Some((p, s)) = self.dead_order.pop_front() {
                if self.dead.get(&p) == Some(&s) {
                    self.dead.remove(&p);
                }
            }
        }
        self.dead.insert(pid, start_ns);
        self.dead_order.push_back((pid, start_ns));
    }

    /// `t` is a process whose death was already seen.
    pub(super) fn is_dead(&self, t: &Task) -> bool {
        let settling = self
            .lookup(t)
            .and_then(|p| p.episode)
            .and_then(|id| self.episodes.get(&id.get()))
            .is_some_and(|e| !e.is_open());
        settling
            || (!self.procs.contains_key(&t.pid)
                && t.start_ns != 0
                && self.dead.get(&t.pid).is_some_and(|&s| t.start_ns <= s))
    }

    /// Makes sure `t` is the tracked process with its pid, replacing an older process with
    /// the same pid (PID reuse), and creating it when `create`. False when there is no entry
    /// for `t` afterwards: not created, stale (older than the tracked process with its pid),
    /// or already dead.
    pub(super) fn touch(
        &mut self,
        t: &Task,
        mono: u64,
        create: bool,
        out: &mut Vec<Output>,
    ) -> bool {
        if let Some(p) = self.procs.get_mut(&t.pid) {
            if same_start(p.start_ns, t.start_ns) {
                if p.start_ns == 0 {
                    p.start_ns = t.start_ns;
                }
                p.last_seen_ns = p.last_seen_ns.max(mono);
                p.ns_init |= t.ns_init;
                return true;
            }
            if t.start_ns < p.start_ns {
                return false;
            }
            // PID reuse: the old process is gone even though its exit was not seen.
            let old = *p;
            self.procs.remove(&t.pid);
            if let Some(id) = old.episode.map(NonZeroU64::get) {
                if let Some(ep) = self.episodes.get_mut(&id).filter(|e| e.is_open()) {
                    ep.mark_incomplete(
                        "pid reused by a new process before this one's exit was seen",
                    );
                    self.evictions.pid_reused += 1;
                    self.emit(id, mono, out);
                }
            }
        }
        if !create || self.is_dead(t) {
            return false;
        }
        if self.procs.len() >= self.cfg.max_processes {
            self.evict_processes();
        }
        self.procs.insert(
            t.pid,
            Proc {
                start_ns: t.start_ns,
                last_seen_ns: mono,
                episode: None,
                ns_init: t.ns_init,
            },
        );
        true
    }

    /// Count cap: drops the least recently seen processes that are not in an episode, down
    /// to 7/8 of the cap (deterministic: by last-seen time, then pid).
    pub(super) fn evict_processes(&mut self) {
        let target = self.cfg.max_processes - self.cfg.max_processes / 8;
        let excess = (self.procs.len() + 1).saturating_sub(target);
        let mut idle: Vec<(u64, u32)> = self
            .procs
            .iter()
            .filter(|(_, p)| p.episode.is_none())
            .map(|(&pid, p)| (p.last_seen_ns, pid))
            .collect();
        let n = excess.min(idle.len());
        if n == 0 {
            return;
        }
        idle.select_nth_unstable(n - 1);
        for &(_, pid) in &idle[..n] {
            self.procs.remove(&pid);
        }
        self.evictions.process_count += n as u64;
    }

    /// Notes `t` as a child of its parent's episode (same cgroup).
    pub(super) fn note_family(&mut self, t: &Task) {
        if t.ppid == 0 || t.ppid == t.pid {
            return;
        }
        let Some(id) = self
            .procs
            .get(&t.ppid)
            .and_then(|p| p.episode)
            .map(NonZeroU64::get)
        else {
            return;
        };
        if let Some(ep) = self.episodes.get_mut(&id) {
            if ep.cgroup_id == t.cgroup_id {
                ep.add_child(t);
            }
        }
    }

    /// Opens an episode for the tracked process `t` (which must have been touched).
    pub(super) fn open_episode(
        &mut self,
        t: &Task,
        mono: u64,
        wall: i64,
        out: &mut Vec<Output>,
    ) -> u64 {
        while self.episodes.len() >= self.cfg.max_episodes.max(1) {
            if let Some((_, id)) = self.first_settling() {
                self.emit(id, mono, out);
            } else if let Some((_, id)) = self.first_open() {
                if let Some(ep) = self.episodes.get_mut(&id) {
                    ep.mark_incomplete(format!(
                        "evicted: more than {} shutdowns open at once",
                        self.cfg.max_episodes
                    ));
                }
                self.evictions.episode_count += 1;
                self.emit(id, mono, out);
            } else {
                break;
            }
        }
        let id = self.next_id;
        self.next_id += 1;
        let ns_init = self.procs.get(&t.pid).is_some_and(|p| p.ns_init);
        self.episodes
            .insert(id, Episode::new(id, t, ns_init, mono, wall));
        self.open.insert((mono, id));
        *self.open_per_cgroup.entry(t.cgroup_id).or_insert(0) += 1;
        if let Some(p) = self.procs.get_mut(&t.pid) {
            p.episode = NonZeroU64::new(id);
        }
        id
    }

    pub(super) fn timeline(&self, mono: u64, wall: i64, t: &Task, what: TimelineWhat) -> Output {
        Output::Timeline(TimelineEvent {
            time: WallTime::from_ns(wall),
            mono_ns: mono,
            wall_ns: wall,
            pid: t.pid,
            comm: t.comm,
            cgroup_id: t.cgroup_id,
            container: self.container(t.cgroup_id),
            what,
        })
    }
}
