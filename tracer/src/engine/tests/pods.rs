//! Pod records: the container records of one pod closed by the end of its sandbox; the
//! sandbox's own records stay inside; the container that held the pod up; the containers
//! SIGKILLed at sandbox teardown.
use std::sync::Arc;

use super::*;
use crate::container::{workload, ContainerInfo};
use crate::engine::{Diagnosis, PodStop};
use crate::event::Disposition::*;

const UID: &str = "1e2d3c4b-5a69-4788-9a0b-1c2d3e4f5a6b";

fn member(cgroup_id: u64, name: Option<&str>, kind: &str) -> Arc<ContainerInfo> {
    let pod = "web-7d4b9c8f6d-x2k9p";
    Arc::new(ContainerInfo {
        id: format!("{cgroup_id:064x}"),
        runtime: "containerd".into(),
        name: name.map(Into::into),
        pod: Some(pod.into()),
        namespace: Some("shop".into()),
        pod_uid: Some(UID.into()),
        container_type: Some(kind.into()),
        workload: Some(workload::from_pod_name(pod)),
        cgroup_id,
        ..ContainerInfo::default()
    })
}

/// Engine with containers `app` (cgroup 10), `sidecar` (11) and the sandbox (12).
fn engine() -> Engine {
    let mut e = Engine::new(EngineConfig::default());
    e.set_container(10, member(10, Some("app"), "container"));
    e.set_container(11, member(11, Some("sidecar"), "container"));
    e.set_container(12, member(12, None, "sandbox"));
    e
}

fn feed(mut e: Engine, events: Vec<Event>) -> Vec<Output> {
    let mut out = Vec::new();
    for ev in events {
        e.push(ev, &mut out);
    }
    e.finish(&mut out);
    out
}

fn pods(out: &[Output]) -> Vec<PodStop> {
    out.iter()
        .filter_map(|o| match o {
            Output::PodStop(p) => Some(p.clone()),
            _ => None,
        })
        .collect()
}

/// The pause process is SIGKILLed by the runtime at `ms`.
fn sandbox_kill(ms: f64, pause: &Task) -> Vec<Event> {
    vec![
        generate(ms, KILL, &runc_kill(), pause).ev(),
        exit_signal(ms + 0.1, pause, KILL),
    ]
}

#[test]
fn pod_record_names_the_container_that_held_it_up() {
    let app = task(100, "app").cgroup(10).init();
    let side = task(200, "sidecar").cgroup(11).init();
    let pause = task(300, "pause").cgroup(12).init();
    let mut ev = vec![
        // Both get SIGTERM at once; the sidecar exits at 50 ms, the app is killed at 5 s.
        generate(0.0, TERM, &runc_term(), &side)
            .handles(&[TERM])
            .ev(),
        generate(0.5, TERM, &runc_term(), &app)
            .handles(&[TERM])
            .ev(),
        deliver(0.6, TERM, &side, Handler),
        deliver(0.7, TERM, &app, Handler),
        exit_code(50.0, &side, 0),
        generate(5000.5, KILL, &runc_kill(), &app).ev(),
        exit_signal(5001.0, &app, KILL),
    ];
    ev.extend(sandbox_kill(5100.0, &pause));
    let out = feed(engine(), ev);
    let p = pods(&out);
    assert_eq!(p.len(), 1, "{out:#?}");
    let p = &p[0];
    assert_eq!(p.pod_uid, UID);
    assert_eq!(p.label(), "shop/web-7d4b9c8f6d-x2k9p");
    let w = p.workload.as_ref().expect("workload");
    assert_eq!((w.name.as_str(), w.kind.as_str()), ("web", "deployment"));
    assert_eq!(p.containers.len(), 2);
    assert_eq!(p.held_up_by.as_deref(), Some("app"));
    assert!(approx(p.held_up_s, 5.0005), "{}", p.held_up_s);
    assert!(approx(p.duration_s, 5.1001), "{}", p.duration_s);
    assert_eq!(p.diagnosis, Diagnosis::SlowHandler);
    assert!(p.overrun);
    assert!(p.killed_at_teardown.is_empty());
    let sb = p.sandbox.as_ref().expect("sandbox end");
    assert_eq!(sb.stop_signal, Some(KILL));
    // The sandbox is in the pod record only: no process or container record of its own.
    assert!(stops(&out).iter().all(|s| s.pid != 300));
    assert!(container_stops(&out)
        .iter()
        .all(|c| !c.container.is_sandbox()));
    assert_eq!(container_stops(&out).len(), 2);
    // The pod record comes after its containers' records.
    assert!(matches!(out.last(), Some(Output::PodStop(_))));
    let v = serde_json::to_value(p).unwrap();
    assert_eq!(v["type"], "pod_stop");
    assert_eq!(v["workload"], "web");
    assert_eq!(v["workload_type"], "deployment");
    assert_eq!(v["containers"][0]["container"]["workload"], "web");
}

#[test]
fn container_still_running_at_teardown_is_named() {
    let app = task(100, "app").cgroup(10).init();
    let side = task(200, "sidecar").cgroup(11).init();
    let pause = task(300, "pause").cgroup(12).init();
    let mut ev = vec![
        generate(0.0, TERM, &runc_term(), &app)
            .handles(&[TERM])
            .ev(),
        deliver(0.1, TERM, &app, Handler),
        exit_code(100.0, &app, 0),
        // StopPodSandbox: the sidecar, never stopped, gets SIGKILL, then the pause process.
        generate(1000.0, KILL, &runc_kill(), &side).ev(),
        exit_signal(1000.5, &side, KILL),
    ];
    ev.extend(sandbox_kill(1002.0, &pause));
    let out = feed(engine(), ev);
    let p = &pods(&out)[0];
    assert_eq!(p.killed_at_teardown, vec!["sidecar".to_string()]);
    assert_eq!(p.diagnosis, Diagnosis::ForceKilled);
    assert!(p.hint.as_deref().unwrap_or("").contains("sandbox teardown"));
    let side_rec = container_stops(&out)
        .into_iter()
        .find(|c| c.container.label() == "sidecar")
        .expect("sidecar record");
    assert_eq!(side_rec.stop_signal, Some(KILL));
}

#[test]
fn no_pod_record_without_the_sandbox_end_or_without_containers() {
    // A container restarted in a running pod: a container record, no pod record.
    let app = task(100, "app").cgroup(10).init();
    let out = feed(
        engine(),
        vec![
            generate(0.0, TERM, &runc_term(), &app)
                .handles(&[TERM])
                .ev(),
            deliver(0.1, TERM, &app, Handler),
            exit_code(100.0, &app, 0),
        ],
    );
    assert_eq!(container_stops(&out).len(), 1);
    assert!(pods(&out).is_empty());
    // Only the sandbox ended (its containers had exited on their own): nothing at all.
    let pause = task(300, "pause").cgroup(12).init();
    let out = feed(engine(), sandbox_kill(0.0, &pause));
    assert!(pods(&out).is_empty() && container_stops(&out).is_empty() && stops(&out).is_empty());
}

#[test]
fn restarted_container_keeps_its_last_record() {
    let first = task(100, "app").cgroup(10).init();
    let second = task(101, "app").cgroup(10).init().start(9_000_000_000);
    let pause = task(300, "pause").cgroup(12).init();
    let mut ev = vec![
        generate(0.0, TERM, &runc_term(), &first)
            .handles(&[TERM])
            .ev(),
        deliver(0.1, TERM, &first, Handler),
        exit_code(10.0, &first, 0),
        generate(60_000.0, TERM, &runc_term(), &second).ev(),
        deliver_default(60_000.1, TERM, &second),
        exit_signal(60_000.2, &second, TERM),
    ];
    ev.extend(sandbox_kill(60_100.0, &pause));
    let out = feed(engine(), ev);
    let p = &pods(&out)[0];
    assert_eq!(p.containers.len(), 1);
    assert_eq!(p.containers[0].init_pid, 101);
    assert_eq!(p.diagnosis, Diagnosis::DefaultAction);
}
