//! Applies decoded events, in timestamp order, to the tracking state of [`super::state`]:
//! signal generation (episodes opened, signals, forwarding, escalation, namespace teardown,
//! internal group-exit fan-out), delivery (matched per thread group by signal number),
//! process exit (ends an episode) and OOM victims. Emits the timeline lines.
use std::num::NonZeroU64;

use super::classify::{self, SenderClass};
use super::diagnose;
use super::episode::{
    peer, same_start, ExitRec, Fwd, SenderId, SigKind, SigRec, INTERNAL_KILL_STASH, MAX_FORWARDED,
    OOM_MATCH_NS, SI_KERNEL,
};
use super::record::{Output, TimelineWhat};
use super::state::{open_key, InternalKill, Tracker};
use crate::event::{
    Disposition, Event, EventKind, ExitStatus, SigResult, Signal, StopDispositions, Task,
};

impl Tracker {
    pub fn apply(&mut self, ev: &Event, out: &mut Vec<Output>) {
        let (mono, wall) = (ev.mono_ns, ev.wall_ns);
        self.now = self.now.max(mono);
        match &ev.kind {
            EventKind::SignalGenerate {
                signal,
                si_code,
                result,
                sender,
                target,
                disposition,
                stop_dispositions,
                blocked,
                ..
            } => self.on_generate(
                mono,
                wall,
                Generate {
                    signal: *signal,
                    si_code: *si_code,
                    result: *result,
                    sender,
                    target,
                    disposition: *disposition,
                    stop_dispositions: *stop_dispositions,
                    blocked: *blocked,
                },
                out,
            ),
            EventKind::SignalDeliver {
                signal,
                receiver,
                disposition,
                converted_from,
                ..
            } => self.on_deliver(
                mono,
                wall,
                *signal,
                receiver,
                *disposition,
                *converted_from,
                out,
            ),
            EventKind::Exit {
                task,
                exit,
                group_dead,
            } => self.on_exit(mono, wall, task, *exit, *group_dead, out),
            EventKind::OomVictim {
                victim,
                invoker_pid,
            } => self.on_oom(mono, wall, victim, *invoker_pid, out),
            EventKind::Exec { task, path, .. } => {
                // A container's own init is its start, not a runtime exec into it.
                if !(task.ns_init || task.ns_pid == 1) {
                    self.stops
                        .execs
                        .exec(task.cgroup_id, task.pid, task.comm, path, mono, wall);
                }
            }
        }
    }

    /// A kernel SIGKILL from a PID-namespace init that is exiting (its flags were replaced by
    /// SIGNAL_GROUP_EXIT, or it says it is exiting): the namespace teardown.
    fn is_dying_init(&self, s: &Task) -> bool {
        let init = s.ns_init || s.ns_pid == 1 || self.lookup(s).is_some_and(|p| p.ns_init);
        let dying = s.group_exiting
            || !s.ns_init
            || self
                .lookup(s)
                .and_then(|p| p.episode)
                .and_then(|id| self.episodes.get(&id.get()))
                .is_some_and(|e| !e.is_open());
        init && dying
    }

    fn on_generate(&mut self, mono: u64, wall: i64, g: Generate<'_>, out: &mut Vec<Output>) {
        let stop = self.is_stop(g.signal) || is_runtime_stop(self, &g);
        let is_kill = g.signal == Signal::KILL;
        if is_kill && g.si_code == SI_KERNEL && g.sender.pid == g.target.pid {
            self.stash_internal_kill(mono, wall, &g);
            return;
        }
        let kind = if is_kill && g.si_code == SI_KERNEL {
            if self.is_dying_init(g.sender) {
                SigKind::Orphan
            } else {
                SigKind::Kernel
            }
        } else {
            SigKind::User
        };
        self.note_family(g.sender);
        self.note_family(g.target);
        let sent = Sent {
            mono,
            wall,
            g: &g,
            kind,
            stop,
        };
        let forwarded = self.sender_side(&sent);
        let (episode, escalation, sender_class) = self.target_side(&sent, out);
        if self.cfg.timeline && ((stop && episode.is_some()) || forwarded) {
            let what = TimelineWhat::Generate {
                signal: g.signal,
                sender: peer(g.sender),
                target: peer(g.target),
                result: g.result,
                disposition: g.disposition,
                si_code: g.si_code,
                origin: kind.origin(),
                sender_class: sender_class.unwrap_or_else(|| self.classify(&g)),
                forwarded,
                escalation,
            };
            out.push(self.timeline(mono, wall, g.target, what));
        }
    }

    fn classify(&self, g: &Generate<'_>) -> SenderClass {
        classify::classify(
            g.sender,
            g.target,
            g.si_code,
            &self.containers,
            &self.cfg.runtime_comms,
        )
    }

    /// Group-exit fan-out inside the thread group: internal. Kept briefly in case an OOM
    /// victim event says the OOM killer sent it (victim allocating itself).
    fn stash_internal_kill(&mut self, mono: u64, wall: i64, g: &Generate<'_>) {
        while self.internal_kills.len() >= INTERNAL_KILL_STASH
            || self
                .internal_kills
                .front()
                .is_some_and(|k| k.rec.mono.saturating_add(OOM_MATCH_NS) < mono)
        {
            self.internal_kills.pop_front();
        }
        self.internal_kills.push_back(InternalKill {
            pid: g.target.pid,
            start_ns: g.target.start_ns,
            rec: SigRec {
                mono,
                wall,
                signal: g.signal,
                sender: Some(peer(g.sender)),
                result: g.result,
                disposition: g.disposition,
                si_code: g.si_code,
                kind: SigKind::Kernel,
                delivered_wall: None,
                sender_class: Some(SenderClass::Kernel),
            },
        });
    }

    /// Sender side: forwarding to a child, or the teardown of a dead init's namespace.
    /// Whether the signal was forwarded by a process in a shutdown.
    fn sender_side(&mut self, sent: &Sent<'_>) -> bool {
        let (mono, wall, g) = (sent.mono, sent.wall, sent.g);
        let (kind, stop) = (sent.kind, sent.stop);
        let (sender, target) = (g.sender, g.target);
        if sender.pid == target.pid {
            return false;
        }
        let sid = self
            .lookup(sender)
            .and_then(|p| p.episode)
            .map(NonZeroU64::get);
        let Some(sep) = sid.and_then(|id| self.episodes.get_mut(&id)) else {
            return false;
        };
        if kind == SigKind::Orphan {
            sep.add_child(target);
            return false;
        }
        if target.ppid != sender.pid || !sep.is_open() {
            return false;
        }
        sep.last_mono = mono;
        sep.add_child(target);
        if sep.forwarded.len() < MAX_FORWARDED {
            sep.forwarded.push(Fwd {
                wall,
                signal: g.signal,
                stop,
                target: peer(target),
                result: g.result,
            });
        }
        true
    }

    /// Target side: opens or finds its episode and records the signal in it. Returns the
    /// episode, whether the signal is an escalation, and its sender class when classified.
    fn target_side(
        &mut self,
        sent: &Sent<'_>,
        out: &mut Vec<Output>,
    ) -> (Option<u64>, bool, Option<SenderClass>) {
        let (mono, wall, g) = (sent.mono, sent.wall, sent.g);
        let (kind, stop) = (sent.kind, sent.stop);
        let (sender, target, signal) = (g.sender, g.target, g.signal);
        // Only stop-signal targets and namespace inits (sticky flag) need an entry.
        if !self.touch(target, mono, stop || target.ns_init, out) {
            return (None, false, None);
        }
        let no_effect = g.result == SigResult::Ignored && target.group_exiting;
        let mut episode = self.open_episode_of(target);
        if episode.is_none() && stop && !no_effect && !self.is_dead(target) {
            episode = Some(self.open_episode(target, mono, wall, out));
        }
        // Classified only for signals kept in a record or shown (not per event).
        let sender_class = episode.is_some().then(|| self.classify(g));
        let Some(ep) = episode.and_then(|id| self.episodes.get_mut(&id)) else {
            return (episode, false, None);
        };
        let mut escalation = false;
        ep.last_mono = mono;
        ep.ns_init |= target.ns_init;
        if ep.first_signal.is_none() && stop {
            ep.first_signal = Some(signal);
            ep.first_sender = Some(SenderId {
                pid: sender.pid,
                ppid: sender.ppid,
                comm: sender.comm,
            });
            ep.first_result = Some(g.result);
            ep.first_disposition = Some(g.disposition);
            ep.first_blocked = g.blocked;
            ep.dispositions = Some(g.stop_dispositions);
        } else if signal == Signal::KILL
            && kind == SigKind::User
            && ep.first_signal.is_some_and(|s| s != Signal::KILL)
        {
            escalation = true;
            if ep.kill.is_none() {
                ep.kill = Some((mono, wall));
            }
            if ep.grace_kill.is_none() && ep.first_sender.as_ref().is_some_and(|s| s.same(sender)) {
                ep.grace_kill = Some(mono);
            }
        }
        match kind {
            SigKind::Orphan => ep.orphan_killed = true,
            SigKind::Kernel => ep.kernel_killed = true,
            SigKind::User => {}
        }
        ep.push_signal(SigRec {
            mono,
            wall,
            signal,
            sender: Some(peer(sender)),
            result: g.result,
            disposition: g.disposition,
            si_code: g.si_code,
            kind,
            delivered_wall: None,
            sender_class,
        });
        (episode, escalation, sender_class)
    }

    #[allow(clippy::too_many_arguments)]
    fn on_deliver(
        &mut self,
        mono: u64,
        wall: i64,
        signal: Signal,
        receiver: &Task,
        disposition: Disposition,
        converted_from: Option<Signal>,
        out: &mut Vec<Output>,
    ) {
        self.note_family(receiver);
        // A fatal default-action signal is delivered as SIGKILL: it is that signal's delivery.
        let converted = signal == Signal::KILL && converted_from.is_some();
        let eff = if converted {
            converted_from.unwrap_or(signal)
        } else {
            signal
        };
        let disposition = if converted {
            Disposition::Default
        } else {
            disposition
        };
        // Its episode's own stop signal too (a runtime's STOPSIGNAL outside the usual set).
        let stop = self.is_stop(eff) || self.episode_signal(receiver) == Some(eff);
        if !self.touch(receiver, mono, stop, out) {
            return;
        }
        let mut opened = false;
        let id = match self.open_episode_of(receiver) {
            Some(id) => id,
            // A real stop signal delivered whose generation was not seen. A SIGKILL delivery
            // alone proves nothing: every thread of a group that exits gets one.
            None if stop && eff != Signal::KILL && !self.is_dead(receiver) => {
                if self
                    .trace_start
                    .is_some_and(|t| mono < t.saturating_add(super::BEFORE_TRACE_NS))
                {
                    self.evictions.began_before_trace += 1;
                    return;
                }
                opened = true;
                self.open_episode(receiver, mono, wall, out)
            }
            None => return,
        };
        let Some(ep) = self.episodes.get_mut(&id) else {
            return;
        };
        ep.last_mono = mono;
        ep.ns_init |= receiver.ns_init;
        let idx = ep
            .undelivered_position(eff, |r| {
                r.result != SigResult::AlreadyPending && r.result != SigResult::Ignored
            })
            .or_else(|| ep.undelivered_position(eff, |r| r.result != SigResult::Ignored));
        let matched = match idx {
            Some(i) => {
                ep.deliver(i, wall, disposition);
                true
            }
            // Duplicates: per-thread SIGKILL deliveries, collapsed signals.
            None if eff == Signal::KILL || ep.lists(eff) => false,
            None => {
                ep.push_signal(SigRec {
                    mono,
                    wall,
                    signal: eff,
                    sender: None,
                    result: SigResult::Unknown,
                    disposition,
                    si_code: -1,
                    kind: SigKind::User,
                    delivered_wall: Some(wall),
                    sender_class: None,
                });
                true
            }
        };
        if opened {
            ep.first_signal = Some(eff);
            ep.first_disposition = Some(disposition);
            ep.mark_incomplete(
                "the stop signal's generation was not seen (sent before the trace started, or lost)",
            );
        }
        if stop && !converted && disposition == Disposition::Handler {
            ep.handler_ran = true;
        }
        if matched && stop && self.cfg.timeline {
            let what = TimelineWhat::Deliver {
                signal,
                tid: receiver.tid,
                disposition,
                converted_from: converted.then_some(eff),
            };
            out.push(self.timeline(mono, wall, receiver, what));
        }
    }

    fn on_exit(
        &mut self,
        mono: u64,
        wall: i64,
        task: &Task,
        status: ExitStatus,
        group_dead: bool,
        out: &mut Vec<Output>,
    ) {
        self.note_family(task);
        if !group_dead {
            return; // one thread; the group lives on
        }
        self.stops.execs.exit(task.pid, mono, wall, status);
        let Some(p) = self.lookup(task).copied() else {
            return;
        };
        match self.open_episode_of(task) {
            Some(id) => {
                let settle = self.cfg.exit_settle_ns;
                let Some(ep) = self.episodes.get_mut(&id) else {
                    return;
                };
                ep.exit = Some(ExitRec { mono, wall, status });
                ep.last_mono = mono;
                ep.ns_init |= task.ns_init;
                let after_s = mono.saturating_sub(ep.first_mono) as f64 / 1e9;
                self.open.removed(open_key(&self.episodes));
                self.settling.insert((mono.saturating_add(settle), id));
                if self.cfg.timeline {
                    let what = TimelineWhat::Exit {
                        exit: diagnose::exit_entry(wall, &status),
                        after_s,
                    };
                    out.push(self.timeline(mono, wall, task, what));
                }
            }
            None if p.episode.is_none() => {
                self.procs.remove(&task.pid);
            }
            None => {}
        }
    }

    fn on_oom(&mut self, mono: u64, wall: i64, victim: &Task, invoker: u32, out: &mut Vec<Output>) {
        if !self.touch(victim, mono, true, out) || self.is_dead(victim) {
            return;
        }
        let id = match self.open_episode_of(victim) {
            Some(id) => id,
            None => {
                let stash = self.internal_kills.iter().position(|k| {
                    k.pid == victim.pid
                        && same_start(k.start_ns, victim.start_ns)
                        && k.rec.mono <= mono
                        && k.rec.mono.saturating_add(OOM_MATCH_NS) >= mono
                });
                let kill = stash.and_then(|i| self.internal_kills.remove(i));
                let (m, w) = kill
                    .as_ref()
                    .map_or((mono, wall), |k| (k.rec.mono, k.rec.wall));
                let id = self.open_episode(victim, m, w, out);
                if let (Some(k), Some(ep)) = (kill, self.episodes.get_mut(&id)) {
                    ep.first_signal = Some(Signal::KILL);
                    ep.first_sender = k.rec.sender.as_ref().map(|s| SenderId {
                        pid: s.pid,
                        ppid: 0,
                        comm: s.comm,
                    });
                    ep.first_result = Some(k.rec.result);
                    ep.kernel_killed = true;
                    ep.push_signal(k.rec);
                }
                id
            }
        };
        if let Some(ep) = self.episodes.get_mut(&id) {
            ep.oom_invoker = Some(invoker);
            ep.last_mono = mono;
        }
        if self.cfg.timeline {
            out.push(self.timeline(
                mono,
                wall,
                victim,
                TimelineWhat::OomVictim {
                    invoker_pid: invoker,
                },
            ));
        }
    }
}

/// The fields of a generate event the tracker uses.
pub(super) struct Generate<'a> {
    pub signal: Signal,
    pub si_code: i32,
    pub result: SigResult,
    pub sender: &'a Task,
    pub target: &'a Task,
    pub disposition: Disposition,
    pub stop_dispositions: StopDispositions,
    pub blocked: bool,
}

/// A generated signal as the generation handlers see it: when, what, how it came about and
/// whether it starts a shutdown.
#[derive(Clone, Copy)]
struct Sent<'a> {
    mono: u64,
    wall: i64,
    g: &'a Generate<'a>,
    kind: SigKind,
    stop: bool,
}

/// A signal the container runtime sends to a process of an attributed container is that
/// container's stop signal, whatever its number (`STOPSIGNAL SIGWINCH`, `--stop-signal
/// SIGUSR1`). SIGCHLD never is: a runtime process that exits sends it to its parent.
fn is_runtime_stop(tr: &Tracker, g: &Generate<'_>) -> bool {
    g.signal != Signal::CHLD
        && (1..=64).contains(&g.signal.0)
        && tr.containers.contains_key(&g.target.cgroup_id)
        && classify::classify(
            g.sender,
            g.target,
            g.si_code,
            &tr.containers,
            &tr.cfg.runtime_comms,
        ) == SenderClass::Runtime
}
