//! The grace budget: runtime execs on container records, the preStop hook, effective and
//! termination grace, `slow_prestop`, and exec probes that must not be taken for a hook.
use std::sync::Arc;

use super::*;
use crate::container::{ContainerInfo, DeclaredHook};
use crate::engine::{ContainerStop, Diagnosis};
use crate::event::Disposition::*;

fn k8s(cgroup_id: u64) -> Arc<ContainerInfo> {
    Arc::new(ContainerInfo {
        id: format!("{cgroup_id:064x}"),
        runtime: "containerd".into(),
        name: Some("app".into()),
        pod: Some("web-0".into()),
        namespace: Some("shop".into()),
        pod_uid: Some("1e2d3c4b-5a69-4788-9a0b-1c2d3e4f5a6b".into()),
        container_type: Some("container".into()),
        cgroup_id,
        ..ContainerInfo::default()
    })
}

fn run_k8s(info: Arc<ContainerInfo>, events: Vec<Event>) -> ContainerStop {
    let mut engine = Engine::new(EngineConfig::default());
    engine.set_container(7, info);
    let mut out = Vec::new();
    for ev in events {
        engine.push(ev, &mut out);
    }
    engine.finish(&mut out);
    let mut v = container_stops(&out);
    assert_eq!(v.len(), 1, "{out:#?}");
    v.remove(0)
}

/// S15: a 3 s preStop hook of a 5 s grace; the runtime then gives the app 2 s, its handler
/// needs 3 s and gets SIGKILL.
fn s15() -> Vec<Event> {
    let app = task(100, "app").init();
    let hook = task(200, "sleep");
    vec![
        exec(0.0, &hook),
        exit_code(3000.0, &hook, 0),
        generate(3010.0, TERM, &runc_term(), &app)
            .handles(&[TERM])
            .ev(),
        deliver(3010.1, TERM, &app, Handler),
        generate(5010.0, KILL, &runc_kill(), &app).ev(),
        exit_signal(5010.5, &app, KILL),
    ]
}

#[test]
fn s15_slow_prestop_on_the_container_slow_handler_on_the_app() {
    let c = run_k8s(k8s(7), s15());
    assert_eq!(c.diagnosis, Diagnosis::SlowPrestop);
    let hint = c.hint.as_deref().unwrap_or_default();
    assert_eq!(
        hint,
        "the preStop hook took 3.0 s of the 5 s grace, leaving the app 2.0 s: shorten the hook \
         or raise terminationGracePeriodSeconds"
    );
    let p = c.prestop.as_ref().expect("prestop");
    assert_eq!((p.pid, p.comm.to_string().as_str()), (200, "sleep"));
    assert_eq!(p.path, "/bin/sleep");
    assert!(approx(c.prestop_s.unwrap_or(0.0), 3.0));
    assert!(approx(c.effective_grace_s.unwrap_or(0.0), 2.0));
    assert!(approx(c.termination_grace_s.unwrap_or(0.0), 5.0));
    assert_eq!(c.termination_grace_source.as_deref(), Some("inferred"));
    assert_eq!(c.execs.len(), 1);
    // The app's own record keeps its own diagnosis.
    assert_eq!(c.processes[0].diagnosis, Diagnosis::SlowHandler);
    let v = serde_json::to_value(&c).unwrap();
    assert_eq!(v["diagnosis"], "slow_prestop");
    assert_eq!(v["prestop"]["path"], "/bin/sleep");
    assert_eq!(v["prestop"]["exit"]["code"], 0);
}

#[test]
fn the_runtime_recorded_grace_wins_over_the_inferred_one() {
    let info = Arc::new(ContainerInfo {
        termination_grace_s: Some(30),
        ..(*k8s(7)).clone()
    });
    let c = run_k8s(info, s15());
    assert_eq!(c.termination_grace_s, Some(30.0));
    assert_eq!(c.termination_grace_source.as_deref(), Some("runtime"));
    // 3 s of 30 s is not half: the app's slow handler explains the stop.
    assert_eq!(c.diagnosis, Diagnosis::SlowHandler);
}

/// S16: a fast preStop and a graceful app: graceful, with the hook shown.
#[test]
fn s16_fast_prestop_and_graceful_app() {
    let app = task(100, "app").init();
    let hook = task(200, "nginx");
    let c = run_k8s(
        k8s(7),
        vec![
            exec(0.0, &hook),
            exit_code(100.0, &hook, 0),
            generate(105.0, TERM, &runc_term(), &app)
                .handles(&[TERM])
                .ev(),
            deliver(105.1, TERM, &app, Handler),
            exit_code(300.0, &app, 0),
        ],
    );
    assert_eq!(c.diagnosis, Diagnosis::Graceful);
    assert!(approx(c.prestop_s.unwrap_or(0.0), 0.1));
    // No SIGKILL: no effective grace, nothing inferred.
    assert_eq!((c.effective_grace_s, c.termination_grace_s), (None, None));
}

/// A hook still running when the runtime's SIGKILL comes: slow_prestop whatever the share,
/// and the hook is shown as killed at the teardown.
#[test]
fn prestop_killed_at_teardown() {
    let app = task(100, "app").init();
    let hook = task(200, "sleep");
    let c = run_k8s(
        k8s(7),
        vec![
            exec(0.0, &hook),
            // kubelet gave up waiting for the hook after the grace, then stopped with 2 s.
            generate(30_000.0, TERM, &runc_term(), &app)
                .handles(&[TERM])
                .ev(),
            deliver(30_000.1, TERM, &app, Handler),
            generate(32_000.0, KILL, &runc_kill(), &app).ev(),
            exit_signal(32_000.5, &app, KILL),
            exit_signal(32_001.0, &hook, KILL),
        ],
    );
    assert_eq!(c.diagnosis, Diagnosis::SlowPrestop);
    assert!(
        approx(c.prestop_s.unwrap_or(0.0), 32.0),
        "{:?}",
        c.prestop_s
    );
    let p = c.prestop.as_ref().expect("prestop");
    assert!(p.killed);
}

/// S19: an exec probe every second, then a normal stop: the probe that ran last before the
/// stop signal is not a preStop hook.
#[test]
fn s19_exec_probes_are_not_a_prestop() {
    let app = task(100, "app").init();
    let mut ev = Vec::new();
    for i in 0..5u32 {
        let probe = task(300 + i, "cat");
        let t = f64::from(i) * 1000.0;
        ev.push(exec(t, &probe));
        ev.push(exit_code(t + 5.0, &probe, 0));
    }
    ev.extend([
        generate(4010.0, TERM, &runc_term(), &app)
            .handles(&[TERM])
            .ev(),
        deliver(4010.1, TERM, &app, Handler),
        exit_code(4100.0, &app, 0),
    ]);
    let c = run_k8s(k8s(7), ev);
    assert_eq!(c.prestop, None);
    assert_eq!(c.diagnosis, Diagnosis::Graceful);
    // The probe next to the stop is listed among the execs all the same.
    assert_eq!(c.execs.len(), 1);
    assert_eq!(c.execs[0].pid, 304);
}

/// Outside Kubernetes, execs are listed but nothing is called a preStop hook.
#[test]
fn no_prestop_outside_kubernetes() {
    let info = Arc::new(ContainerInfo {
        pod_uid: None,
        pod: None,
        ..(*k8s(7)).clone()
    });
    let c = run_k8s(info, s15());
    assert_eq!(c.prestop, None);
    assert_eq!(c.execs.len(), 1);
    assert_eq!(c.diagnosis, Diagnosis::SlowHandler);
    assert_eq!(c.termination_grace_s, None);
}

/// A slow hook does not hide a PID 1 that would never have stopped: ignored_by_pid1 ranks
/// above slow_prestop, and the hook is still shown.
#[test]
fn slow_prestop_does_not_hide_a_pid1_that_ignores_the_signal() {
    let app = task(100, "sleep").init();
    let hook = task(200, "sleep");
    let c = run_k8s(
        k8s(7),
        vec![
            exec(0.0, &hook),
            exit_code(3000.0, &hook, 0),
            generate(3010.0, TERM, &runc_term(), &app).ev(),
            generate(5010.0, KILL, &runc_kill(), &app).ev(),
            exit_signal(5010.5, &app, KILL),
        ],
    );
    assert_eq!(c.diagnosis, Diagnosis::IgnoredByPid1);
    assert!(c.prestop.is_some());
    assert!(approx(c.prestop_s.unwrap_or(0.0), 3.0));
}

/// A hook that outlives the whole grace (4 s): kubelet gives up on it, stops the app (which
/// handles TERM at once), and the namespace teardown kills the hook. `slow_prestop`, not
/// `orphan_killed` (the hook is a runtime exec, not a child of the init); the app graceful.
#[test]
fn a_hook_still_running_at_the_stop_signal_is_slow_prestop_not_an_orphan() {
    let app = task(100, "app").init();
    let hook = task(200, "sleep");
    let c = run_k8s(
        k8s(7),
        vec![
            exec(0.0, &hook),
            generate(4000.0, TERM, &runc_term(), &app)
                .handles(&[TERM])
                .ev(),
            deliver(4000.1, TERM, &app, Handler),
            exit_code(4001.0, &app, 0),
            generate(4001.2, KILL, &app.clone().dying(), &hook)
                .kernel()
                .ev(),
            exit_signal(4001.5, &hook, KILL),
        ],
    );
    assert_eq!(c.diagnosis, Diagnosis::SlowPrestop, "{c:#?}");
    assert_eq!(
        c.hint.as_deref(),
        Some(
            "the preStop hook was still running when kubelet gave up on it after the pod's \
             whole grace; the app got the 2 s minimum: shorten the hook or raise \
             terminationGracePeriodSeconds"
        )
    );
    assert_eq!(c.prestop.as_ref().map(|p| p.pid), Some(200));
    let app_rec = c.processes.iter().find(|p| p.pid == 100).expect("app");
    assert_eq!(app_rec.diagnosis, Diagnosis::Graceful);
    let hook_rec = c.processes.iter().find(|p| p.pid == 200).expect("hook");
    assert_eq!(hook_rec.diagnosis, Diagnosis::OrphanKilled);
}

/// The same teardown kill of a runtime exec after a graceful stop whose hook had ended: the
/// container is `graceful`, not `orphan_killed`.
#[test]
fn a_runtime_exec_killed_at_the_teardown_does_not_make_the_container_orphan_killed() {
    let app = task(100, "app").init();
    let probe = task(300, "cat");
    let c = run_k8s(
        k8s(7),
        vec![
            generate(0.0, TERM, &runc_term(), &app)
                .handles(&[TERM])
                .ev(),
            deliver(0.1, TERM, &app, Handler),
            exec(500.0, &probe),
            exit_code(1000.0, &app, 0),
            generate(1000.2, KILL, &app.clone().dying(), &probe)
                .kernel()
                .ev(),
            exit_signal(1000.5, &probe, KILL),
        ],
    );
    assert_eq!(c.diagnosis, Diagnosis::Graceful, "{c:#?}");
    assert!(c.prestop.is_none(), "{c:#?}");
}

/// `k8s` with what the CRI declared: a 5 s grace and `hook`.
fn declared(hook: DeclaredHook) -> Arc<ContainerInfo> {
    Arc::new(ContainerInfo {
        termination_grace_s: Some(5),
        prestop_hook: Some(hook),
        facts_source: Some("cri".into()),
        ..(*k8s(7)).clone()
    })
}

/// A declared exec hook is the exec of its command, not the first exec before the stop: here a
/// probe (`cat`) started first.
#[test]
fn a_declared_exec_hook_is_matched_by_its_command() {
    let app = task(100, "app").init();
    let probe = task(300, "cat");
    let hook = task(200, "sleep");
    let events = vec![
        exec(0.0, &probe),
        exec(10.0, &hook),
        exit_code(50.0, &probe, 0),
        exit_code(3000.0, &hook, 0),
        generate(3010.0, TERM, &runc_term(), &app)
            .handles(&[TERM])
            .ev(),
        deliver(3010.1, TERM, &app, Handler),
        generate(5010.0, KILL, &runc_kill(), &app).ev(),
        exit_signal(5010.5, &app, KILL),
    ];
    let c = run_k8s(
        declared(DeclaredHook::Exec {
            command: "sleep".into(),
        }),
        events.clone(),
    );
    assert_eq!(c.prestop.as_ref().map(|p| p.pid), Some(200), "{c:#?}");
    assert_eq!(c.termination_grace_source.as_deref(), Some("cri"));
    assert_eq!(c.termination_grace_s, Some(5.0));
    assert_eq!(c.diagnosis, Diagnosis::SlowPrestop);
    assert_eq!(
        c.hint.as_deref(),
        Some(
            "the preStop hook (exec sleep) took 3.0 s of the 5 s grace, leaving the app 2.0 s: \
             shorten the hook or raise terminationGracePeriodSeconds"
        )
    );
    // No hook declared: no exec is the hook, whatever its timing.
    let c = run_k8s(declared(DeclaredHook::None), events.clone());
    assert!(c.prestop.is_none(), "{c:#?}");
    assert_eq!(c.diagnosis, Diagnosis::SlowHandler, "{c:#?}");
    // An httpGet hook: named in the container, no exec taken for it.
    let c = run_k8s(
        declared(DeclaredHook::HttpGet {
            path: "/quit".into(),
            port: "8080".into(),
        }),
        events,
    );
    assert!(c.prestop.is_none() && c.prestop_s.is_none(), "{c:#?}");
    let v = serde_json::to_value(&c).unwrap();
    assert_eq!(v["container"]["prestop_hook"]["kind"], "http_get");
    assert_eq!(v["container"]["facts_source"], "cri");
}

/// A sleep hook is kubelet's own: no exec, its phase is the declared seconds; one that uses
/// the whole grace is `slow_prestop` (kubelet gave up on it).
#[test]
fn a_declared_sleep_hook_is_the_phase_before_the_stop_signal() {
    let app = task(100, "app").init();
    let stop = |t0: f64| {
        vec![
            generate(t0, TERM, &runc_term(), &app).handles(&[TERM]).ev(),
            deliver(t0 + 0.1, TERM, &app, Handler),
            generate(t0 + 2000.0, KILL, &runc_kill(), &app).ev(),
            exit_signal(t0 + 2000.5, &app, KILL),
        ]
    };
    let c = run_k8s(declared(DeclaredHook::Sleep { seconds: 3 }), stop(3000.0));
    assert_eq!(c.prestop_s, Some(3.0), "{c:#?}");
    assert!(c.prestop.is_none());
    assert_eq!(c.diagnosis, Diagnosis::SlowPrestop);
    assert!(
        c.hint
            .as_deref()
            .is_some_and(|h| h.starts_with("the preStop hook (sleep 3 s) took 3.0 s of the 5 s")),
        "{c:#?}"
    );
    let c = run_k8s(declared(DeclaredHook::Sleep { seconds: 60 }), stop(5000.0));
    assert_eq!(c.prestop_s, Some(5.0), "{c:#?}");
    assert!(
        c.hint.as_deref().is_some_and(|h| h.starts_with(
            "the preStop hook (sleep 60 s) was still running when kubelet gave up on it after \
             the whole 5 s grace"
        )),
        "{c:#?}"
    );
}
