//! One test per diagnosis of the vocabulary, following the scenarios (S1–S14) of
//! the release scenarios, asserting diagnosis, hint, signals, timing and exit.
use std::sync::Arc;

use super::*;
use crate::container::ContainerInfo;
use crate::engine::{Diagnosis, GraceSource, TimelineWhat};
use crate::event::{Disposition::*, SigResult};

#[test]
fn s1_graceful_pid1_with_handler() {
    let app = task(100, "app").init();
    let out = run(handled_runtime_term(&app, 1.0, 200.0));
    let s = stop_of(&out, 100);
    assert_eq!(s.diagnosis, Diagnosis::Graceful);
    assert_eq!(s.hint, None);
    assert_eq!(s.time, time(0.0));
    assert_eq!(s.stop_signal, Some(TERM));
    assert!(s.ns_init && s.complete && s.incomplete_reason.is_none());
    assert!(approx(s.duration_s, 0.2), "{}", s.duration_s);
    assert!(!s.killed && !s.overrun && !s.near_overrun);
    assert_eq!((s.grace_s, s.overrun_s), (None, 0.0));
    assert_eq!(s.signals.len(), 1);
    let sig = &s.signals[0];
    assert_eq!(sig.result, SigResult::Delivered);
    assert_eq!(sig.disposition, Handler);
    assert_eq!(sig.delivered_at.map(|t| t.to_string()), Some(time(1.0)));
    assert_eq!(sig.sender.as_ref().map(|p| p.pid), Some(60));
    let exit = s.exit.expect("exit");
    assert_eq!((exit.code, exit.signal), (Some(0), None));
    // Timeline: generate, deliver, exit.
    assert_eq!(out.len(), 4);
    assert!(matches!(&out[2], Output::Timeline(t) if matches!(t.what, TimelineWhat::Exit { .. })));
}

#[test]
fn s2_ignored_by_pid1_and_observed_grace_from_runc_pair() {
    let sleep = task(100, "sleep").init();
    // The SIGKILL generate reads ns_init false: flags already replaced by SIGNAL_GROUP_EXIT.
    let sleep_exiting = sleep.clone().with(|t| t.ns_init = false);
    let out = run(vec![
        generate(0.0, TERM, &runc_term(), &sleep).ev(),
        generate(2000.0, KILL, &runc_kill(), &sleep_exiting).ev(),
        deliver(2000.5, KILL, &sleep_exiting, Default),
        exit_signal(2001.0, &sleep_exiting, KILL),
    ]);
    let s = stop_of(&out, 100);
    assert_eq!(s.diagnosis, Diagnosis::IgnoredByPid1);
    assert_eq!(
        s.hint.as_deref(),
        Some("handle the signal, or run under an init (tini, dumb-init, `--init`)")
    );
    assert!(s.ns_init, "ns_init is sticky");
    assert_eq!(s.signals[0].result, SigResult::Ignored);
    assert_eq!(s.signals[0].delivered_at, None);
    assert_eq!(s.signals[1].signal, KILL);
    assert_eq!(s.grace_s, Some(2.0));
    assert_eq!(s.grace_source, Some(GraceSource::Observed));
    assert!(s.killed && s.overrun);
    assert_eq!(s.killed_at.map(|t| t.to_string()), Some(time(2000.0)));
    assert!(approx(s.overrun_s, 0.001), "{}", s.overrun_s);
    assert!(approx(s.duration_s, 2.001));
    assert_eq!(s.exit.as_ref().and_then(|x| x.signal), Some(KILL));
}

#[test]
fn s3_shell_not_forwarding_and_its_child_orphan_killed() {
    let sh = task(100, "sh").init();
    let sleep = task(101, "sleep").ppid(100);
    let out = run(vec![
        generate(0.0, TERM, &runc_term(), &sh).ev(),
        generate(2000.0, KILL, &runc_kill(), &sh).ev(),
        exit_signal(2001.0, &sh, KILL),
        // The dying init's namespace teardown.
        generate(2001.2, KILL, &sh.clone().dying(), &sleep)
            .kernel()
            .ev(),
        deliver(2001.4, KILL, &sleep, Default),
        exit_signal(2001.6, &sleep, KILL),
    ]);
    let s = stop_of(&out, 100);
    assert_eq!(s.diagnosis, Diagnosis::ShellNotForwarding);
    assert_eq!(
        s.hint.as_deref(),
        Some("`exec` the app from the script, or trap and forward, or use tini/dumb-init")
    );
    assert!(s.forwarded.is_empty());
    assert_eq!(s.children_not_signalled.len(), 1);
    assert_eq!(s.children_not_signalled[0].pid, 101);
    assert!(s.killed && s.overrun);
    let c = stop_of(&out, 101);
    assert_eq!(c.diagnosis, Diagnosis::OrphanKilled);
    assert_eq!(c.stop_signal, Some(KILL));
    assert_eq!(c.signals[0].si_code, 0x80);
    assert!(!c.killed, "a namespace teardown is not an escalation");
    // S4: the same without children (exec sleep) is plain ignored_by_pid1.
    let out = run(vec![
        generate(0.0, TERM, &runc_term(), &sh).ev(),
        generate(2000.0, KILL, &runc_kill(), &sh).ev(),
        exit_signal(2001.0, &sh, KILL),
    ]);
    assert_eq!(stop_of(&out, 100).diagnosis, Diagnosis::IgnoredByPid1);
}

#[test]
fn s5_tini_forwards_and_child_dies_by_default_action() {
    let tini = task(100, "tini").init();
    let sleep = task(101, "sleep").ppid(100);
    let all = [TERM, INT, Signal::QUIT, Signal::HUP];
    let out = run(vec![
        generate(0.0, TERM, &runc_term(), &tini).handles(&all).ev(),
        deliver(0.2, TERM, &tini, Handler),
        generate(0.5, TERM, &tini, &sleep).ev(),
        deliver_default(0.7, TERM, &sleep),
        exit_signal(0.9, &sleep, TERM),
        exit_code(1.5, &tini, 143),
    ]);
    let c = stop_of(&out, 101);
    assert_eq!(c.diagnosis, Diagnosis::DefaultAction);
    assert_eq!(
        c.hint.as_deref(),
        Some("install a handler if in-flight work matters")
    );
    assert_eq!(
        c.signals.len(),
        1,
        "the converted SIGKILL is not a signal of its own"
    );
    assert_eq!(c.signals[0].sender.as_ref().map(|p| p.pid), Some(100));
    assert_eq!(c.signals[0].disposition, Default);
    assert_eq!(
        c.signals[0].delivered_at.map(|t| t.to_string()),
        Some(time(0.7))
    );
    assert!(!c.killed && !c.overrun);
    let t = stop_of(&out, 100);
    assert_eq!(t.diagnosis, Diagnosis::Graceful);
    assert_eq!(t.forwarded.len(), 1);
    assert_eq!(
        (t.forwarded[0].signal, t.forwarded[0].target.pid),
        (TERM, 101)
    );
    assert!(t.children_not_signalled.is_empty());
    let forwarded_line = out.iter().any(|o| {
        matches!(o, Output::Timeline(l)
            if matches!(l.what, TimelineWhat::Generate { forwarded: true, .. }) && l.pid == 101)
    });
    assert!(forwarded_line, "forwarding is in the timeline");
}

#[test]
fn s6_trapping_shell_forwarding_to_two_children_is_graceful() {
    let sh = task(100, "sh").init();
    let a = task(101, "worker").ppid(100);
    let b = task(102, "worker").ppid(100);
    let out = run(vec![
        generate(0.0, TERM, &runc_term(), &sh).handles(&[TERM]).ev(),
        deliver(0.1, TERM, &sh, Handler),
        generate(0.2, TERM, &sh, &a).handles(&[TERM]).ev(),
        generate(0.3, TERM, &sh, &b).handles(&[TERM]).ev(),
        deliver(0.4, TERM, &a, Handler),
        deliver(0.5, TERM, &b, Handler),
        exit_code(50.0, &a, 0),
        exit_code(60.0, &b, 0),
        exit_code(61.0, &sh, 0),
    ]);
    let s = stop_of(&out, 100);
    assert_eq!(s.diagnosis, Diagnosis::Graceful);
    assert_eq!(s.forwarded.len(), 2);
    assert!(s.children_not_signalled.is_empty());
    assert_eq!(stop_of(&out, 101).diagnosis, Diagnosis::Graceful);
    assert_eq!(stop_of(&out, 102).diagnosis, Diagnosis::Graceful);
}

#[test]
fn s7_slow_handler() {
    let app = task(100, "app").init();
    let out = run(vec![
        generate(0.0, TERM, &runc_term(), &app)
            .handles(&[TERM])
            .ev(),
        deliver(0.1, TERM, &app, Handler),
        generate(2000.0, KILL, &runc_kill(), &app)
            .handles(&[TERM])
            .ev(),
        deliver(2000.1, KILL, &app, Default),
        exit_signal(2000.5, &app, KILL),
    ]);
    let s = stop_of(&out, 100);
    assert_eq!(s.diagnosis, Diagnosis::SlowHandler);
    assert_eq!(
        s.hint.as_deref(),
        Some("shorten cleanup or raise the grace period (by how much is in the record)")
    );
    assert_eq!(s.grace_s, Some(2.0));
    assert!(s.killed && s.overrun);
    assert!(approx(s.overrun_s, 0.0005), "{}", s.overrun_s);
    assert_eq!(
        s.signals[1].delivered_at.map(|t| t.to_string()),
        Some(time(2000.1))
    );
}

#[test]
fn s8_wrong_signal_under_tini_and_as_pid1() {
    let tini = task(100, "tini").init();
    let app = task(101, "py").ppid(100);
    let out = run(vec![
        generate(0.0, TERM, &tini, &app).handles(&[INT]).ev(),
        deliver_default(0.1, TERM, &app),
        exit_signal(0.2, &app, TERM),
    ]);
    let s = stop_of(&out, 101);
    assert_eq!(s.diagnosis, Diagnosis::WrongSignal);
    assert_eq!(
        s.hint.as_deref(),
        Some(
            "the process handles SIGINT but the stop signal is SIGTERM: set STOPSIGNAL to \
             SIGINT, or handle SIGTERM"
        )
    );
    assert_eq!(s.dispositions.map(|d| d.int), Some(Handler));
    // As PID 1 the kernel drops SIGTERM; SIGKILL follows: still wrong_signal, not pid1.
    let py = task(100, "py").init();
    let out = run(vec![
        generate(0.0, TERM, &runc_term(), &py).handles(&[INT]).ev(),
        generate(3000.0, KILL, &runc_kill(), &py)
            .handles(&[INT])
            .ev(),
        exit_signal(3000.1, &py, KILL),
    ]);
    let s = stop_of(&out, 100);
    assert_eq!(s.signals[0].result, SigResult::Ignored);
    assert_eq!(s.diagnosis, Diagnosis::WrongSignal);
    assert!(s.killed && s.overrun);
}

#[test]
fn s9_signal_ignored_with_grace_from_the_same_sender_pid() {
    let app = task(200, "app");
    let killer = task(300, "bash");
    let out = run(vec![
        generate(0.0, TERM, &killer, &app).ignores(&[TERM]).ev(),
        generate(1000.0, KILL, &killer, &app).ignores(&[TERM]).ev(),
        exit_signal(1000.2, &app, KILL),
    ]);
    let s = stop_of(&out, 200);
    assert_eq!(s.diagnosis, Diagnosis::SignalIgnored);
    assert_eq!(s.hint.as_deref(), Some("stop ignoring it"));
    assert_eq!(s.signals[0].result, SigResult::Ignored);
    assert_eq!(s.signals[0].disposition, Ignore);
    assert_eq!(s.grace_s, Some(1.0));
    assert!(!s.ns_init && s.killed);
}

#[test]
fn signal_blocked_generated_never_delivered() {
    let app = task(200, "app");
    let out = run(vec![
        generate(0.0, TERM, &runc_term(), &app)
            .handles(&[TERM])
            .blocked()
            .ev(),
        generate(5000.0, KILL, &runc_kill(), &app)
            .handles(&[TERM])
            .ev(),
        exit_signal(5000.3, &app, KILL),
    ]);
    let s = stop_of(&out, 200);
    assert_eq!(s.diagnosis, Diagnosis::SignalBlocked);
    assert_eq!(s.hint.as_deref(), Some("unblock it / investigate D-state"));
    assert_eq!(s.signals[0].result, SigResult::Delivered);
    assert_eq!(s.signals[0].delivered_at, None);
    assert_eq!(s.grace_s, Some(5.0));
}

#[test]
fn s10_force_killed() {
    let app = task(100, "app").init();
    let out = run(vec![
        generate(0.0, KILL, &runc_kill(), &app)
            .handles(&[TERM])
            .ev(),
        deliver(0.1, KILL, &app, Default),
        exit_signal(0.2, &app, KILL),
    ]);
    let s = stop_of(&out, 100);
    assert_eq!(s.diagnosis, Diagnosis::ForceKilled);
    assert_eq!(s.hint, None);
    assert_eq!(s.stop_signal, Some(KILL));
    assert!(
        !s.killed && !s.overrun,
        "no escalation: SIGKILL was the stop signal"
    );
    assert_eq!(s.grace_s, None);
    assert_eq!(
        s.signals[0].delivered_at.map(|t| t.to_string()),
        Some(time(0.1))
    );
}

#[test]
fn s11_oom_killed_by_another_allocating_process() {
    let app = task(100, "java");
    let alloc = task(400, "other").cgroup(9);
    let out = run(vec![
        generate(0.0, KILL, &alloc, &app).kernel().ev(),
        oom(0.1, &app, 400),
        deliver(0.2, KILL, &app, Default),
        exit_signal(0.3, &app, KILL),
    ]);
    let s = stop_of(&out, 100);
    assert_eq!(s.diagnosis, Diagnosis::OomKilled);
    assert_eq!(
        s.hint.as_deref(),
        Some("raise the memory limit / fix the leak")
    );
    assert_eq!(s.signals.len(), 1);
    assert_eq!(s.signals[0].si_code, 0x80);
    assert!(!s.killed && s.complete);
}

#[test]
fn s11_oom_killed_while_allocating_itself() {
    // The kernel SIGKILL comes from the victim's own thread group: internal until the OOM
    // victim event explains it.
    let app = task(100, "java");
    let out = run(vec![
        generate(0.0, KILL, &app, &app).kernel().ev(),
        oom(0.1, &app, 100),
        exit_signal(0.3, &app, KILL),
    ]);
    let s = stop_of(&out, 100);
    assert_eq!(s.diagnosis, Diagnosis::OomKilled);
    assert_eq!(s.time, time(0.0));
    assert_eq!(s.stop_signal, Some(KILL));
    assert_eq!(s.signals.len(), 1);
    // And an OOM during a graceful stop wins over the stop.
    let out = run(vec![
        generate(0.0, TERM, &runc_term(), &app)
            .handles(&[TERM])
            .ev(),
        deliver(0.1, TERM, &app, Handler),
        generate(500.0, KILL, &app, &app).kernel().ev(),
        oom(500.1, &app, 100),
        exit_signal(500.3, &app, KILL),
    ]);
    let s = stop_of(&out, 100);
    assert_eq!(s.diagnosis, Diagnosis::OomKilled);
    assert_eq!(s.stop_signal, Some(TERM));
    assert!(!s.killed);
}

#[test]
fn s12_graceful_pid1_leaves_orphan_killed_child() {
    let app = task(100, "app").init();
    let child = task(101, "worker").ppid(100);
    let out = run(vec![
        generate(0.0, TERM, &runc_term(), &app)
            .handles(&[TERM])
            .ev(),
        deliver(0.1, TERM, &app, Handler),
        exit_code(10.0, &app, 0),
        generate(10.1, KILL, &app.clone().dying(), &child)
            .kernel()
            .ev(),
        deliver(10.2, KILL, &child, Default),
        exit_signal(10.3, &child, KILL),
    ]);
    let p = stop_of(&out, 100);
    assert_eq!(p.diagnosis, Diagnosis::Graceful);
    assert_eq!(p.children_not_signalled.len(), 1);
    let c = stop_of(&out, 101);
    assert_eq!(c.diagnosis, Diagnosis::OrphanKilled);
    assert_eq!(
        c.hint.as_deref(),
        Some("the init must stop and reap its children")
    );
    assert_eq!(c.signals[0].sender.as_ref().map(|s| s.pid), Some(100));
    assert!(approx(c.duration_s, 0.0002));
}

#[test]
fn s13_host_process_without_container_and_attribution_when_known() {
    let app = task(100, "nginx").cgroup(3);
    let events = vec![
        generate(0.0, TERM, &task(300, "bash"), &app)
            .handles(&[TERM])
            .ev(),
        deliver(0.1, TERM, &app, Handler),
        exit_code(30.0, &app, 0),
    ];
    let s = stop_of(&run(events.clone()), 100);
    assert_eq!(s.diagnosis, Diagnosis::Graceful);
    assert_eq!(s.container, None);
    let mut engine = Engine::new(EngineConfig::default());
    let info = Arc::new(ContainerInfo {
        id: "abc".into(),
        runtime: "docker".into(),
        cgroup_id: 3,
        ..ContainerInfo::default()
    });
    engine.set_container(3, info.clone());
    let mut out = Vec::new();
    for ev in events {
        engine.push(ev, &mut out);
    }
    engine.finish(&mut out);
    assert_eq!(stop_of(&out, 100).container, Some(info));
    let json = serde_json::to_value(stop_of(&out, 100)).unwrap_or_default();
    assert_eq!(json["container"]["id"], "abc");
}

#[test]
fn s14_second_sigterm_already_pending_one_record() {
    let app = task(100, "app");
    let out = run(vec![
        generate(0.0, TERM, &runc_term(), &app)
            .handles(&[TERM])
            .ev(),
        generate(0.5, TERM, &runc_term(), &app)
            .handles(&[TERM])
            .result(SigResult::AlreadyPending)
            .ev(),
        deliver(1.0, TERM, &app, Handler),
        exit_code(3000.0, &app, 0),
    ]);
    assert_eq!(stops(&out).len(), 1);
    let s = stop_of(&out, 100);
    assert_eq!(s.diagnosis, Diagnosis::Graceful);
    assert_eq!(s.signals.len(), 2);
    assert_eq!(s.signals[1].result, SigResult::AlreadyPending);
    assert_eq!(s.signals[1].delivered_at, None);
    assert_eq!(
        s.signals[0].delivered_at.map(|t| t.to_string()),
        Some(time(1.0))
    );
}

#[test]
fn converted_sigkill_is_not_an_escalation() {
    let app = task(100, "app");
    let out = run(vec![
        generate(0.0, TERM, &runc_term(), &app).ev(),
        deliver_default(0.1, TERM, &app),
        exit_signal(0.2, &app, TERM),
    ]);
    let s = stop_of(&out, 100);
    assert_eq!(s.diagnosis, Diagnosis::DefaultAction);
    assert!(!s.killed && !s.overrun && s.killed_at.is_none());
    assert_eq!(s.signals.len(), 1);
    assert_eq!(s.signals[0].signal, TERM);
    let line = out.iter().find_map(|o| match o {
        Output::Timeline(l) => match &l.what {
            TimelineWhat::Deliver { converted_from, .. } => Some(*converted_from),
            _ => None,
        },
        _ => None,
    });
    assert_eq!(line, Some(Some(TERM)));
}

#[test]
fn escalation_by_another_sender_has_no_observed_grace() {
    let app = task(100, "app");
    let out = run(vec![
        generate(0.0, TERM, &runc_term(), &app)
            .handles(&[TERM])
            .ev(),
        deliver(0.1, TERM, &app, Handler),
        generate(4000.0, KILL, &task(77, "kill"), &app).ev(),
        exit_signal(4000.5, &app, KILL),
    ]);
    let s = stop_of(&out, 100);
    assert_eq!(s.diagnosis, Diagnosis::SlowHandler);
    assert_eq!((s.grace_s, s.grace_source), (None, None));
    assert!(s.killed && s.overrun);
    assert!(
        approx(s.overrun_s, 0.0005),
        "from the SIGKILL: {}",
        s.overrun_s
    );
}

#[test]
fn configured_grace_near_overrun_and_overrun_without_sigkill() {
    let cfg = EngineConfig {
        grace_s: Some(10.0),
        ..EngineConfig::default()
    };
    let app = task(100, "app");
    let stream = |exit_ms: f64| {
        vec![
            generate(0.0, TERM, &task(300, "bash"), &app)
                .handles(&[TERM])
                .ev(),
            deliver(0.1, TERM, &app, Handler),
            exit_code(exit_ms, &app, 0),
        ]
    };
    let s = stop_of(&run_with(cfg.clone(), stream(9000.0)), 100);
    assert_eq!(s.diagnosis, Diagnosis::Graceful);
    assert_eq!(s.grace_s, Some(10.0));
    assert_eq!(s.grace_source, Some(GraceSource::Configured));
    assert!(s.near_overrun && !s.overrun);
    let s = stop_of(&run_with(cfg.clone(), stream(5000.0)), 100);
    assert!(!s.near_overrun && !s.overrun);
    let s = stop_of(&run_with(cfg.clone(), stream(11000.0)), 100);
    assert!(s.overrun && !s.killed && !s.near_overrun);
    assert!(approx(s.overrun_s, 1.0), "{}", s.overrun_s);
    assert_eq!(s.diagnosis, Diagnosis::SlowHandler);
    // An observed grace wins over the configured one.
    let s = stop_of(
        &run_with(
            cfg,
            vec![
                generate(0.0, TERM, &runc_term(), &app).ev(),
                generate(0.1, TERM, &runc_term(), &app).ev(),
                generate(2000.0, KILL, &runc_kill(), &app).ev(),
                exit_signal(2000.5, &app, KILL),
            ],
        ),
        100,
    );
    assert_eq!(s.grace_s, Some(2.0));
    assert_eq!(s.grace_source, Some(GraceSource::Observed));
}

#[test]
fn every_diagnosis_has_its_name_and_hint() {
    let names: Vec<_> = Diagnosis::ALL.iter().map(|d| d.as_str()).collect();
    assert_eq!(
        names,
        [
            "graceful",
            "default_action",
            "ignored_by_pid1",
            "shell_not_forwarding",
            "wrong_signal",
            "signal_ignored",
            "signal_blocked",
            "slow_handler",
            "force_killed",
            "oom_killed",
            "orphan_killed",
            "slow_prestop"
        ]
    );
    for d in Diagnosis::ALL {
        assert_eq!(serde_json::to_value(d).ok(), Some(d.as_str().into()));
        let no_hint = matches!(d, Diagnosis::Graceful | Diagnosis::ForceKilled);
        assert_eq!(d.hint().is_none(), no_hint, "{d}");
    }
}
