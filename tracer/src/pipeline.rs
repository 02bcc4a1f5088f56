//! The correlated pipeline shared by `run` and `replay`: container attribution (live) or the
//! attribution recorded at the time (replay) → journal (live) → engine → printer and metrics.
//! Live runs and replays feed the engine the same sequence, so a replay prints the records
//! the live run printed.
use std::{collections::HashSet, io::Write, sync::Arc};

use anyhow::{Context, Result};

use crate::{
    agent::{LiveStats, Sink},
    container::{ContainerInfo, ContainerResolver},
    decode::{encode, Clock, RawRecord},
    engine::{ContainerStop, Engine, Output, ProcessStop},
    event::{Event, EventKind, Signal},
    journal::JournalWriter,
    metrics::{Health, Metrics, StopFacts},
    output::Printer,
    source::Input,
};

pub struct Pipeline<W: Write> {
    engine: Engine,
    printer: Printer<W>,
    clock: Clock,
    resolver: Option<ContainerResolver>,
    journal: Option<JournalWriter>,
    metrics: Option<Arc<Metrics>>,
    /// cgroup ids already resolved (and handed to the engine and the journal).
    seen_cgroups: HashSet<u64>,
    out: Vec<Output>,
}

fn outcome(exit: Option<&crate::engine::ExitEntry>) -> &'static str {
    match exit {
        None => "unknown",
        Some(e) => match (e.code, e.signal) {
            (Some(_), _) => "exited",
            (None, Some(Signal::KILL)) => "killed",
            (None, Some(_)) => "signaled",
            (None, None) => "unknown",
        },
    }
}

fn workload(c: Option<&ContainerInfo>) -> (&str, &str, &str) {
    match c {
        None => ("", "", ""),
        Some(c) => (
            c.namespace.as_deref().unwrap_or(""),
            c.pod.as_deref().unwrap_or(""),
            c.name.as_deref().unwrap_or(c.id.get(..12).unwrap_or(&c.id)),
        ),
    }
}

impl<W: Write> Pipeline<W> {
    pub fn new(engine: Engine, printer: Printer<W>, clock: Clock) -> Self {
        Self {
            engine,
            printer,
            clock,
            resolver: None,
            journal: None,
            metrics: None,
            seen_cgroups: HashSet::new(),
            out: Vec::new(),
        }
    }

    pub fn with_resolver(mut self, r: ContainerResolver) -> Self {
        self.resolver = Some(r);
        self
    }

    pub fn with_journal(mut self, j: JournalWriter) -> Self {
        self.journal = Some(j);
        self
    }

    pub fn with_metrics(mut self, m: Arc<Metrics>) -> Self {
        self.metrics = Some(m);
        self
    }

    /// Attribution recorded in a journal (replay) or resolved now (live).
    pub fn set_container(&mut self, cgroup_id: u64, info: Arc<ContainerInfo>) {
        self.seen_cgroups.insert(cgroup_id);
        self.engine.set_container(cgroup_id, info);
    }

    /// Resolves the cgroups an event mentions, the first time each is seen.
    fn attribute(&mut self, ev: &Event) -> Result<()> {
        let Some(resolver) = self.resolver.as_mut() else {
            return Ok(());
        };
        let tasks: [Option<&crate::event::Task>; 2] = match &ev.kind {
            EventKind::SignalGenerate { sender, target, .. } => [Some(target), Some(sender)],
            EventKind::SignalDeliver { receiver, .. } => [Some(receiver), None],
            EventKind::Exit { task, .. } => [Some(task), None],
            EventKind::OomVictim { victim, .. } => [Some(victim), None],
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
                    j.append_container(t.cgroup_id, &info)
                        .context("writing the journal")?;
                }
                self.engine.set_container(t.cgroup_id, info);
            }
        }
        Ok(())
    }

    /// Feeds one kernel record (live).
    pub fn record(&mut self, rec: &RawRecord) -> Result<()> {
        let ev = rec.into_event(&self.clock);
        self.attribute(&ev)?;
        if let Some(j) = self.journal.as_mut() {
            j.append_event(&encode(rec))
                .context("writing the journal")?;
        }
        self.event(ev)
    }

    /// Feeds one decoded event (replay, or after [`Self::record`]).
    pub fn event(&mut self, ev: Event) -> Result<()> {
        if let (Some(m), EventKind::SignalGenerate { signal, result, .. }) =
            (&self.metrics, &ev.kind)
        {
            if signal.is_stop_signal() {
                let class = self.engine.sender_class(&ev);
                m.signal(&signal.name(), result.as_str(), class.as_str());
            }
        }
        self.engine.push(ev, &mut self.out);
        self.emit()
    }

    pub fn lost(&mut self, count: u64, mono_ns: u64) -> Result<()> {
        if let Some(j) = self.journal.as_mut() {
            j.append_lost(count, mono_ns)
                .context("writing the journal")?;
        }
        self.engine.lost(count, mono_ns);
        Ok(())
    }

    fn emit(&mut self) -> Result<()> {
        for o in self.out.drain(..) {
            if let Some(m) = &self.metrics {
                match &o {
                    Output::ProcessStop(p) => m.stop(&process_facts(p)),
                    Output::ContainerStop(c) => m.stop(&container_facts(c)),
                    Output::Timeline(_) => {}
                }
            }
            self.printer.output(&o)?;
        }
        Ok(())
    }

    pub fn advance(&mut self, now_mono_ns: u64) -> Result<()> {
        self.engine.advance(now_mono_ns, &mut self.out);
        self.emit()?;
        self.printer.flush()?;
        if let Some(j) = self.journal.as_mut() {
            j.flush().context("flushing the journal")?;
        }
        Ok(())
    }

    /// End of stream: every pending record out, everything flushed.
    pub fn finish(&mut self) -> Result<()> {
        self.engine.finish(&mut self.out);
        self.emit()?;
        self.printer.flush()?;
        if let Some(j) = self.journal.as_mut() {
            j.sync().context("syncing the journal")?;
        }
        Ok(())
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }
}

fn process_facts(p: &ProcessStop) -> StopFacts<'_> {
    let (namespace, pod, container) = workload(p.container.as_deref());
    StopFacts {
        kind: "process",
        namespace,
        pod,
        container,
        diagnosis: p.diagnosis.as_str(),
        outcome: outcome(p.exit.as_ref()),
        duration_s: p.duration_s,
        overrun: p.overrun,
        overrun_s: p.overrun_s,
    }
}

fn container_facts(c: &ContainerStop) -> StopFacts<'_> {
    let (namespace, pod, container) = workload(Some(&c.container));
    StopFacts {
        kind: "container",
        namespace,
        pod,
        container,
        diagnosis: c.diagnosis.as_str(),
        outcome: c.outcome(),
        duration_s: c.duration_s,
        overrun: c.overrun_s > 0.0 || c.killed,
        overrun_s: c.overrun_s,
    }
}

impl<W: Write> Sink for Pipeline<W> {
    fn input(&mut self, input: Input) -> Result<()> {
        match input {
            Input::Record(rec) => self.record(&rec),
            Input::Lost { count, mono_ns } => self.lost(count, mono_ns),
        }
    }

    fn tick(&mut self, now_mono_ns: u64, stats: &LiveStats) -> Result<()> {
        self.advance(now_mono_ns)?;
        if let Some(m) = &self.metrics {
            let e = self.engine.stats();
            let r = self
                .resolver
                .as_ref()
                .map(|r| r.stats())
                .unwrap_or_default();
            let mut evictions: Vec<(String, u64)> = e
                .evictions_by_reason()
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
            evictions.push(("container_metadata".to_string(), r.evictions));
            m.health(&Health {
                events_read: stats.records_read,
                events_lost: stats.kernel.lost,
                decode_errors: stats.decode_errors,
                tracked_processes: e.tracked_processes as u64,
                tracked_containers: e.tracked_containers as u64,
                evictions,
                metadata_misses: r.metadata_misses,
                counted_only: stats
                    .kernel
                    .counted_signals
                    .iter()
                    .map(|(s, n)| (Signal(*s).name(), *n))
                    .collect(),
            });
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        Pipeline::finish(self)
    }
}
