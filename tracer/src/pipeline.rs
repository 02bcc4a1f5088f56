//! The correlated pipeline, the [`Consumer`] that `run` and `replay` drive: decode → container
//! attribution (resolved now, live; as recorded, in a replay) → journal (live) → engine →
//! the sinks (printer, metrics). Live runs and replays feed it the same inputs, so a replay
//! prints the records the live run printed.
use std::{collections::HashSet, sync::Arc};

use crate::{
    budget::Budget,
    container::{ContainerInfo, ContainerResolver},
    decode::{CgroupCreated, Clock, KernelRecord},
    driver::{Consumer, FeedError, Gone, Input, LiveStats},
    engine::{Engine, EngineConfig, Output},
    event::{Event, EventKind, SigResult, Signal},
    journal::{LiveJournal, Shaping},
    metrics::Metrics,
    output::OutputSink,
};

/// Which events a pipeline keeps (`replay --since/--until`), by wall-clock nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Window {
    pub since: Option<i64>,
    pub until: Option<i64>,
}

impl Window {
    pub fn contains(&self, wall_ns: i64) -> bool {
        self.since.is_none_or(|s| wall_ns >= s) && self.until.is_none_or(|u| wall_ns < u)
    }
}

pub struct Pipeline<S: OutputSink> {
    engine: Engine,
    sink: S,
    /// The clock of live kernel records (a replay's come with each record).
    clock: Option<Clock>,
    window: Window,
    resolver: Option<ContainerResolver>,
    journal: Option<LiveJournal>,
    metrics: Option<Arc<Metrics>>,
    /// cgroup ids already resolved (and handed to the engine and the journal).
    seen_cgroups: HashSet<u64>,
    decode_errors: u64,
    /// Repeated signals per sender ([`crate::budget`]).
    budget: Budget,
    out: Vec<Output>,
    /// A replay applies what shaped each recorded session ([`crate::journal::Shaping`]),
    /// except what the user set on its command line; `None` live.
    recorded: Option<Keep>,
    /// The recorded session being read: (start, boot id).
    session: Option<(i64, String)>,
    /// See [`Self::leaving_open`].
    leave_open: bool,
    /// Steps of the wall clock seen (live).
    clock_steps: u64,
    /// Checks that the processes of open stops are alive (live).
    liveness: Option<liveness::Liveness>,
}

/// A live run's wall clock is followed when its offset from the monotonic clock moved by this
/// much (NTP's slew adds up to it in seconds)...
const CLOCK_FOLLOW_NS: i64 = 1_000_000;
/// ...and the move is a step, logged and counted, from this much.
const CLOCK_STEP_NS: i64 = 1_000_000_000;

/// The settings a replay keeps from its own command line instead of the recorded ones
/// (the user set them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Keep {
    pub grace: bool,
    pub stop_signals: bool,
    pub runtime_comms: bool,
}

/// What of a live run's engine settings its journal records ([`Shaping`]).
pub fn shaping_of(cfg: &EngineConfig) -> Shaping {
    Shaping {
        grace_ms: cfg.grace_s.map(|s| (s * 1000.0).round() as u64),
        stop_signals: cfg.extra_stop_signals.iter().map(|s| s.0).collect(),
        emit_mask: cfg.emit_mask,
        runtime_comms: cfg.runtime_comms.clone(),
        resumed_at_mono_ns: None,
        traced_from_mono_ns: None,
    }
}

impl<S: OutputSink> Pipeline<S> {
    pub fn new(engine: Engine, sink: S) -> Self {
        Self {
            engine,
            sink,
            clock: None,
            window: Window::default(),
            resolver: None,
            journal: None,
            metrics: None,
            seen_cgroups: HashSet::new(),
            decode_errors: 0,
            budget: Budget::default(),
            out: Vec::new(),
            recorded: None,
            session: None,
            leave_open: false,
            clock_steps: 0,
            liveness: None,
        }
    }

    /// Live with a journal: stops still in progress at the end are left to the journal
    /// ([`Engine::finish_leaving_open`]).
    pub fn leaving_open(mut self) -> Self {
        self.leave_open = true;
        self
    }

    /// The engine back (a rebuild hands it to the live run).
    pub fn into_engine(self) -> Engine {
        self.engine
    }

    /// A recorded session's frame (repeated through its files). At the first frame of a new
    /// session: one that resumed its predecessor carries the open stops on (marked at the
    /// restart); any other ends them, as the end of that agent's trace.
    fn session(&mut self, s: &crate::journal::SessionInfo) -> anyhow::Result<()> {
        let id = (s.started_wall_ns, s.boot_id.clone());
        if self.session.as_ref() == Some(&id) {
            return Ok(());
        }
        let previous = self.session.replace(id);
        if let Some(t) = s.shaping.as_ref().and_then(|sh| sh.traced_from_mono_ns) {
            self.engine.trace_started(t);
        }
        match s.shaping.as_ref().and_then(|sh| sh.resumed_at_mono_ns) {
            Some(mono) => self.engine.restarted(mono),
            None if previous.is_some() => {
                self.engine.finish(&mut self.out);
                self.emit()?;
            }
            None => {}
        }
        Ok(())
    }

    /// A replay: each recorded session's [`Shaping`] is applied, but for what `keep` names.
    pub fn with_recorded_shaping(mut self, keep: Keep) -> Self {
        self.recorded = Some(keep);
        self
    }

    fn adopt(&mut self, s: &Shaping, keep: Keep) {
        let mut cfg = self.engine.config().clone();
        if !keep.grace {
            cfg.grace_s = s.grace_ms.map(|ms| ms as f64 / 1000.0);
        }
        if !keep.stop_signals {
            cfg.extra_stop_signals = s.stop_signals.iter().map(|&n| Signal(n)).collect();
        }
        if !keep.runtime_comms {
            cfg.runtime_comms = s.runtime_comms.clone();
        }
        cfg.emit_mask = s.emit_mask;
        if cfg != *self.engine.config() {
            tracing::debug!(?s, "replaying a session with what shaped its records");
            self.engine.reconfigure(cfg);
        }
    }

    /// Live: the one clock of this session's kernel records.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = Some(clock);
        self
    }

    pub fn with_window(mut self, window: Window) -> Self {
        self.window = window;
        self
    }

    pub fn with_resolver(mut self, r: ContainerResolver) -> Self {
        self.resolver = Some(r);
        self
    }

    /// Live: the processes of stops in progress are checked in `proc_root` (when it shows the
    /// host's PID namespace), so that a stop whose exit was never traced is closed.
    pub fn with_liveness(mut self, proc_root: &std::path::Path) -> Self {
        self.liveness = liveness::Liveness::new(proc_root);
        self
    }

    pub fn with_journal(mut self, j: LiveJournal) -> Self {
        self.journal = Some(j);
        self
    }

    pub fn with_metrics(mut self, m: Arc<Metrics>) -> Self {
        self.metrics = Some(m);
        self
    }

    /// The output sink back (benchmarks count what went into it).
    pub fn into_sink(self) -> S {
        self.sink
    }

    /// Attribution recorded in a journal (replay).
    fn set_container(&mut self, cgroup_id: u64, info: Arc<ContainerInfo>) {
        self.seen_cgroups.insert(cgroup_id);
        self.engine.set_container(cgroup_id, info);
    }

    /// The containers the CRI's answers changed, passed on like a first resolution (live; at
    /// each tick, off the per-event path: records wait longer than a tick in the reorder
    /// window).
    fn cri_updates(&mut self) {
        let Some(resolver) = self.resolver.as_mut() else {
            return;
        };
        for (cgroup_id, info) in resolver.cri_updates() {
            if !self.seen_cgroups.contains(&cgroup_id) {
                continue;
            }
            if let Some(j) = self.journal.as_mut() {
                j.append_container(cgroup_id, &info);
            }
            self.engine.set_container(cgroup_id, info);
        }
    }

    /// Resolves the cgroups an event mentions, the first time each is seen (live).
    fn attribute(&mut self, ev: &Event) -> anyhow::Result<()> {
        let Some(resolver) = self.resolver.as_mut() else {
            return Ok(());
        };
        if let EventKind::SignalGenerate { target, signal, .. } = &ev.kind {
            if self.engine.is_stop(*signal) && self.seen_cgroups.contains(&target.cgroup_id) {
                resolver.stop_started(target.cgroup_id);
            }
        }
        let tasks: [Option<&crate::event::Task>; 2] = match &ev.kind {
            EventKind::SignalGenerate { sender, target, .. } => [Some(target), Some(sender)],
            EventKind::SignalDeliver { receiver, .. } => [Some(receiver), None],
            EventKind::Exit { task, .. } => [Some(task), None],
            EventKind::OomVictim { victim, .. } => [Some(victim), None],
            // Resolved at once: a hook's container is about to stop.
            EventKind::Exec { task, .. } => [Some(task), None],
        };
        for t in tasks.into_iter().flatten() {
            if t.cgroup_id <= 1 || self.seen_cgroups.contains(&t.cgroup_id) {
                continue;
            }
            // Only a container is remembered here: a miss (a cgroup created after the last
            // walk of the hierarchy, seen first through a process that already exited) is
            // retried with the next event; the resolver caches host cgroups itself.
            if let Some(info) = resolver.resolve(t.cgroup_id, Some(t.pid)) {
                self.seen_cgroups.insert(t.cgroup_id);
                if let Some(j) = self.journal.as_mut() {
                    j.append_container(t.cgroup_id, &info);
                }
                self.engine.set_container(t.cgroup_id, info);
            }
        }
        Ok(())
    }

    /// One kernel record: decoded, attributed, journaled as it came, and correlated.
    fn kernel(&mut self, bytes: &[u8], clock: Option<Clock>) -> Result<(), FeedError> {
        if CgroupCreated::is(bytes) {
            // Live only (never journaled: a replay has the containers it resolved).
            let created =
                CgroupCreated::try_from(bytes).inspect_err(|_| self.decode_errors += 1)?;
            if let Some(r) = self.resolver.as_mut() {
                r.cgroup_created(created.cgroup_id, &created.path);
            }
            return Ok(());
        }
        let record = KernelRecord::try_from(bytes).inspect_err(|_| self.decode_errors += 1)?;
        let clock = clock.or(self.clock).ok_or(FeedError::NoClock)?;
        let mono_ns = record.header().ts_ns;
        if !self.window.contains(clock.wall_ns(mono_ns)) {
            return Ok(());
        }
        // A flooding sender's repeated signals are counted from the raw record, before it is
        // interpreted (most of a signal storm's records end here).
        if let KernelRecord::Generate(g) = &record {
            let repeated = matches!(
                SigResult::from_raw(g.result),
                SigResult::AlreadyPending | SigResult::Ignored
            );
            if repeated && !self.budget.allow(g.sender.tgid, mono_ns) {
                return Ok(());
            }
        }
        let ev = record.into_event(&clock);
        self.attribute(&ev)?;
        if let Some(j) = self.journal.as_mut() {
            j.append_kernel(bytes);
        }
        if let (Some(m), EventKind::SignalGenerate { signal, result, .. }) =
            (&self.metrics, &ev.kind)
        {
            if self.engine.is_stop(*signal) {
                let class = self.engine.sender_class(&ev);
                m.signal(*signal, result.as_str(), class.as_str());
            }
        }
        self.engine.push(ev, &mut self.out);
        self.emit()?;
        Ok(())
    }

    fn lost(&mut self, count: u64, mono_ns: u64) -> anyhow::Result<()> {
        if let Some(j) = self.journal.as_mut() {
            j.append_lost(count, mono_ns);
        }
        self.engine.lost(count, mono_ns);
        Ok(())
    }

    fn emit(&mut self) -> anyhow::Result<()> {
        for o in self.out.drain(..) {
            if let Some(m) = &self.metrics {
                m.output(&o);
            }
            self.sink.output(&o)?;
        }
        Ok(())
    }

    /// Time passes: timers fire, everything is flushed, health is updated.
    /// Live: the wall clock now (set by NTP after start, stepped by hand): records from now on
    /// carry the corrected time, and the journal times what follows with it.
    fn follow_clock(&mut self) {
        let Some(old) = self.clock else { return };
        let now = Clock::now();
        let moved = now.offset_ns - old.offset_ns;
        if moved.abs() < CLOCK_FOLLOW_NS {
            return;
        }
        if moved.abs() >= CLOCK_STEP_NS {
            self.clock_steps += 1;
            tracing::warn!(
                "the wall clock stepped by {:+.3} s: records from now on carry the new time",
                moved as f64 / 1e9
            );
        }
        self.clock = Some(now);
        if let Some(j) = self.journal.as_mut() {
            j.set_clock(now.offset_ns);
        }
    }

    /// Closes the stops whose process is gone without a traced exit ([`liveness`]), journaled
    /// so that a replay closes them too.
    fn check_liveness(&mut self, now_mono_ns: u64) {
        let Some(l) = self.liveness.as_mut() else {
            return;
        };
        let engine = &self.engine;
        let gone = l.check(now_mono_ns, |before| engine.open_since(before));
        let mut closed = 0;
        for (pid, start_ns) in gone {
            if self.engine.exit_not_seen(pid, start_ns, &mut self.out) {
                closed += 1;
                if let Some(j) = self.journal.as_mut() {
                    j.append_gone(Gone {
                        pid,
                        start_ns,
                        mono_ns: now_mono_ns,
                    });
                }
            }
        }
        if closed > 0 {
            tracing::info!(
                "{closed} stop(s) closed without a record: the process is gone and its exit was \
                 never traced (sigtrace_evictions_total{{what=\"exit_not_seen\"}})"
            );
        }
    }

    fn tick(&mut self, now_mono_ns: u64, stats: &LiveStats) -> anyhow::Result<()> {
        self.follow_clock();
        self.cri_updates();
        self.engine.advance(now_mono_ns, &mut self.out);
        self.check_liveness(now_mono_ns);
        self.emit()?;
        self.sink.flush()?;
        if let Some(j) = self.journal.as_mut() {
            j.tick();
        }
        if let Some(m) = &self.metrics {
            let resolver = self.resolver.as_ref().map(|r| r.stats());
            m.health(&crate::metrics::Health {
                journal: self.journal.as_ref().map(LiveJournal::stats),
                over_budget: self.budget.over,
                clock_steps: self.clock_steps,
                ..crate::metrics::Health::gather(
                    &self.engine.stats(),
                    resolver.unwrap_or_default(),
                    stats,
                    self.decode_errors,
                )
            });
        }
        Ok(())
    }
}

impl<S: OutputSink> Consumer for Pipeline<S> {
    fn input(&mut self, input: Input<'_>) -> Result<(), FeedError> {
        match input {
            Input::Kernel(bytes, clock) => return self.kernel(bytes, clock),
            Input::Lost { count, mono_ns } => self.lost(count, mono_ns)?,
            Input::Gone(g) => {
                // As live: the engine had advanced to the tick that found it gone.
                self.engine.advance(g.mono_ns, &mut self.out);
                self.engine.exit_not_seen(g.pid, g.start_ns, &mut self.out);
                self.emit()?;
            }
            Input::Container { cgroup_id, info } => {
                self.set_container(cgroup_id, Arc::new(info.clone()))
            }
            Input::Tick { now_mono_ns, stats } => self.tick(now_mono_ns, stats)?,
            Input::Session(session) => {
                self.session(session)?;
                if let (Some(keep), Some(shaping)) = (self.recorded, &session.shaping) {
                    self.adopt(shaping, keep);
                }
            }
            Input::Warning(_) => {}
        }
        Ok(())
    }

    /// End of stream: every pending record out, everything flushed.
    fn finish(&mut self) -> anyhow::Result<()> {
        if self.leave_open {
            let left = self.engine.finish_leaving_open(&mut self.out);
            if left > 0 {
                tracing::info!(
                    "{left} stop(s) still in progress are left to the journal: the next agent on \
                     this data dir finishes them, `sigtrace replay` shows them"
                );
            }
        } else {
            // The source is drained: a process of a stop in progress that is gone now ended
            // without a traced exit (or just after the last read); nothing says how.
            if let Some(l) = &self.liveness {
                for (pid, start_ns) in l.gone_now(self.engine.open_since(u64::MAX)) {
                    self.engine.exit_not_seen(pid, start_ns, &mut self.out);
                }
            }
            self.engine.finish(&mut self.out);
        }
        self.emit()?;
        self.sink.flush()?;
        if let Some(j) = self.journal.as_mut() {
            j.finish();
        }
        Ok(())
    }
}

mod liveness;
#[cfg(test)]
mod tests;
