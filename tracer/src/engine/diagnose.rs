//! The diagnosis rules and the timing (grace, overrun) of a finished episode, and the
//! assembly of its [`ProcessStop`] record.
//!
//! # Rules (first match wins)
//!
//! "Stop signal" below is the episode's *first* stop signal (SIGTERM, SIGINT, SIGQUIT, SIGHUP,
//! SIGKILL, a configured extra, or whatever signal a container runtime sent to a process of
//! its container); "handler ran" means a stop signal was delivered to a handler; "ns init" is
//! sticky (any event showed `SIGNAL_UNKILLABLE`) or `ns_pid == 1`.
//!
//! A handler *only re-raised* when, within 10 ms of taking the stop signal, the process sent
//! that signal to itself with the default action installed: the default handler of a runtime
//! (Node.js, Go without `signal.Notify`) that restores the default and re-raises. None of the
//! application's cleanup ran. A stop signal is *dropped by the kernel* when the process is a
//! namespace init and the signal met the default action without ending it: ignored at
//! generation, or delivered to the default action (re-raised while blocked) and discarded.
//! "Escalation" is a user-space SIGKILL after a non-SIGKILL stop signal. The SIGKILL that
//! `signal_deliver` reports for a fatal default action (`converted_from`) is that signal's
//! delivery, never an escalation.
//!
//! | # | condition | diagnosis |
//! |---|---|---|
//! | 1 | an OOM victim event for the process during the episode (its kernel SIGKILL matched to it) | `oom_killed` |
//! | 2 | a kernel SIGKILL (SI_KERNEL) from its dying PID-namespace init, no handler ran, and its stop signal was not set to SIG_IGN (that is the explanation: 5a) | `orphan_killed` |
//! | 3 | the first stop signal is SIGKILL | `force_killed` |
//! | 4 | exited, no escalation, no kernel kill, not past a known grace, not by SIGKILL: | |
//! | 4a | … its handler only re-raised | `default_action` |
//! | 4b | … a handler ran, or it exited with a status code (sigwait/signalfd, or on its own) | `graceful` |
//! | 4c | … died by the stop signal's default action while handling another of TERM/INT/QUIT/HUP | `wrong_signal` |
//! | 4d | … died by a signal's default action | `default_action` |
//! | 5 | otherwise (escalated, outlived the grace, or still running at the end): | |
//! | 5a | the stop signal's disposition was SIG_IGN | `signal_ignored` |
//! | 5b | ns init whose comm is a shell (sh, bash, dash, ash, busybox, zsh, ksh, mksh), whose handler did not run (no trap), that forwarded no stop signal, with children (same cgroup, or killed by its namespace teardown) that got none | `shell_not_forwarding` |
//! | 5c | default disposition for the stop signal, a handler for another of TERM/INT/QUIT/HUP | `wrong_signal` |
//! | 5d | the stop signal (first, or re-raised) was dropped by the kernel (ns init, default action) | `ignored_by_pid1` |
//! | 5e | a handler ran, or it forwarded a stop signal (it took its own with sigwait/signalfd, like tini), and the process outlived the grace | `slow_handler` |
//! | 5f | generated but never delivered before the end (blocked mask, D state, or unknown) | `signal_blocked` |
//!
//! # Timing
//!
//! - `grace_s`: *observed* = first stop signal → first SIGKILL from the same sender (same
//!   pid, or same comm and parent pid: `runc kill TERM` and `runc kill KILL` are two
//!   short-lived children of one shim); else the configured `grace_s` when the first stop
//!   signal is not SIGKILL and it is not an OOM kill; else none.
//! - `killed`: an escalation happened before the exit.
//! - `overrun`: `killed`, or a grace is known and the process outlived it (exit, or end of
//!   observation, later than first stop signal + grace).
//! - `overrun_s`: from the end of the grace period (first stop signal + grace; the SIGKILL's
//!   time when no grace is known) to the exit or end of observation; ≥ 0; 0 when not overrun.
//! - `near_overrun`: not overrun, exited, and the exit came at ≥ 80 % of the known grace.
use std::borrow::Cow;
use std::sync::Arc;

use super::config::EngineConfig;
use super::episode::{Episode, SigKind, SigRec};
use super::record::{
    Diagnosis, ExitEntry, ForwardEntry, GraceSource, Peer, ProcessStop, SignalEntry,
};
use crate::container::ContainerInfo;
use crate::event::{Disposition, ExitStatus, SigResult, Signal, StopDispositions, WallTime};

/// Shells that, as PID 1, typically neither handle nor forward a stop signal.
pub const SHELLS: [&str; 8] = ["sh", "bash", "dash", "ash", "busybox", "zsh", "ksh", "mksh"];

/// The four stop signals whose dispositions are read at stop time.
const COMMON_STOPS: [Signal; 4] = [Signal::TERM, Signal::INT, Signal::QUIT, Signal::HUP];

/// Timing of one episode, in nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Timing {
    pub duration_ns: u64,
    pub grace_ns: Option<u64>,
    pub grace_source: Option<GraceSource>,
    pub killed: bool,
    pub overrun: bool,
    pub overrun_ns: u64,
    pub near_overrun: bool,
}

/// `end`: exit time, or end of observation when the process did not exit. The grace is the
/// observed one, else the one the runtime declared for the process's container (`declared_s`)
/// when the process ended within it (a process that outlived it unkilled was given more: a
/// `docker stop -t`, a `kubectl delete --grace-period`), else the configured one.
pub(super) fn timing(
    ep: &Episode,
    grace_cfg_s: Option<f64>,
    declared_s: Option<u32>,
    end: u64,
) -> Timing {
    let duration_ns = end.saturating_sub(ep.first_mono);
    let stop_first = ep.first_signal.is_some_and(|s| s != Signal::KILL);
    let configured = grace_cfg_s
        .filter(|g| g.is_finite() && *g >= 0.0)
        .map(|g| (g * 1e9) as u64);
    let declared = declared_s.map(|s| u64::from(s) * 1_000_000_000);
    let observed = ep.grace_kill.map(|k| k.saturating_sub(ep.first_mono));
    let unobserved = stop_first && ep.oom_invoker.is_none();
    let (grace_ns, grace_source) = match (observed, declared, configured) {
        (Some(o), _, _) => (Some(o), Some(GraceSource::Observed)),
        (None, Some(d), _) if unobserved && duration_ns <= d => {
            (Some(d), Some(GraceSource::Declared))
        }
        (None, _, Some(c)) if unobserved => (Some(c), Some(GraceSource::Configured)),
        _ => (None, None),
    };
    let killed = ep.kill.is_some();
    let outlived = grace_ns.is_some_and(|g| duration_ns > g);
    let overrun = killed || outlived;
    let grace_end = match (grace_ns, ep.kill) {
        (Some(g), _) => ep.first_mono.saturating_add(g),
        (None, Some((k, _))) => k,
        (None, None) => end,
    };
    let overrun_ns = if overrun {
        end.saturating_sub(grace_end)
    } else {
        0
    };
    let near_overrun = !overrun
        && ep.exit.is_some()
        && grace_ns
            .is_some_and(|g| (duration_ns as u128) * 5 >= (g as u128) * 4 && duration_ns < g);
    Timing {
        duration_ns,
        grace_ns,
        grace_source,
        killed,
        overrun,
        overrun_ns,
        near_overrun,
    }
}

pub fn is_shell(comm: &str) -> bool {
    SHELLS.contains(&comm)
}

fn ns_init(ep: &Episode) -> bool {
    ep.ns_init || ep.ns_pid == 1
}

/// Children that got no stop signal from the episode's process.
pub(super) fn unsignalled_children(ep: &Episode) -> Vec<Peer> {
    ep.children
        .iter()
        .filter(|c| !ep.forwarded.iter().any(|f| f.stop && f.target.pid == c.pid))
        .copied()
        .collect()
}

/// The common stop signal the process handles, when the first stop signal had the default
/// action.
fn handled_instead(ep: &Episode) -> Option<Signal> {
    let (sig, d) = (ep.first_signal?, ep.dispositions?);
    let sent = ep
        .first_disposition
        .or_else(|| d.get(sig))
        .unwrap_or_default();
    if sig == Signal::KILL || sent != Disposition::Default {
        return None;
    }
    COMMON_STOPS
        .into_iter()
        .find(|&s| s != sig && d.get(s) == Some(Disposition::Handler))
}

/// A handler that takes the stop signal and re-raises it this soon only re-raised.
const RERAISE_WINDOW_NS: i64 = 10_000_000;

/// The stop signal the process sent itself, with the default action, right after a handler
/// took it: the handler only re-raised (module docs).
fn reraise(ep: &Episode) -> Option<&SigRec> {
    ep.signals.iter().enumerate().find_map(|(i, r)| {
        let own = r.kind == SigKind::User && r.sender.is_some_and(|s| s.pid == ep.pid);
        if !own || r.disposition != Disposition::Default {
            return None;
        }
        let handled = ep.signals[..i].iter().find_map(|h| {
            (h.signal == r.signal && h.disposition == Disposition::Handler)
                .then_some(h.delivered_wall)
                .flatten()
        })?;
        (r.wall.saturating_sub(handled) <= RERAISE_WINDOW_NS).then_some(r)
    })
}

/// The kernel dropped the stop signal (first, or re-raised): the process is a namespace init
/// and the signal met the default action, at generation (`ignored`) or at delivery, without
/// ending it.
fn dropped_by_kernel(ep: &Episode) -> bool {
    let Some(sig) = ep.first_signal.filter(|&s| s != Signal::KILL) else {
        return false;
    };
    let died_of_it = ep
        .exit
        .as_ref()
        .is_some_and(|x| x.status.signal == Some(sig));
    let dropped = |r: &SigRec| {
        r.signal == sig
            && r.kind == SigKind::User
            && r.disposition == Disposition::Default
            && (r.result == SigResult::Ignored || r.delivered_wall.is_some())
    };
    ns_init(ep)
        && !died_of_it
        && (ep.signals.first().is_some_and(dropped) || reraise(ep).is_some_and(dropped))
}

fn shell_not_forwarding(ep: &Episode) -> bool {
    ns_init(ep)
        && is_shell(&ep.comm.as_str())
        && !ep.forwarded.iter().any(|f| f.stop)
        && !unsignalled_children(ep).is_empty()
}

/// A stop signal reached a handler: its delivery was seen, or it cannot be seen (outside the
/// emit mask) and the signal met a handler, unblocked.
fn handler_ran(ep: &Episode, cfg: &EngineConfig) -> bool {
    let traced = cfg.emit_mask & Signal::stop_mask(&cfg.extra_stop_signals);
    let untraced = |s: Signal| s.bit() != 0 && traced & s.bit() == 0;
    ep.handler_ran
        || (ep.first_signal.is_some_and(untraced)
            && ep.first_disposition == Some(Disposition::Handler)
            && ep.first_result == Some(SigResult::Delivered)
            && !ep.first_blocked)
}

/// Applies the rule table (module docs) to a finished episode.
pub(super) fn diagnose(ep: &Episode, t: &Timing, handler_ran: bool) -> Diagnosis {
    if ep.oom_invoker.is_some() {
        return Diagnosis::OomKilled;
    }
    if ep.orphan_killed && !handler_ran && ep.first_disposition != Some(Disposition::Ignore) {
        return Diagnosis::OrphanKilled;
    }
    if ep.first_signal == Some(Signal::KILL) {
        return Diagnosis::ForceKilled;
    }
    if let Some(x) = &ep.exit {
        let clean = !t.killed && !t.overrun && !ep.kernel_killed && !ep.orphan_killed;
        if clean && x.status.signal != Some(Signal::KILL) {
            if reraise(ep).is_some() {
                return Diagnosis::DefaultAction;
            }
            if handler_ran || x.status.signal.is_none() {
                return Diagnosis::Graceful;
            }
            if x.status.signal == ep.first_signal && handled_instead(ep).is_some() {
                return Diagnosis::WrongSignal;
            }
            return Diagnosis::DefaultAction;
        }
    }
    if ep.first_disposition == Some(Disposition::Ignore) {
        return Diagnosis::SignalIgnored;
    }
    if !handler_ran && shell_not_forwarding(ep) {
        return Diagnosis::ShellNotForwarding;
    }
    if handled_instead(ep).is_some() {
        return Diagnosis::WrongSignal;
    }
    if dropped_by_kernel(ep) {
        return Diagnosis::IgnoredByPid1;
    }
    // A process that forwarded a stop signal took its own (an init such as tini blocks the
    // signals and takes them with sigwait: no delivery is ever traced).
    if handler_ran || ep.forwarded.iter().any(|f| f.stop) {
        return Diagnosis::SlowHandler;
    }
    Diagnosis::SignalBlocked
}

/// The hint of a diagnosis for this episode: `wrong_signal` names the signals.
fn hint(ep: &Episode, d: Diagnosis) -> Option<Cow<'static, str>> {
    if d == Diagnosis::WrongSignal {
        if let (Some(sent), Some(handled)) = (ep.first_signal, handled_instead(ep)) {
            return Some(Cow::Owned(format!(
                "the process handles {handled} but the stop signal is {sent}: set STOPSIGNAL to {handled}, or handle {sent}"
            )));
        }
    }
    d.hint().map(Cow::Borrowed)
}

/// The dispositions of the record: the four common stop signals, and the stop signal's own
/// when it is another one.
fn dispositions(ep: &Episode) -> Option<StopDispositions> {
    let mut d = ep.dispositions?;
    if let (Some(sig), Some(disp)) = (ep.first_signal, ep.first_disposition) {
        if sig != Signal::KILL && d.get(sig).is_none() {
            d.other = Some((sig, disp));
        }
    }
    Some(d)
}

pub(super) fn exit_entry(wall: i64, s: &ExitStatus) -> ExitEntry {
    ExitEntry {
        at: WallTime::from_ns(wall),
        code: s.code,
        signal: s.signal,
        core_dumped: s.core_dumped,
    }
}

fn secs(ns: u64) -> f64 {
    ns as f64 / 1e9
}

/// Builds the record of a finished episode; `end` is the end of observation when the process
/// did not exit.
pub(super) fn build(
    ep: &Episode,
    cfg: &EngineConfig,
    end: u64,
    container: Option<Arc<ContainerInfo>>,
    restarts: &[u64],
) -> ProcessStop {
    let end = ep.exit.as_ref().map_or(end.max(ep.last_mono), |x| x.mono);
    let agent_restarted_during = restarts.iter().any(|&r| ep.first_mono < r && r <= end);
    let declared = container.as_ref().and_then(|c| c.termination_grace_s);
    let t = timing(ep, cfg.grace_s, declared, end);
    let diagnosis = diagnose(ep, &t, handler_ran(ep, cfg));
    ProcessStop {
        time: WallTime::from_ns(ep.first_wall),
        pid: ep.pid,
        ns_pid: ep.ns_pid,
        comm: ep.comm,
        ppid: ep.ppid,
        cgroup_id: ep.cgroup_id,
        container,
        ns_init: ns_init(ep),
        stop_signal: ep.first_signal,
        dispositions: dispositions(ep),
        signals: ep
            .signals
            .iter()
            .map(|r| SignalEntry {
                at: WallTime::from_ns(r.wall),
                signal: r.signal,
                sender: r.sender,
                result: r.result,
                disposition: r.disposition,
                delivered_at: r.delivered_wall.map(WallTime::from_ns),
                si_code: r.si_code,
                sender_class: r.sender_class,
            })
            .collect(),
        forwarded: ep
            .forwarded
            .iter()
            .map(|f| ForwardEntry {
                at: WallTime::from_ns(f.wall),
                signal: f.signal,
                target: f.target,
                result: f.result,
            })
            .collect(),
        children_not_signalled: unsignalled_children(ep),
        exit: ep.exit.as_ref().map(|x| exit_entry(x.wall, &x.status)),
        duration_s: secs(t.duration_ns),
        grace_s: t.grace_ns.map(secs),
        grace_source: t.grace_source,
        killed: t.killed,
        killed_at: ep
            .kill
            .filter(|_| t.killed)
            .map(|(_, w)| WallTime::from_ns(w)),
        overrun: t.overrun,
        overrun_s: secs(t.overrun_ns),
        near_overrun: t.near_overrun,
        agent_restarted_during,
        diagnosis,
        hint: hint(ep, diagnosis),
        complete: ep.incomplete.is_empty(),
        incomplete_reason: (!ep.incomplete.is_empty()).then(|| ep.incomplete.join("; ")),
    }
}
