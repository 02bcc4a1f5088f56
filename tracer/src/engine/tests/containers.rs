//! Container-level records: grouping of the process records of one attributed cgroup, the
//! container's diagnosis (its least clean process), timing and outcome.
use std::sync::Arc;

use super::*;
use crate::container::ContainerInfo;
use crate::engine::{ContainerStop, Diagnosis};
use crate::event::Disposition::*;

pub(super) fn info(cgroup_id: u64) -> Arc<ContainerInfo> {
    Arc::new(ContainerInfo {
        id: format!("{cgroup_id:064x}"),
        runtime: "containerd".into(),
        name: Some("web".into()),
        pod: Some("web-0".into()),
        namespace: Some("prod".into()),
        cgroup_id,
        ..ContainerInfo::default()
    })
}

pub(super) fn run_in_container(cgroup_id: u64, events: Vec<Event>) -> Vec<Output> {
    let mut engine = Engine::new(EngineConfig::default());
    engine.set_container(cgroup_id, info(cgroup_id));
    let mut out = Vec::new();
    for ev in events {
        engine.push(ev, &mut out);
    }
    engine.finish(&mut out);
    out
}

pub(super) fn one(out: &[Output]) -> ContainerStop {
    let mut v = container_stops(out);
    assert_eq!(v.len(), 1, "{v:#?}");
    v.remove(0)
}

#[test]
fn s3_container_record_explained_by_the_shell() {
    let sh = task(100, "sh").init();
    let sleep = task(101, "sleep").ppid(100);
    let out = run_in_container(
        7,
        vec![
            generate(0.0, TERM, &runc_term(), &sh).ev(),
            generate(2000.0, KILL, &runc_kill(), &sh).ev(),
            exit_signal(2001.0, &sh, KILL),
            generate(2001.2, KILL, &sh.clone().dying(), &sleep)
                .kernel()
                .ev(),
            exit_signal(2001.6, &sleep, KILL),
        ],
    );
    let c = one(&out);
    assert_eq!(c.diagnosis, Diagnosis::ShellNotForwarding);
    assert_eq!(c.hint, Diagnosis::ShellNotForwarding.hint().map(Into::into));
    assert_eq!((c.init_pid, c.cgroup_id), (100, 7));
    assert_eq!(c.processes.len(), 2);
    assert_eq!(c.processes[1].diagnosis, Diagnosis::OrphanKilled);
    assert_eq!(c.started, time(0.0));
    assert_eq!(c.ended.map(|t| t.to_string()), Some(time(2001.6)));
    assert_eq!(c.stop_signal, Some(TERM));
    assert_eq!(c.sender_class, Some(crate::engine::SenderClass::Runtime));
    assert_eq!(
        c.sender.map(|s| s.comm.to_string()).as_deref(),
        Some("runc")
    );
    assert!(approx(c.duration_s, 2.0016), "{}", c.duration_s);
    assert_eq!(c.grace_s, Some(2.0));
    assert!(c.killed && c.overrun && c.complete);
    assert_eq!(c.outcome(), "killed");
    assert_eq!(c.container.pod.as_deref(), Some("web-0"));
    // The container record comes after the records of its processes.
    let last = out.last();
    assert!(matches!(last, Some(Output::ContainerStop(_))), "{last:?}");
    let v = serde_json::to_value(&c).unwrap_or_default();
    assert_eq!(v["type"], "container_stop");
    assert_eq!(v["diagnosis"], "shell_not_forwarding");
    assert_eq!(v["container"]["namespace"], "prod");
    let back: ContainerStop = serde_json::from_value(v).expect("round trip");
    assert_eq!(back, c);
}

#[test]
fn s12_graceful_init_with_orphan_killed_child() {
    let app = task(100, "app").init();
    let child = task(101, "worker").ppid(100);
    let out = run_in_container(
        7,
        vec![
            generate(0.0, TERM, &runc_term(), &app)
                .handles(&[TERM])
                .ev(),
            deliver(0.1, TERM, &app, Handler),
            exit_code(10.0, &app, 0),
            generate(10.1, KILL, &app.clone().dying(), &child)
                .kernel()
                .ev(),
            exit_signal(10.3, &child, KILL),
        ],
    );
    let c = one(&out);
    assert_eq!(c.diagnosis, Diagnosis::OrphanKilled);
    assert_eq!(c.outcome(), "exited");
    assert!(!c.killed && !c.overrun);
    assert_eq!(c.grace_s, None);
}

#[test]
fn s5_tini_and_default_action_child() {
    let tini = task(100, "tini").init();
    let sleep = task(101, "sleep").ppid(100);
    let out = run_in_container(
        7,
        vec![
            generate(0.0, TERM, &runc_term(), &tini)
                .handles(&[TERM])
                .ev(),
            deliver(0.2, TERM, &tini, Handler),
            generate(0.5, TERM, &tini, &sleep).ev(),
            deliver_default(0.7, TERM, &sleep),
            exit_signal(0.9, &sleep, TERM),
            exit_code(1.5, &tini, 143),
        ],
    );
    let c = one(&out);
    assert_eq!(c.diagnosis, Diagnosis::DefaultAction);
    assert_eq!(c.processes.len(), 2);
    assert_eq!(c.exit.as_ref().and_then(|e| e.code), Some(143));
}

#[test]
fn a_worker_restarting_inside_a_running_container_is_no_container_stop() {
    let worker = task(105, "worker").ppid(100);
    let mut engine = Engine::new(EngineConfig::default());
    engine.set_container(7, info(7));
    let mut out = Vec::new();
    for ev in [
        generate(0.0, TERM, &task(100, "supervisord").init(), &worker)
            .handles(&[TERM])
            .ev(),
        deliver(0.1, TERM, &worker, Handler),
        exit_code(5.0, &worker, 0),
    ] {
        engine.push(ev, &mut out);
    }
    engine.advance(ns(1000.0), &mut out);
    assert_eq!(stop_of(&out, 105).diagnosis, Diagnosis::Graceful);
    assert_eq!(engine.stats().open_container_stops, 1);
    engine.advance(ns(10_000.0), &mut out);
    assert_eq!(
        engine.stats().open_container_stops,
        0,
        "dropped after quiet"
    );
    engine.finish(&mut out);
    assert!(container_stops(&out).is_empty());
    assert_eq!(engine.stats().tracked_containers, 1);
}

#[test]
fn host_processes_make_no_container_record() {
    let app = task(100, "app").init();
    let out = run(handled_runtime_term(&app, 0.1, 10.0));
    assert!(container_stops(&out).is_empty());
    assert_eq!(stops(&out).len(), 1);
}

/// Every pair of diagnoses in a container decides its diagnosis by the documented precedence
/// (module doc of `engine::containers`), whichever process (the init or its child) holds
/// which.
#[test]
fn ranking_prefers_the_cause_over_its_consequences() {
    use crate::engine::containers::Containers;
    const ORDER: [Diagnosis; 12] = [
        Diagnosis::OomKilled,
        Diagnosis::ShellNotForwarding,
        Diagnosis::IgnoredByPid1,
        Diagnosis::WrongSignal,
        Diagnosis::SignalIgnored,
        Diagnosis::SignalBlocked,
        Diagnosis::SlowPrestop,
        Diagnosis::SlowHandler,
        Diagnosis::ForceKilled,
        Diagnosis::DefaultAction,
        Diagnosis::OrphanKilled,
        Diagnosis::Graceful,
    ];
    assert!(Diagnosis::ALL.iter().all(|d| ORDER.contains(d)));
    let app = task(100, "app").init().cgroup(7);
    let mut template = stop_of(&run(handled_runtime_term(&app, 0.1, 10.0)), 100);
    template.container = Some(info(7));
    let record = |pid: u32, init: bool, d: Diagnosis| ProcessStop {
        pid,
        ns_init: init,
        diagnosis: d,
        ..template.clone()
    };
    for (i, &stronger) in ORDER.iter().enumerate() {
        for &weaker in &ORDER[i + 1..] {
            for (init_d, child_d) in [(stronger, weaker), (weaker, stronger)] {
                let mut groups = Containers::default();
                let mut out = Vec::new();
                let first = (ns(0.0), wall(0.0));
                groups.record(record(101, false, child_d), first, ns(5.0), 1, &mut out);
                groups.record(record(100, true, init_d), first, ns(10.0), 0, &mut out);
                let c = one(&out);
                assert_eq!(
                    c.diagnosis, stronger,
                    "init {init_d:?}, child {child_d:?}: {stronger:?} must explain the container"
                );
            }
        }
    }
}

/// S9 as docker runs it (`--init`): tini blocks its signals and takes SIGTERM with sigwait (no
/// delivery is traced), forwards it to the workload, which set SIGTERM to SIG_IGN; the runtime
/// SIGKILLs tini after the grace and the namespace teardown kills the workload. The workload
/// ignored its stop signal (not a mere orphan), tini took and forwarded its own (not blocked).
#[test]
fn s9_under_tini_ignored_signal_explains_the_container() {
    let tini = task(100, "docker-init").init();
    let app = task(101, "victim").ppid(100);
    let out = run_in_container(
        7,
        vec![
            generate(0.0, TERM, &runc_term(), &tini)
                .blocked()
                .result(crate::event::SigResult::Delivered)
                .ev(),
            generate(0.3, TERM, &tini, &app)
                .ignores(&[TERM])
                .result(crate::event::SigResult::Ignored)
                .ev(),
            generate(1000.0, KILL, &runc_kill(), &tini).ev(),
            exit_signal(1001.0, &tini, KILL),
            generate(1001.2, KILL, &tini.clone().dying(), &app)
                .kernel()
                .ignores(&[TERM])
                .ev(),
            exit_signal(1001.5, &app, KILL),
        ],
    );
    let c = one(&out);
    assert_eq!(c.processes.len(), 2);
    let by_pid = |pid| c.processes.iter().find(|p| p.pid == pid).expect("record");
    assert_eq!(by_pid(101).diagnosis, Diagnosis::SignalIgnored);
    assert_eq!(by_pid(100).diagnosis, Diagnosis::SlowHandler);
    assert_eq!(by_pid(100).forwarded.len(), 1);
    assert_eq!(c.diagnosis, Diagnosis::SignalIgnored);
    assert!(c.killed && c.overrun);
    // Without the forward, a signal that was generated and never delivered stays blocked; a
    // child that got no stop signal of its own is still orphan_killed (S3, S12).
    let out = run_in_container(
        7,
        vec![
            generate(0.0, TERM, &runc_term(), &tini)
                .blocked()
                .result(crate::event::SigResult::Delivered)
                .ev(),
            generate(1000.0, KILL, &runc_kill(), &tini).ev(),
            exit_signal(1001.0, &tini, KILL),
            generate(1001.2, KILL, &tini.clone().dying(), &app)
                .kernel()
                .ev(),
            exit_signal(1001.5, &app, KILL),
        ],
    );
    let c = one(&out);
    let by_pid = |pid| c.processes.iter().find(|p| p.pid == pid).expect("record");
    assert_eq!(by_pid(100).diagnosis, Diagnosis::SignalBlocked);
    assert_eq!(by_pid(101).diagnosis, Diagnosis::OrphanKilled);
}

/// A plain docker container's declared grace (`--stop-timeout 3`): an exit at 2.5 s is a near
/// overrun against it; an unkilled exit after it (a `docker stop -t` gave more) is no overrun.
#[test]
fn a_docker_stop_timeout_is_the_grace_of_an_unkilled_stop() {
    let docker = |cgroup_id: u64| {
        Arc::new(ContainerInfo {
            id: format!("{cgroup_id:064x}"),
            runtime: "docker".into(),
            name: Some("app".into()),
            termination_grace_s: Some(3),
            cgroup_id,
            ..ContainerInfo::default()
        })
    };
    let stop_after = |exit_ms: f64| {
        let app = task(100, "app").init().cgroup(9);
        let mut engine = Engine::new(EngineConfig::default());
        engine.set_container(9, docker(9));
        let mut out = Vec::new();
        for ev in handled_runtime_term(&app, 1.0, exit_ms) {
            engine.push(ev, &mut out);
        }
        engine.finish(&mut out);
        out
    };
    let out = stop_after(2500.0);
    let p = stop_of(&out, 100);
    assert_eq!(p.grace_s, Some(3.0));
    assert_eq!(p.grace_source, Some(crate::engine::GraceSource::Declared));
    assert!(p.near_overrun && !p.overrun, "{p:#?}");
    assert_eq!(p.diagnosis, Diagnosis::Graceful);
    let c = one(&out);
    assert_eq!(c.termination_grace_s, Some(3.0));
    assert_eq!(c.termination_grace_source.as_deref(), Some("docker"));
    let out = stop_after(4000.0);
    let p = stop_of(&out, 100);
    assert_eq!((p.grace_s, p.grace_source), (None, None), "{p:#?}");
    assert!(!p.near_overrun && !p.overrun, "{p:#?}");
}
