//! Container-level shutdown records ([`ContainerStop`]): groups the process records of one
//! attributed cgroup and emits one record when the container stopped.
//!
//! A container *stopped* when the init of its PID namespace (a process record with `ns_init`
//! and an exit) died and no shutdown of another process of its cgroup is still open (the
//! children killed by the namespace teardown are included). Records of a cgroup whose init did
//! not die (a worker restarted inside a running container, `--pid=host`) form no container
//! record: their group is dropped after `container_quiet_ns` without new records, or at the end
//! of the trace. Everything is driven by event time, like the rest of the engine.
//!
//! The container's diagnosis is the one that explains its least clean process, by this rank
//! (ties: the slowest process, then the init): oom_killed, shell_not_forwarding,
//! ignored_by_pid1, wrong_signal, signal_ignored, signal_blocked, slow_prestop, slow_handler,
//! force_killed, default_action, orphan_killed, graceful. (An orphan kill is the consequence of
//! its init's stop, so the init's diagnosis explains it unless the init was graceful: S12.)
//!
//! `slow_prestop` is the container's own (no process has it): a Kubernetes container whose
//! preStop hook ([`super::execs`]) used half or more of the termination grace and that was
//! SIGKILLed, or whose hook was still running at the runtime's SIGKILL, or at the stop signal
//! itself (kubelet gave up on it after the whole grace, whatever killed it afterwards). The
//! app's process record keeps its own diagnosis (often slow_handler: it got what the hook
//! left). A runtime exec (the hook, a probe) that the namespace teardown killed never makes the
//! container `orphan_killed`: it is not one of the init's children.
use std::borrow::Cow;
use std::sync::Arc;

use super::classify::SenderClass;
use super::execs::{Execs, StopExecs};
use super::pods::Pods;
use super::queue::TimeQueue;
use super::record::{ContainerStop, Diagnosis, Output, ProcessStop, SignalEntry};
use crate::container::{ContainerInfo, DeclaredHook};
use crate::event::{Signal, WallTime};
use rustc_hash::FxHashMap;

/// Bound on groups waiting for their container's init to die.
const MAX_GROUPS: usize = 10_000;

struct Group {
    info: Arc<ContainerInfo>,
    /// Earliest first stop signal (mono, wall).
    first: (u64, i64),
    /// Latest end (mono).
    last_end: u64,
    /// Time of the latest record (for the quiet expiry).
    last_record: u64,
    records: Vec<(ProcessStop, u64)>,
    init_dead: bool,
}

/// Groups process records into container records.
#[derive(Default)]
pub(super) struct Containers {
    groups: FxHashMap<u64, Group>,
    /// (time of the latest record, cgroup) for the quiet expiry.
    quiet: TimeQueue,
    /// Groups dropped by the `MAX_GROUPS` cap.
    pub evicted: u64,
    /// Pod records from the container records.
    pub pods: Pods,
    /// Runtime execs into containers, for the records' `execs` and `prestop`.
    pub execs: Execs,
}

impl Containers {
    /// (groups waiting for their init's death, groups dropped by the cap).
    pub fn counts(&self) -> (usize, u64) {
        (self.groups.len(), self.evicted)
    }

    /// A process record was emitted; `first`/`end` are its first stop signal (mono, wall) and
    /// its end (mono); `open_in_cgroup` is how many episodes of its cgroup remain.
    pub fn record(
        &mut self,
        stop: ProcessStop,
        first: (u64, i64),
        end: u64,
        open_in_cgroup: usize,
        out: &mut Vec<Output>,
    ) {
        let Some(info) = stop.container.clone() else {
            return;
        };
        let cg = stop.cgroup_id;
        if !self.groups.contains_key(&cg) && self.groups.len() >= MAX_GROUPS {
            if let Some((t, old)) = self.quiet.first() {
                self.quiet.remove((t, old));
                self.groups.remove(&old);
                self.evicted += 1;
            }
        }
        let g = self.groups.entry(cg).or_insert_with(|| Group {
            info,
            first,
            last_end: end,
            last_record: end,
            records: Vec::new(),
            init_dead: false,
        });
        self.quiet.remove((g.last_record, cg));
        g.first = g.first.min(first);
        g.last_end = g.last_end.max(end);
        g.last_record = g.last_record.max(end);
        g.init_dead |= stop.ns_init && stop.exit.is_some();
        g.records.push((stop, first.0));
        let done = g.init_dead && open_in_cgroup == 0;
        let key = (g.last_record, cg);
        if done {
            self.emit(cg, out);
        } else {
            self.quiet.insert(key);
        }
    }

    /// An episode of `cgroup` ended without a container record: when it was the last open
    /// one, emits the group if its init is dead.
    pub fn episode_closed(&mut self, cgroup: u64, open_in_cgroup: usize, out: &mut Vec<Output>) {
        if open_in_cgroup > 0 {
            return;
        }
        match self.groups.get(&cgroup) {
            Some(g) if g.init_dead => self.emit(cgroup, out),
            // Waits (again) for the quiet expiry.
            Some(g) => {
                self.quiet.insert((g.last_record, cgroup));
            }
            None => {}
        }
    }

    /// Drops groups whose init did not die and that saw no record for `quiet_ns` before `t`;
    /// emits the pod records that are due.
    pub fn tick(
        &mut self,
        t: u64,
        quiet_ns: u64,
        open: impl Fn(u64) -> usize,
        out: &mut Vec<Output>,
    ) {
        let groups = &self.groups;
        self.pods.tick(
            t,
            |uid| {
                groups
                    .values()
                    .any(|g| g.info.pod_uid.as_deref() == Some(uid))
            },
            out,
        );
        while let Some((last, cg)) = self.quiet.first() {
            if last.saturating_add(quiet_ns) >= t {
                break;
            }
            self.quiet.remove((last, cg));
            let keep = open(cg) > 0 || self.groups.get(&cg).is_some_and(|g| g.init_dead);
            if keep {
                // Still waiting for its open episodes: looked at again when they close.
                continue;
            }
            self.groups.remove(&cg);
        }
    }

    /// End of the trace: emits the groups whose init died, in cgroup order.
    pub fn finish(&mut self, out: &mut Vec<Output>) {
        let mut ready: Vec<u64> = self
            .groups
            .iter()
            .filter(|(_, g)| g.init_dead)
            .map(|(&cg, _)| cg)
            .collect();
        ready.sort_unstable();
        for cg in ready {
            self.emit(cg, out);
        }
        self.groups.clear();
        self.quiet.clear();
        self.pods.finish(out);
    }

    fn emit(&mut self, cg: u64, out: &mut Vec<Output>) {
        let Some(mut g) = self.groups.remove(&cg) else {
            return;
        };
        self.quiet.remove((g.last_record, cg));
        g.records.sort_by_key(|(s, first)| (*first, s.pid));
        let init = g
            .records
            .iter()
            .map(|(s, _)| s)
            .find(|s| s.ns_init && s.exit.is_some());
        let reasons = incomplete_reasons(&g.records);
        let outside = outside_signal(&g.records);
        let ended = g
            .records
            .iter()
            .filter_map(|(s, _)| s.exit.as_ref().map(|e| e.at))
            .max();
        let started = outside.map_or_else(|| WallTime::from_ns(g.first.1), |e| e.at);
        let grace = Grace::of(
            &g.info,
            init,
            started,
            &self.execs,
            cg,
            g.first.0,
            g.last_end,
        );
        // A runtime exec (the hook, a probe) killed by the namespace teardown is no orphan of
        // the container's init: it does not explain the stop.
        let exec_pids: Vec<u32> = grace
            .execs
            .execs
            .iter()
            .chain(&grace.execs.prestop)
            .map(|e| e.pid)
            .collect();
        let worst = worst(&g.records, &exec_pids);
        let diagnosis = worst.map_or(Diagnosis::Graceful, |s| s.diagnosis);
        let killed = g.records.iter().any(|(s, _)| s.killed);
        // slow_prestop explains the stop unless the app would not have stopped anyway.
        let prestop = grace
            .slow_prestop(killed)
            .filter(|_| Diagnosis::SlowPrestop.rank() < diagnosis.rank());
        let (diagnosis, hint) = match prestop {
            Some(h) => (Diagnosis::SlowPrestop, Some(Cow::Owned(h))),
            None => (
                diagnosis,
                worst
                    .and_then(|s| s.hint.clone())
                    .or_else(|| diagnosis.hint().map(Cow::Borrowed)),
            ),
        };
        let mut stop = ContainerStop {
            started,
            ended,
            stop_signal: outside.map(|e| e.signal),
            sender: outside.and_then(|e| e.sender),
            sender_class: outside.and_then(|e| e.sender_class),
            container: g.info,
            cgroup_id: cg,
            init_pid: init.map_or(0, |s| s.pid),
            exit: init.and_then(|s| s.exit.clone()),
            duration_s: g.last_end.saturating_sub(g.first.0) as f64 / 1e9,
            grace_s: init.and_then(|s| s.grace_s),
            killed,
            agent_restarted_during: g.records.iter().any(|(s, _)| s.agent_restarted_during),
            effective_grace_s: grace.effective_s,
            termination_grace_s: grace.termination_s,
            termination_grace_source: grace.termination_source.map(str::to_owned),
            prestop: grace.execs.prestop,
            prestop_s: grace.prestop_s,
            execs: grace.execs.execs,
            overrun: g.records.iter().any(|(s, _)| s.overrun),
            overrun_s: g
                .records
                .iter()
                .map(|(s, _)| s.overrun_s)
                .fold(0.0, f64::max),
            diagnosis,
            hint,
            processes: Vec::new(),
            complete: reasons.is_empty(),
            incomplete_reason: (!reasons.is_empty()).then(|| reasons.join("; ")),
        };
        stop.processes = g.records.into_iter().map(|(s, _)| s).collect();
        // A pod's termination starts with its first preStop hook, if any.
        let first = stop
            .prestop
            .as_ref()
            .map_or(g.first.0, |p| p.start_mono.min(g.first.0));
        self.pods.container(stop, first, g.last_end, out);
    }
}

/// The process record that explains the container's stop: the least clean by rank, then the
/// slowest, then the init. A runtime exec (`exec_pids`) killed by the namespace teardown is
/// left out.
fn worst<'a>(records: &'a [(ProcessStop, u64)], exec_pids: &[u32]) -> Option<&'a ProcessStop> {
    let orphaned_exec =
        |s: &ProcessStop| s.diagnosis == Diagnosis::OrphanKilled && exec_pids.contains(&s.pid);
    records
        .iter()
        .map(|(s, _)| s)
        .filter(|s| !orphaned_exec(s))
        .min_by(|a, b| {
            a.diagnosis
                .rank()
                .cmp(&b.diagnosis.rank())
                .then(b.duration_s.total_cmp(&a.duration_s))
                .then(b.ns_init.cmp(&a.ns_init))
                .then(a.pid.cmp(&b.pid))
        })
}

/// Why each incomplete process record is incomplete, named by process.
fn incomplete_reasons(records: &[(ProcessStop, u64)]) -> Vec<String> {
    records
        .iter()
        .filter_map(|(s, _)| {
            s.incomplete_reason
                .as_ref()
                .map(|r| format!("{}[{}]: {r}", s.comm, s.pid))
        })
        .collect()
}

/// The container's stop signal: the earliest one sent from outside the container.
fn outside_signal(records: &[(ProcessStop, u64)]) -> Option<&SignalEntry> {
    records
        .iter()
        .flat_map(|(s, _)| s.signals.iter())
        .filter(|e| {
            !matches!(
                e.sender_class,
                Some(SenderClass::SameContainer | SenderClass::ContainerInit | SenderClass::Kernel)
            )
        })
        .min_by(|a, b| a.at.cmp(&b.at))
}

/// The grace budget of one container stop: what the runtime gave the app, what the pod was
/// configured with, and the preStop hook that used the difference.
struct Grace {
    execs: StopExecs,
    effective_s: Option<f64>,
    termination_s: Option<f64>,
    termination_source: Option<&'static str>,
    /// The preStop hook's run time up to the SIGKILL (or its end).
    prestop_s: Option<f64>,
    /// The hook was still running at the runtime's SIGKILL.
    prestop_outlived: bool,
    /// The hook was still running at the stop signal: kubelet gave up on it after the whole
    /// grace and stopped the app with what was left (2 s at least).
    prestop_abandoned: bool,
    /// The declared hook as a person reads it ("sleep 30 s"), when the CRI said.
    declared: Option<String>,
}

impl Grace {
    fn of(
        info: &ContainerInfo,
        init: Option<&ProcessStop>,
        started: WallTime,
        execs: &Execs,
        cgroup: u64,
        first_mono: u64,
        end_mono: u64,
    ) -> Self {
        let declared = info.prestop_hook.as_ref();
        let mut found = execs.for_stop(cgroup, first_mono, end_mono, declared);
        let kubernetes = info.pod_uid.is_some() && !info.is_sandbox();
        if !kubernetes {
            found.prestop = None;
        }
        let kill = init.and_then(|s| {
            s.signals
                .iter()
                .find(|e| e.signal == Signal::KILL && e.sender_class == Some(SenderClass::Runtime))
        });
        let effective_s = kill.map(|k| (k.at.micros() - started.micros()).max(0) as f64 / 1e6);
        // The SIGKILL in event time: the stop signal's mono plus the effective grace.
        let kill_mono = effective_s.map(|e| first_mono.saturating_add((e * 1e9) as u64));
        let mut prestop_s = found
            .prestop
            .as_ref()
            .map(|p| p.ran_until(kill_mono.unwrap_or(end_mono)));
        let prestop_outlived = match (&found.prestop, kill_mono) {
            (Some(p), Some(k)) => p.end_mono.is_none_or(|e| e >= k),
            _ => false,
        };
        let mut prestop_abandoned = found
            .prestop
            .as_ref()
            .is_some_and(|p| p.end_mono.is_none_or(|e| e > first_mono));
        // A sleep hook is kubelet's own: its declared seconds, cut at the whole grace.
        if let (true, Some(DeclaredHook::Sleep { seconds })) = (kubernetes, declared) {
            let grace = info.termination_grace_s.unwrap_or(u32::MAX);
            prestop_s = Some(f64::from((*seconds).min(grace)));
            prestop_abandoned = *seconds >= grace;
        }
        let source = if info.facts_source.as_deref() == Some("cri") {
            "cri"
        } else {
            "runtime"
        };
        let (termination_s, termination_source) = match (info.termination_grace_s, effective_s) {
            (Some(t), _) if kubernetes => (Some(f64::from(t)), Some(source)),
            (None, Some(e)) if kubernetes => (Some(e + prestop_s.unwrap_or(0.0)), Some("inferred")),
            (Some(t), _) if info.runtime == "docker" && info.pod_uid.is_none() => {
                (Some(f64::from(t)), Some("docker"))
            }
            _ => (None, None),
        };
        Self {
            execs: found,
            effective_s,
            termination_s,
            termination_source,
            prestop_s,
            prestop_outlived,
            prestop_abandoned,
            declared: declared
                .filter(|d| **d != DeclaredHook::None)
                .map(DeclaredHook::describe),
        }
    }

    /// The `slow_prestop` hint when the rule holds (see the module docs).
    fn slow_prestop(&self, killed: bool) -> Option<String> {
        let name = self.declared.as_ref().map_or_else(
            || "preStop hook".to_owned(),
            |d| format!("preStop hook ({d})"),
        );
        if self.prestop_abandoned {
            let grace = self.termination_s.map_or_else(
                || "the pod's whole".to_string(),
                |t| format!("the whole {t:.0} s"),
            );
            return Some(format!(
                "the {name} was still running when kubelet gave up on it after {grace} \
                 grace; the app got the 2 s minimum: shorten the hook or raise \
                 terminationGracePeriodSeconds"
            ));
        }
        let hook = self.prestop_s?;
        let total = self.termination_s?;
        let slow = killed && (hook >= 0.5 * total || self.prestop_outlived);
        slow.then(|| {
            format!(
                "the {name} took {hook:.1} s of the {total:.0} s grace, leaving the app \
                 {:.1} s: shorten the hook or raise terminationGracePeriodSeconds",
                (total - hook).max(0.0)
            )
        })
    }
}
