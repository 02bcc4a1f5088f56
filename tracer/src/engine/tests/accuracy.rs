//! Diagnoses on patterns of real software: runtimes whose default handler re-raises the stop
//! signal (Node.js, Go), stop signals outside the usual set sent by a container runtime, shells
//! that do handle the signal, and the rule order where two explanations compete.
use super::containers::{one, run_in_container};
use super::*;
use crate::engine::Diagnosis;
use crate::event::Disposition::*;

const WINCH: Signal = Signal(28);

/// `events`, then the runtime's SIGKILL to `t` 2 s after the stop signal, which ends it.
fn then_killed(mut events: Vec<Event>, t: &Task) -> Vec<Event> {
    events.push(generate(2000.0, KILL, &runc_kill(), t).ev());
    events.push(exit_signal(2000.5, t, KILL));
    events
}
const USR1: Signal = Signal::USR1;

/// Node.js as PID 1 (S22): its default SIGTERM handler restores the default action and
/// re-raises SIGTERM while SIGTERM is still blocked; the re-raise is generated `delivered`,
/// delivered to the default action, and dropped by the kernel; SIGKILL after the grace.
#[test]
fn s22_node_reraise_delivered_then_dropped_is_ignored_by_pid1() {
    let node = task(100, "node").init();
    let out = run(then_killed(
        vec![
            generate(0.0, TERM, &runc_term(), &node)
                .handles(&[TERM])
                .ev(),
            deliver(0.1, TERM, &node, Handler),
            generate(0.3, TERM, &node, &node)
                .result(SigResult::Delivered)
                .blocked()
                .ev(),
            deliver(0.4, TERM, &node, Default),
        ],
        &node,
    ));
    let s = stop_of(&out, 100);
    assert_eq!(s.diagnosis, Diagnosis::IgnoredByPid1, "{s:#?}");
    assert_eq!(s.hint.as_deref(), Diagnosis::IgnoredByPid1.hint());
    assert_eq!(s.stop_signal, Some(TERM));
    assert!(s.killed);
}

/// The same re-raise reported `ignored` at generation (not blocked), then SIGKILL.
#[test]
fn reraise_ignored_at_generation_by_a_pid1_is_ignored_by_pid1() {
    let app = task(100, "app").init();
    let out = run(then_killed(
        vec![
            generate(0.0, TERM, &runc_term(), &app)
                .handles(&[TERM])
                .ev(),
            deliver(0.1, TERM, &app, Handler),
            generate(0.2, TERM, &app, &app).ev(), // default now: ignored for a PID 1,
        ],
        &app,
    ));
    let s = stop_of(&out, 100);
    assert_eq!(s.signals[1].result, SigResult::Ignored);
    assert_eq!(s.diagnosis, Diagnosis::IgnoredByPid1, "{s:#?}");
}

/// Go without `signal.Notify`, as PID 1: the runtime re-raises twice (ignored), then exits 2
/// within a millisecond. None of the application's cleanup ran.
#[test]
fn go_pid1_reraise_then_exit_2_is_default_action() {
    let go = task(100, "app").init();
    let out = run(vec![
        generate(0.0, TERM, &runc_term(), &go).handles(&[TERM]).ev(),
        deliver(0.1, TERM, &go, Handler),
        generate(0.2, TERM, &go, &go).ev(),
        generate(0.3, TERM, &go, &go).ev(),
        exit_code(0.9, &go, 2),
    ]);
    let s = stop_of(&out, 100);
    assert_eq!(s.diagnosis, Diagnosis::DefaultAction, "{s:#?}");
    assert_eq!(s.hint.as_deref(), Diagnosis::DefaultAction.hint());
}

/// Go without `signal.Notify`, as a host process: the re-raise kills it (SIGTERM).
#[test]
fn go_host_process_dying_of_its_reraise_is_default_action() {
    let go = task(100, "app");
    let out = run(vec![
        generate(0.0, TERM, &task(50, "bash"), &go)
            .handles(&[TERM])
            .ev(),
        deliver(0.1, TERM, &go, Handler),
        generate(0.2, TERM, &go, &go).ev(),
        deliver_default(0.3, TERM, &go),
        exit_signal(0.4, &go, TERM),
    ]);
    let s = stop_of(&out, 100);
    assert_eq!(s.diagnosis, Diagnosis::DefaultAction, "{s:#?}");
}

/// A real handler that cleans up for 200 ms and then dies of its own signal (a common C
/// idiom) is graceful: the re-raise came long after the handler took the signal.
#[test]
fn cleanup_then_reraise_is_graceful() {
    let app = task(100, "app");
    let out = run(vec![
        generate(0.0, TERM, &task(50, "bash"), &app)
            .handles(&[TERM])
            .ev(),
        deliver(0.1, TERM, &app, Handler),
        generate(200.0, TERM, &app, &app).ev(),
        deliver_default(200.1, TERM, &app),
        exit_signal(200.2, &app, TERM),
    ]);
    assert_eq!(stop_of(&out, 100).diagnosis, Diagnosis::Graceful);
}

/// S20: a shell as PID 1 whose TERM trap ran but was slower than the grace: the shell did
/// handle the signal; its handler was slow (not `shell_not_forwarding`).
#[test]
fn s20_shell_whose_trap_ran_is_a_slow_handler() {
    let sh = task(100, "sh").init();
    let sleep = task(101, "sleep").ppid(100);
    let out = run(vec![
        generate(0.0, TERM, &runc_term(), &sh).handles(&[TERM]).ev(),
        deliver(0.1, TERM, &sh, Handler),
        generate(1000.0, KILL, &runc_kill(), &sh).ev(),
        exit_signal(1000.5, &sh, KILL),
        generate(1000.6, KILL, &sh.clone().dying(), &sleep)
            .kernel()
            .ev(),
        exit_signal(1001.0, &sleep, KILL),
    ]);
    let s = stop_of(&out, 100);
    assert_eq!(s.diagnosis, Diagnosis::SlowHandler, "{s:#?}");
    assert_eq!(s.hint.as_deref(), Diagnosis::SlowHandler.hint());
    // Without the trap the same shell is shell_not_forwarding.
    let out = run(vec![
        generate(0.0, TERM, &runc_term(), &sh).ev(),
        generate(1000.0, KILL, &runc_kill(), &sh).ev(),
        exit_signal(1000.5, &sh, KILL),
        generate(1000.6, KILL, &sh.clone().dying(), &sleep)
            .kernel()
            .ev(),
        exit_signal(1001.0, &sleep, KILL),
    ]);
    assert_eq!(stop_of(&out, 100).diagnosis, Diagnosis::ShellNotForwarding);
}

/// S21: the runtime sends the container's STOPSIGNAL SIGWINCH; PID 1 traps it and exits 0.
/// SIGWINCH is no stop signal by default: sent by the runtime to a container, it is one.
#[test]
fn s21_runtime_stop_signal_outside_the_set_is_the_stop_signal() {
    let httpd = task(100, "sh").init();
    let out = run_in_container(
        7,
        vec![
            generate(0.0, WINCH, &runc_term(), &httpd)
                .handles(&[WINCH])
                .ev(),
            exit_code(5.0, &httpd, 0),
        ],
    );
    let c = one(&out);
    assert_eq!(c.stop_signal, Some(WINCH));
    assert_eq!(c.diagnosis, Diagnosis::Graceful);
    let p = &c.processes[0];
    assert_eq!(p.stop_signal, Some(WINCH));
    let d = p.dispositions.expect("dispositions");
    assert_eq!(d.get(WINCH), Some(Handler));
    let json = serde_json::to_value(p).expect("JSON");
    assert_eq!(json["dispositions"]["SIGWINCH"], "handler", "{json:#}");
    // A host process getting SIGWINCH from its terminal has no stop at all.
    let out = run(vec![
        generate(0.0, WINCH, &task(50, "bash"), &task(100, "vim"))
            .handles(&[WINCH])
            .ev(),
        exit_code(5.0, &task(100, "vim"), 0),
    ]);
    assert!(stops(&out).is_empty(), "{out:#?}");
}

/// S21 with `--stop-signal SIGUSR1` and a handler slower than the grace: `slow_handler`, with
/// SIGUSR1 as the stop signal (not `force_killed` with SIGKILL).
#[test]
fn runtime_usr1_with_a_slow_handler_is_a_slow_handler() {
    let app = task(100, "app").init();
    let out = run_in_container(
        7,
        then_killed(
            vec![
                generate(0.0, USR1, &runc_term(), &app)
                    .handles(&[USR1])
                    .ev(),
                deliver(0.1, USR1, &app, Handler),
            ],
            &app,
        ),
    );
    let c = one(&out);
    assert_eq!(c.stop_signal, Some(USR1));
    assert_eq!(c.diagnosis, Diagnosis::SlowHandler);
    assert_eq!(c.processes[0].stop_signal, Some(USR1));
}

/// A stop signal whose deliveries are not traced (outside the emit mask) that met a handler
/// counts as handled: slow, not blocked.
#[test]
fn an_untraced_stop_signal_that_met_a_handler_counts_as_handled() {
    let app = task(100, "app").init();
    let out = run_in_container(
        7,
        then_killed(
            vec![generate(0.0, WINCH, &runc_term(), &app)
                .handles(&[WINCH])
                .ev()],
            &app,
        ),
    );
    assert_eq!(one(&out).diagnosis, Diagnosis::SlowHandler);
}

/// The wrong-signal hint names the handled signal and the stop signal.
#[test]
fn wrong_signal_hint_names_both_signals() {
    let app = task(100, "app").init();
    let out = run_in_container(
        7,
        then_killed(
            vec![generate(0.0, WINCH, &runc_term(), &app)
                .handles(&[TERM])
                .ev()],
            &app,
        ),
    );
    let c = one(&out);
    assert_eq!(c.diagnosis, Diagnosis::WrongSignal);
    assert_eq!(
        c.hint.as_deref(),
        Some(
            "the process handles SIGTERM but the stop signal is SIGWINCH: set STOPSIGNAL to \
             SIGTERM, or handle SIGWINCH"
        )
    );
}

// ---- rule order: two explanations competing ---------------------------------------------

/// A PID 1 that ignores its stop signal (SIG_IGN) and whose kernel also drops it: the
/// process's own choice explains more than the kernel's rule.
#[test]
fn ignoring_the_signal_beats_the_pid1_drop() {
    let app = task(100, "app").init();
    let out = run(then_killed(
        vec![generate(0.0, TERM, &runc_term(), &app)
            .ignores(&[TERM])
            .ev()],
        &app,
    ));
    assert_eq!(stop_of(&out, 100).diagnosis, Diagnosis::SignalIgnored);
}

/// A PID 1 handling SIGINT but sent SIGTERM, which the kernel drops: the fix is the stop
/// signal (wrong_signal), not an init.
#[test]
fn wrong_signal_beats_the_pid1_drop() {
    let app = task(100, "app").init();
    let out = run(then_killed(
        vec![generate(0.0, TERM, &runc_term(), &app).handles(&[INT]).ev()],
        &app,
    ));
    assert_eq!(stop_of(&out, 100).diagnosis, Diagnosis::WrongSignal);
}

/// A shell PID 1 that forwarded nothing but whose trap ran and was slow, with a re-raise
/// dropped: its handler is not a runtime default (it took 300 ms), so slow_handler.
#[test]
fn a_slow_trap_beats_shell_not_forwarding_and_the_pid1_drop() {
    let sh = task(100, "sh").init();
    let out = run(then_killed(
        vec![
            generate(0.0, TERM, &runc_term(), &sh).handles(&[TERM]).ev(),
            deliver(0.1, TERM, &sh, Handler),
            generate(300.0, TERM, &sh, &sh).ev(),
        ],
        &sh,
    ));
    assert_eq!(stop_of(&out, 100).diagnosis, Diagnosis::SlowHandler);
}

/// An OOM kill during a slow handler's cleanup is the OOM kill.
#[test]
fn the_oom_kill_beats_a_slow_handler() {
    let app = task(100, "app");
    let out = run(vec![
        generate(0.0, TERM, &runc_term(), &app)
            .handles(&[TERM])
            .ev(),
        deliver(0.1, TERM, &app, Handler),
        generate(500.0, KILL, &task(300, "java"), &app)
            .kernel()
            .ev(),
        oom(500.1, &app, 300),
        exit_signal(500.5, &app, KILL),
    ]);
    assert_eq!(stop_of(&out, 100).diagnosis, Diagnosis::OomKilled);
}
