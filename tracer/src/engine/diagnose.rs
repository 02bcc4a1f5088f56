//! The diagnosis rules and the timing (grace, overrun) of a finished episode, and the
//! assembly of its [`ProcessStop`] record.
//!
//! # Rules (first match wins)
//!
//! "Stop signal" below is the episode's *first* stop signal (SIGTERM, SIGINT, SIGQUIT, SIGHUP,
//! SIGKILL or a configured extra); "handler ran" means a stop signal was delivered to a
//! handler; "ns init" is sticky (any event showed `SIGNAL_UNKILLABLE`) or `ns_pid == 1`.
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
//! | 4a | … a handler ran, or it exited with a status code (sigwait/signalfd, or on its own) | `graceful` |
//! | 4b | … died by the stop signal's default action while handling another of TERM/INT/QUIT/HUP | `wrong_signal` |
//! | 4c | … died by a signal's default action | `default_action` |
//! | 5 | otherwise (escalated, outlived the grace, or still running at the end): | |
//! | 5a | the stop signal's disposition was SIG_IGN | `signal_ignored` |
//! | 5b | ns init whose comm is a shell (sh, bash, dash, ash, busybox, zsh, ksh, mksh), that forwarded no stop signal, with children (same cgroup, or killed by its namespace teardown) that got none | `shell_not_forwarding` |
//! | 5c | default disposition for the stop signal, a handler for another of TERM/INT/QUIT/HUP | `wrong_signal` |
//! | 5d | result `ignored`, ns init, default disposition (the kernel drops it for a PID 1) | `ignored_by_pid1` |
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

use super::output::{
    Diagnosis, ExitEntry, ForwardEntry, GraceSource, Peer, ProcessStop, SignalEntry,
};
use super::state::Episode;
use super::EngineConfig;
use crate::container::ContainerInfo;
use crate::event::{Disposition, ExitStatus, SigResult, Signal, WallTime};

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

/// `end`: exit time, or end of observation when the process did not exit.
pub(super) fn timing(ep: &Episode, grace_cfg_s: Option<f64>, end: u64) -> Timing {
    let duration_ns = end.saturating_sub(ep.first_mono);
    let stop_first = ep.first_signal.is_some_and(|s| s != Signal::KILL);
    let configured = grace_cfg_s
        .filter(|g| g.is_finite() && *g >= 0.0)
        .map(|g| (g * 1e9) as u64);
    let observed = ep.grace_kill.map(|k| k.saturating_sub(ep.first_mono));
    let (grace_ns, grace_source) = match (observed, configured) {
        (Some(o), _) => (Some(o), Some(GraceSource::Observed)),
        (None, Some(c)) if stop_first && ep.oom_invoker.is_none() => {
            (Some(c), Some(GraceSource::Configured))
        }
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

/// The first stop signal had the default action while another common stop signal had a
/// handler.
fn handles_another_signal(ep: &Episode) -> bool {
    let (Some(sig), Some(d)) = (ep.first_signal, ep.dispositions) else {
        return false;
    };
    if sig == Signal::KILL {
        return false;
    }
    let sent = ep
        .first_disposition
        .or_else(|| d.get(sig))
        .unwrap_or_default();
    sent == Disposition::Default
        && COMMON_STOPS
            .iter()
            .any(|&s| s != sig && d.get(s) == Some(Disposition::Handler))
}

fn shell_not_forwarding(ep: &Episode) -> bool {
    ns_init(ep)
        && is_shell(&ep.comm.as_str())
        && !ep.forwarded.iter().any(|f| f.stop)
        && !unsignalled_children(ep).is_empty()
}

/// Applies the rule table (module docs) to a finished episode.
pub(super) fn diagnose(ep: &Episode, t: &Timing) -> Diagnosis {
    if ep.oom_invoker.is_some() {
        return Diagnosis::OomKilled;
    }
    if ep.orphan_killed && !ep.handler_ran && ep.first_disposition != Some(Disposition::Ignore) {
        return Diagnosis::OrphanKilled;
    }
    if ep.first_signal == Some(Signal::KILL) {
        return Diagnosis::ForceKilled;
    }
    if let Some(x) = &ep.exit {
        let clean = !t.killed && !t.overrun && !ep.kernel_killed && !ep.orphan_killed;
        if clean && x.status.signal != Some(Signal::KILL) {
            if ep.handler_ran || x.status.signal.is_none() {
                return Diagnosis::Graceful;
            }
            if x.status.signal == ep.first_signal && handles_another_signal(ep) {
                return Diagnosis::WrongSignal;
            }
            return Diagnosis::DefaultAction;
        }
    }
    if ep.first_disposition == Some(Disposition::Ignore) {
        return Diagnosis::SignalIgnored;
    }
    if shell_not_forwarding(ep) {
        return Diagnosis::ShellNotForwarding;
    }
    if handles_another_signal(ep) {
        return Diagnosis::WrongSignal;
    }
    if ep.first_result == Some(SigResult::Ignored)
        && ns_init(ep)
        && ep.first_disposition.unwrap_or_default() == Disposition::Default
    {
        return Diagnosis::IgnoredByPid1;
    }
    // A process that forwarded a stop signal took its own (an init such as tini blocks the
    // signals and takes them with sigwait: no delivery is ever traced).
    if ep.handler_ran || ep.forwarded.iter().any(|f| f.stop) {
        return Diagnosis::SlowHandler;
    }
    Diagnosis::SignalBlocked
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
) -> ProcessStop {
    let end = ep.exit.as_ref().map_or(end.max(ep.last_mono), |x| x.mono);
    let t = timing(ep, cfg.grace_s, end);
    let diagnosis = diagnose(ep, &t);
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
        dispositions: ep.dispositions,
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
        diagnosis,
        hint: diagnosis.hint().map(Cow::Borrowed),
        complete: ep.incomplete.is_empty(),
        incomplete_reason: (!ep.incomplete.is_empty()).then(|| ep.incomplete.join("; ")),
    }
}
