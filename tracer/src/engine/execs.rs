//! Runtime execs into containers ([`ExecEntry`]): exec hooks (preStop), exec probes and
//! `kubectl exec`, which a container runtime starts inside a container's cgroup and PID
//! namespace from outside it. They are kept per cgroup for [`EXEC_KEEP_NS`] of event time, so
//! that a container record can show the execs around its stop and name its preStop hook.
//!
//! The preStop hook of a stop is the exec that started before the runtime's stop signal and
//! either ended at most [`PRESTOP_GAP_NS`] before it (kubelet sends the stop as soon as the
//! hook returns) or was still running at it (the hook outlived the grace, and kubelet went
//! on). An exec whose executable already ran [`PROBE_REPEATS`] times in the container is an
//! exec probe (they repeat at a period) and never a preStop hook. When several execs qualify,
//! the one that started first is the hook. A container's own init is not a runtime exec.
//!
//! That is the guess for a container whose declared hook is not known. When the node's CRI
//! declared it ([`DeclaredHook`]), the hook is the first exec before the stop signal running the
//! declared command; an httpGet or sleep hook, or none declared, makes no exec the hook.
use std::collections::VecDeque;

use rustc_hash::FxHashMap;

use super::record::{ExecEntry, ExitEntry};
use crate::container::DeclaredHook;
use crate::event::{Comm, ExitStatus, Signal, WallTime};

/// How long execs are kept after they ended (or started, while running).
pub const EXEC_KEEP_NS: u64 = 15 * 60 * 1_000_000_000;
/// A hook that ended this close before the stop signal ran just before it.
pub const PRESTOP_GAP_NS: u64 = 1_000_000_000;
/// An executable seen this many times before in a container is a probe's.
pub const PROBE_REPEATS: usize = 2;
/// Execs kept per cgroup (oldest dropped first).
const PER_CGROUP: usize = 64;
/// Cgroups with execs kept (the one with the oldest exec is dropped first).
const MAX_CGROUPS: usize = 4096;

/// The execs of one stop, and its preStop hook.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StopExecs {
    pub execs: Vec<ExecEntry>,
    pub prestop: Option<ExecEntry>,
}

/// Execs by cgroup.
#[derive(Default)]
pub(super) struct Execs {
    by_cgroup: FxHashMap<u64, VecDeque<ExecEntry>>,
    /// Running execs: pid → cgroup.
    running: FxHashMap<u32, u64>,
    last_sweep: u64,
    /// Execs dropped by the caps.
    pub evicted: u64,
}

impl Execs {
    /// A runtime exec'd `pid` into `cgroup`. A second exec by the same process (a hook script
    /// exec'ing its command) keeps the first.
    pub fn exec(&mut self, cgroup: u64, pid: u32, comm: Comm, path: &str, mono: u64, wall: i64) {
        if self.running.get(&pid) == Some(&cgroup) {
            return;
        }
        if !self.by_cgroup.contains_key(&cgroup) && self.by_cgroup.len() >= MAX_CGROUPS {
            let oldest = self
                .by_cgroup
                .iter()
                .min_by_key(|(_, q)| q.back().map_or(0, |e| e.start_mono))
                .map(|(cg, _)| *cg);
            if let Some(cg) = oldest {
                self.drop_cgroup(cg);
            }
        }
        let q = self.by_cgroup.entry(cgroup).or_default();
        if q.len() >= PER_CGROUP {
            if let Some(old) = q.pop_front() {
                if old.end_mono.is_none() {
                    self.running.remove(&old.pid);
                }
                self.evicted += 1;
            }
        }
        q.push_back(ExecEntry {
            pid,
            comm,
            path: path.to_owned(),
            start: WallTime::from_ns(wall),
            end: None,
            duration_s: None,
            exit: None,
            killed: false,
            start_mono: mono,
            end_mono: None,
        });
        self.running.insert(pid, cgroup);
    }

    /// Process `pid` exited: ends its exec, if it was one.
    pub fn exit(&mut self, pid: u32, mono: u64, wall: i64, status: ExitStatus) {
        let Some(cgroup) = self.running.remove(&pid) else {
            return;
        };
        let Some(e) = self
            .by_cgroup
            .get_mut(&cgroup)
            .and_then(|q| q.iter_mut().rev().find(|e| e.pid == pid && e.end.is_none()))
        else {
            return;
        };
        let at = WallTime::from_ns(wall);
        e.end = Some(at);
        e.end_mono = Some(mono);
        e.duration_s = Some(mono.saturating_sub(e.start_mono) as f64 / 1e9);
        e.killed = status.signal == Some(Signal::KILL);
        e.exit = Some(ExitEntry {
            at,
            code: status.code,
            signal: status.signal,
            core_dumped: status.core_dumped,
        });
    }

    /// Drops what is older than [`EXEC_KEEP_NS`] before `t` (at most every 10 s).
    pub fn tick(&mut self, t: u64) {
        if t < self.last_sweep.saturating_add(10_000_000_000) {
            return;
        }
        self.last_sweep = t;
        let keep_from = t.saturating_sub(EXEC_KEEP_NS);
        let mut empty = Vec::new();
        for (cg, q) in &mut self.by_cgroup {
            while q
                .front()
                .is_some_and(|e| e.end_mono.unwrap_or(e.start_mono) < keep_from)
            {
                if let Some(old) = q.pop_front() {
                    if old.end_mono.is_none() {
                        self.running.remove(&old.pid);
                    }
                }
            }
            if q.is_empty() {
                empty.push(*cg);
            }
        }
        for cg in empty {
            self.by_cgroup.remove(&cg);
        }
    }

    /// The container of `cgroup` is gone: forgets its execs.
    pub fn drop_cgroup(&mut self, cgroup: u64) {
        if let Some(q) = self.by_cgroup.remove(&cgroup) {
            for e in q {
                if e.end_mono.is_none() {
                    self.running.remove(&e.pid);
                }
            }
        }
    }

    /// The execs of a stop of `cgroup` that began (stop signal) at `started` and ended at
    /// `ended` (mono): those running at some point from [`PRESTOP_GAP_NS`] before the stop
    /// signal to the end, and the preStop hook among them (see the module docs): the exec of
    /// the `declared` hook when it is known.
    pub fn for_stop(
        &self,
        cgroup: u64,
        started: u64,
        ended: u64,
        declared: Option<&DeclaredHook>,
    ) -> StopExecs {
        let Some(q) = self.by_cgroup.get(&cgroup) else {
            return StopExecs::default();
        };
        let from = started.saturating_sub(PRESTOP_GAP_NS);
        let execs: Vec<ExecEntry> = q
            .iter()
            .filter(|e| e.start_mono <= ended && e.end_mono.is_none_or(|end| end >= from))
            .cloned()
            .collect();
        let is_probe = |e: &ExecEntry| {
            q.iter()
                .filter(|o| o.start_mono < e.start_mono && o.path == e.path)
                .count()
                >= PROBE_REPEATS
        };
        let is_hook = |e: &ExecEntry| match declared {
            Some(d) => d.is_exec_of(&e.comm.as_str()),
            None => !is_probe(e),
        };
        let prestop = execs
            .iter()
            .filter(|e| e.start_mono < started && is_hook(e))
            .min_by_key(|e| e.start_mono)
            .cloned();
        StopExecs { execs, prestop }
    }
}
