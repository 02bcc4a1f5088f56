//! Robustness under real conditions: reordering, late events, PID reuse, threads,
//! pre-existing processes, losses, eviction by count and age, memory per process,
//! determinism across batching, noise, and the JSON schema.
use super::*;
use crate::engine::episode::Proc;
use crate::engine::{Diagnosis, TimelineWhat};
use crate::event::{Disposition::*, SigResult};

/// A busy node: S3 (shell + orphan), S5 (tini + default action), S7 (slow handler) and a
/// graceful host process, interleaved, all timestamps distinct.
fn busy_stream() -> Vec<Event> {
    let sh = task(100, "sh").init().cgroup(10);
    let sleep = task(101, "sleep").ppid(100).cgroup(10);
    let tini = task(200, "tini").init().cgroup(20);
    let child = task(201, "sleep").ppid(200).cgroup(20);
    let slow = task(300, "app").init().cgroup(30);
    let host = task(400, "nginx").cgroup(1);
    let all = [TERM, INT, Signal::QUIT, Signal::HUP];
    let mut v = vec![
        generate(0.0, TERM, &runc_term(), &sh).ev(),
        generate(1.0, TERM, &runc_term(), &tini).handles(&all).ev(),
        deliver(1.5, TERM, &tini, Handler),
        generate(2.0, TERM, &tini, &child).ev(),
        deliver_default(2.5, TERM, &child),
        exit_signal(3.0, &child, TERM),
        exit_code(4.0, &tini, 143),
        generate(5.0, TERM, &runc_term(), &slow)
            .handles(&[TERM])
            .ev(),
        deliver(6.0, TERM, &slow, Handler),
        generate(7.0, TERM, &task(9, "bash"), &host)
            .handles(&[TERM])
            .ev(),
        deliver(8.0, TERM, &host, Handler),
        exit_code(900.0, &host, 0),
        generate(2000.0, KILL, &runc_kill(), &sh).ev(),
        exit_signal(2001.0, &sh, KILL),
        generate(2001.2, KILL, &sh.clone().dying(), &sleep)
            .kernel()
            .ev(),
        deliver(2001.4, KILL, &sleep, Default),
        exit_signal(2001.6, &sleep, KILL),
        generate(2005.0, KILL, &runc_kill(), &slow)
            .handles(&[TERM])
            .ev(),
        exit_signal(2005.5, &slow, KILL),
    ];
    // Some thread noise.
    v.push(thread_exit(2006.0, &task(500, "x").tid(501)));
    v
}

/// Arrival order: each event delayed by a pseudo-random jitter below half the window.
fn jittered(events: &[Event], window_ns: u64, seed: u64) -> Vec<Event> {
    let mut x = seed;
    let mut keyed: Vec<(u64, Event)> = events
        .iter()
        .map(|e| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (e.mono_ns + (x >> 33) % (window_ns / 2), e.clone())
        })
        .collect();
    keyed.sort_by_key(|(k, _)| *k);
    keyed.into_iter().map(|(_, e)| e).collect()
}

#[test]
fn events_shuffled_within_the_window_give_the_same_output() {
    let events = busy_stream();
    let reference = run(events.clone());
    assert_eq!(stops(&reference).len(), 6);
    let window = EngineConfig::default().reorder_window_ns;
    for seed in 1..20 {
        let shuffled = jittered(&events, window, seed);
        let mut engine = Engine::new(EngineConfig::default());
        let mut out = Vec::new();
        for ev in shuffled {
            engine.push(ev, &mut out);
        }
        engine.finish(&mut out);
        assert_eq!(engine.stats().late_events, 0);
        assert_eq!(out, reference, "seed {seed}");
    }
    let by_pid = |pid| stop_of(&reference, pid).diagnosis;
    assert_eq!(by_pid(100), Diagnosis::ShellNotForwarding);
    assert_eq!(by_pid(101), Diagnosis::OrphanKilled);
    assert_eq!(by_pid(200), Diagnosis::Graceful);
    assert_eq!(by_pid(201), Diagnosis::DefaultAction);
    assert_eq!(by_pid(300), Diagnosis::SlowHandler);
    assert_eq!(by_pid(400), Diagnosis::Graceful);
}

#[test]
fn push_in_one_go_or_in_chunks_with_advance_is_identical() {
    let events = busy_stream();
    let window = EngineConfig::default().reorder_window_ns;
    let arrival = jittered(&events, window, 42);
    let with_containers = || {
        let mut engine = Engine::new(EngineConfig::default());
        for cg in [10u64, 20, 30] {
            engine.set_container(
                cg,
                std::sync::Arc::new(crate::container::ContainerInfo {
                    id: format!("c{cg}"),
                    cgroup_id: cg,
                    ..crate::container::ContainerInfo::default()
                }),
            );
        }
        engine
    };
    let mut engine = with_containers();
    let mut one_go = Vec::new();
    for ev in arrival.clone() {
        engine.push(ev, &mut one_go);
    }
    engine.finish(&mut one_go);
    assert_eq!(container_stops(&one_go).len(), 3);
    for chunk in [1, 2, 3, 7] {
        let mut engine = with_containers();
        let mut out = Vec::new();
        let mut max_ts = 0;
        for part in arrival.chunks(chunk) {
            for ev in part {
                max_ts = max_ts.max(ev.mono_ns);
                engine.push(ev.clone(), &mut out);
            }
            // Live time is at least the newest event read.
            engine.advance(max_ts, &mut out);
        }
        engine.finish(&mut out);
        assert_eq!(engine.stats().late_events, 0);
        assert_eq!(out, one_go, "chunk {chunk}");
        let json = |o: &[Output]| serde_json::to_string(o).unwrap_or_default();
        assert_eq!(json(&out), json(&one_go));
    }
}

#[test]
fn late_events_are_applied_and_counted() {
    let app = task(100, "app");
    let mut engine = Engine::new(EngineConfig::default());
    let mut out = Vec::new();
    engine.push(
        generate(0.0, TERM, &runc_term(), &app)
            .handles(&[TERM])
            .ev(),
        &mut out,
    );
    engine.push(exit_code(300.0, &app, 0), &mut out); // releases the generate
    engine.push(
        generate(200.0, INT, &task(5, "x"), &task(6, "y")).ev(),
        &mut out,
    ); // released at once
    assert_eq!(engine.stats().late_events, 0);
    engine.push(deliver(1.0, TERM, &app, Handler), &mut out); // older than released ones
    assert_eq!(engine.stats().late_events, 1);
    engine.finish(&mut out);
    let s = stop_of(&out, 100);
    assert_eq!(
        s.signals[0].delivered_at.map(|t| t.to_string()),
        Some(time(1.0))
    );
    assert_eq!(s.diagnosis, Diagnosis::Graceful);
}

#[test]
fn pid_reuse_gets_its_own_episode() {
    let old = task(100, "app").start(5_000);
    let new = task(100, "app").start(9_000_000);
    // Old process stops and dies; a new one with the same pid stops later.
    let out = run(vec![
        generate(0.0, TERM, &runc_term(), &old).ev(),
        deliver_default(0.1, TERM, &old),
        exit_signal(0.2, &old, TERM),
        generate(1000.0, TERM, &runc_term(), &new)
            .handles(&[TERM])
            .ev(),
        deliver(1000.1, TERM, &new, Handler),
        exit_code(1100.0, &new, 0),
    ]);
    let recs = stops(&out);
    assert_eq!(recs.len(), 2);
    assert_eq!(recs[0].diagnosis, Diagnosis::DefaultAction);
    assert_eq!(recs[1].diagnosis, Diagnosis::Graceful);
    assert_eq!(recs[1].time, time(1000.0));
    assert_eq!(recs[1].signals.len(), 1);

    // The old exit was never seen: the old episode is closed, never absorbs the new process;
    // a stale event of the old process after the new one is ignored.
    let mut engine = Engine::new(EngineConfig::default());
    let mut out = Vec::new();
    for ev in [
        generate(0.0, TERM, &runc_term(), &old)
            .handles(&[TERM])
            .ev(),
        deliver(0.1, TERM, &old, Handler),
        generate(1000.0, KILL, &runc_kill(), &new).ev(),
    ] {
        engine.push(ev, &mut out);
    }
    engine.advance(ns(1100.0), &mut out);
    // Stale (older start time) and late: ignored, the new process keeps its episode.
    engine.push(generate(1050.0, TERM, &runc_term(), &old).ev(), &mut out);
    assert_eq!(engine.stats().late_events, 1);
    engine.push(exit_signal(1100.5, &new, KILL), &mut out);
    engine.finish(&mut out);
    let recs = stops(&out);
    assert_eq!(recs.len(), 2, "{recs:#?}");
    assert!(!recs[0].complete);
    assert!(recs[0]
        .incomplete_reason
        .as_deref()
        .unwrap_or("")
        .contains("pid reused"));
    assert_eq!(recs[0].signals.len(), 1);
    assert_eq!(recs[0].exit, None);
    assert_eq!(recs[1].diagnosis, Diagnosis::ForceKilled);
    assert_eq!(recs[1].signals.len(), 1);
    assert!(recs[1].complete);
    assert_eq!(engine.stats().evictions.pid_reused, 1);
}

#[test]
fn unknown_start_time_falls_back_to_pid() {
    let known = task(100, "app");
    let unknown = task(100, "app").start(0);
    let out = run(vec![
        generate(0.0, TERM, &runc_term(), &unknown)
            .handles(&[TERM])
            .ev(),
        deliver(0.1, TERM, &known, Handler),
        exit_code(5.0, &unknown, 0),
    ]);
    let s = stop_of(&out, 100);
    assert_eq!(s.diagnosis, Diagnosis::Graceful);
    assert!(s.signals[0].delivered_at.is_some());
}

#[test]
fn multi_threaded_target() {
    let leader = task(100, "java");
    let t2 = leader.clone().tid(102);
    let t3 = leader.clone().tid(103);
    let out = run(vec![
        generate(0.0, TERM, &runc_term(), &leader)
            .handles(&[TERM])
            .ev(),
        // Delivered to another thread of the group.
        deliver(0.5, TERM, &t3, Handler),
        thread_exit(40.0, &t2),
        // exit_group() fans SIGKILL out to the other threads: not a signal of the stop.
        deliver(99.0, KILL, &leader, Default),
        exit_code(100.0, &t3, 0),
    ]);
    let recs = stops(&out);
    assert_eq!(recs.len(), 1);
    let s = &recs[0];
    assert_eq!(s.diagnosis, Diagnosis::Graceful);
    assert!(
        approx(s.duration_s, 0.1),
        "thread exit did not end it: {}",
        s.duration_s
    );
    assert_eq!(s.signals.len(), 1);
    assert_eq!(
        s.signals[0].delivered_at.map(|t| t.to_string()),
        Some(time(0.5))
    );
    let delivered_to = out.iter().find_map(|o| match o {
        Output::Timeline(l) => match l.what {
            TimelineWhat::Deliver { tid, .. } => Some(tid),
            _ => None,
        },
        _ => None,
    });
    assert_eq!(delivered_to, Some(103));
    // A kernel SIGKILL inside the group (group-exit fan-out) produces nothing on its own.
    let out = run(vec![generate(0.0, KILL, &leader, &leader).kernel().ev()]);
    assert!(out.is_empty(), "{out:#?}");
}

#[test]
fn pre_existing_processes() {
    // Started long before the trace (old start time), first seen at its stop: complete.
    let old = task(100, "postgres").start(3);
    let s = stop_of(
        &run(vec![
            generate(0.0, TERM, &runc_term(), &old)
                .handles(&[TERM])
                .ev(),
            deliver(0.1, TERM, &old, Handler),
            exit_code(50.0, &old, 0),
        ]),
        100,
    );
    assert!(s.complete);
    assert_eq!(s.diagnosis, Diagnosis::Graceful);
    // First seen mid-episode (signal generated before the trace started): a record that says
    // it may be incomplete.
    let out = run(vec![
        deliver(0.0, TERM, &old, Handler),
        exit_code(50.0, &old, 0),
    ]);
    let s = stop_of(&out, 100);
    assert_eq!(s.diagnosis, Diagnosis::Graceful);
    assert!(!s.complete);
    assert!(s
        .incomplete_reason
        .as_deref()
        .unwrap_or("")
        .contains("generation was not seen"));
    assert_eq!(s.signals[0].sender, None);
    assert_eq!(
        s.signals[0].delivered_at.map(|t| t.to_string()),
        Some(time(0.0))
    );
}

#[test]
fn lost_events_mark_open_records_incomplete() {
    let a = task(100, "a");
    let b = task(200, "b");
    let mut engine = Engine::new(EngineConfig::default());
    let mut out = Vec::new();
    engine.push(
        generate(0.0, TERM, &runc_term(), &a).handles(&[TERM]).ev(),
        &mut out,
    );
    engine.lost(3, ns(50.0));
    for ev in [
        exit_code(100.0, &a, 0),
        generate(200.0, TERM, &runc_term(), &b)
            .handles(&[TERM])
            .ev(),
        deliver(200.1, TERM, &b, Handler),
        exit_code(300.0, &b, 0),
    ] {
        engine.push(ev, &mut out);
    }
    engine.finish(&mut out);
    let sa = stop_of(&out, 100);
    assert!(!sa.complete);
    assert_eq!(
        sa.incomplete_reason.as_deref(),
        Some("3 events lost (ring buffer full) during this shutdown")
    );
    assert!(stop_of(&out, 200).complete, "opened after the loss");
    assert_eq!(engine.stats().lost_events, 3);
}

#[test]
fn episode_eviction_by_count() {
    let cfg = EngineConfig {
        max_episodes: 2,
        ..EngineConfig::default()
    };
    let mut engine = Engine::new(cfg);
    let mut out = Vec::new();
    for (i, pid) in [100u32, 101, 102].into_iter().enumerate() {
        let t = task(pid, "app");
        engine.push(
            generate(i as f64 * 100.0, TERM, &runc_term(), &t).ev(),
            &mut out,
        );
    }
    engine.advance(ns(1000.0), &mut out);
    let recs = stops(&out);
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].pid, 100);
    assert!(!recs[0].complete);
    assert!(recs[0]
        .incomplete_reason
        .as_deref()
        .unwrap_or("")
        .starts_with("evicted"));
    let st = engine.stats();
    assert_eq!(st.evictions.episode_count, 1);
    assert_eq!(st.open_episodes, 2);
    engine.finish(&mut out);
    let recs = stops(&out);
    assert_eq!(recs.len(), 3);
    assert_eq!(
        recs[2].incomplete_reason.as_deref(),
        Some("still running when the trace ended")
    );
}

#[test]
fn process_eviction_by_count_spares_processes_in_a_shutdown() {
    let cfg = EngineConfig {
        max_processes: 8,
        ..EngineConfig::default()
    };
    let mut engine = Engine::new(cfg);
    let mut out = Vec::new();
    let stopping = task(1000, "app");
    engine.push(
        generate(0.0, TERM, &runc_term(), &stopping)
            .handles(&[TERM])
            .ev(),
        &mut out,
    );
    for i in 0..40u32 {
        let parent = task(2000 + i, "bash").init();
        let child = task(3000 + i, "ls").ppid(2000 + i);
        engine.push(
            generate(1.0 + f64::from(i), Signal::CHLD, &child, &parent).ev(),
            &mut out,
        );
    }
    engine.advance(ns(60.0), &mut out);
    let st = engine.stats();
    assert!(st.tracked_processes <= 8, "{st:?}");
    assert!(st.evictions.process_count >= 30, "{st:?}");
    engine.push(deliver(100.0, TERM, &stopping, Handler), &mut out);
    engine.push(exit_code(200.0, &stopping, 0), &mut out);
    engine.finish(&mut out);
    let s = stop_of(&out, 1000);
    assert_eq!(s.diagnosis, Diagnosis::Graceful);
    assert!(s.complete);
}

#[test]
fn eviction_by_age() {
    let cfg = EngineConfig {
        episode_timeout_ns: 1_000_000_000,
        process_idle_ns: 1_000_000_000,
        ..EngineConfig::default()
    };
    let mut engine = Engine::new(cfg);
    let mut out = Vec::new();
    let app = task(100, "app").init();
    engine.push(generate(0.0, TERM, &runc_term(), &app).ev(), &mut out);
    engine.push(
        generate(
            10.0,
            Signal::CHLD,
            &task(301, "c").ppid(300),
            &task(300, "p").init(),
        )
        .ev(),
        &mut out,
    );
    engine.advance(ns(900.0), &mut out);
    assert!(stops(&out).is_empty());
    assert_eq!(engine.stats().tracked_processes, 2);
    engine.advance(ns(3000.0), &mut out);
    let s = stop_of(&out, 100);
    assert!(!s.complete);
    assert!(s
        .incomplete_reason
        .as_deref()
        .unwrap_or("")
        .contains("episode timeout"));
    assert!(approx(s.duration_s, 1.0), "{}", s.duration_s);
    assert_eq!(
        s.diagnosis,
        Diagnosis::IgnoredByPid1,
        "still diagnosed while running"
    );
    assert!(s.exit.is_none());
    let st = engine.stats();
    assert_eq!(st.evictions.episode_age, 1);
    // The idle parent and, after its timeout, the still-running app.
    assert_eq!(st.evictions.process_age, 2, "{st:?}");
    assert_eq!(st.tracked_processes, 0);
    assert_eq!(st.open_episodes, 0);
}

#[test]
fn still_running_at_trace_end() {
    let app = task(100, "app");
    let out = run(vec![
        generate(0.0, TERM, &runc_term(), &app)
            .handles(&[TERM])
            .ev(),
        deliver(0.1, TERM, &app, Handler),
        generate(500.0, INT, &task(9, "x"), &task(10, "y")).ev(),
    ]);
    let s = stop_of(&out, 100);
    assert!(!s.complete && s.exit.is_none());
    assert_eq!(
        s.incomplete_reason.as_deref(),
        Some("still running when the trace ended")
    );
    assert!(approx(s.duration_s, 500.0 / 1000.0), "{}", s.duration_s);
}

#[test]
fn plain_exits_are_quiet_and_leave_no_state() {
    let mut engine = Engine::new(EngineConfig::default());
    let mut out = Vec::new();
    for pid in 100..200u32 {
        engine.push(exit_code(f64::from(pid), &task(pid, "true"), 0), &mut out);
    }
    let p = task(300, "bash");
    engine.push(
        generate(300.0, Signal::CHLD, &task(301, "ls").ppid(300), &p).ev(),
        &mut out,
    );
    assert_eq!(engine.stats().tracked_processes, 0, "buffered");
    engine.push(exit_code(400.0, &p, 0), &mut out);
    engine.finish(&mut out);
    assert!(out.is_empty(), "{out:#?}");
    let st = engine.stats();
    assert_eq!(st.tracked_processes, 0);
    assert_eq!(st.records_emitted, 0);
}

/// The per-process entry stays a small fixed-size struct. (The heap a tracked process costs
/// is measured, not computed, by `cargo xtask bench engine`.)
#[test]
fn per_process_state_stays_small() {
    assert!(std::mem::size_of::<Proc>() <= 32);
    let mut engine = Engine::new(EngineConfig::default());
    let mut out = Vec::new();
    for i in 0..100_000u32 {
        let parent = task(10_000 + i, "sh").init();
        let ev = generate(f64::from(i) * 0.001, Signal::CHLD, &task(1, "x"), &parent).ev();
        engine.push(ev, &mut out);
    }
    engine.advance(ns(10_000.0), &mut out);
    assert_eq!(engine.stats().tracked_processes, 100_000);
}

#[test]
fn process_stop_json_schema_and_round_trip() {
    let app = task(100, "app").init();
    let out = run(handled_runtime_term(&app, 0.1, 200.0));
    let s = stop_of(&out, 100);
    let v = serde_json::to_value(&s).unwrap_or_default();
    assert_eq!(v["type"], "process_stop");
    assert_eq!(v["time"], time(0.0));
    assert_eq!(v["diagnosis"], "graceful");
    assert_eq!(v["hint"], serde_json::Value::Null);
    assert_eq!(v["container"], serde_json::Value::Null);
    assert_eq!(v["signals"][0]["signal"], "SIGTERM");
    assert_eq!(v["signals"][0]["sender"]["comm"], "runc");
    assert_eq!(v["signals"][0]["result"], "delivered");
    assert_eq!(v["signals"][0]["disposition"], "handler");
    assert_eq!(v["signals"][0]["si_code"], 0);
    assert_eq!(v["exit"]["code"], 0);
    assert_eq!(v["exit"]["signal"], serde_json::Value::Null);
    assert_eq!(v["dispositions"]["SIGTERM"], "handler");
    for key in [
        "pid",
        "ns_pid",
        "comm",
        "ppid",
        "cgroup_id",
        "ns_init",
        "forwarded",
        "duration_s",
        "grace_s",
        "killed",
        "overrun",
        "overrun_s",
        "near_overrun",
        "complete",
        "incomplete_reason",
    ] {
        assert!(v.get(key).is_some(), "missing {key}");
    }
    let line = serde_json::to_string(&s).unwrap_or_default();
    let back: ProcessStop = serde_json::from_str(&line).expect("round trip");
    assert_eq!(back, s);
    // Timeline lines carry their own type and read well.
    let Some(Output::Timeline(first)) = out.first() else {
        panic!("timeline first")
    };
    let tv = serde_json::to_value(first).unwrap_or_default();
    assert_eq!(
        (tv["type"].as_str(), tv["what"].as_str()),
        (Some("timeline"), Some("generate"))
    );
    let line = crate::output::timeline_line(first);
    assert!(line.starts_with(&time(0.0)[11..23]), "{line}");
    assert!(
        line.ends_with("SIGTERM  runc(60) → app(100)  delivered, handler"),
        "{line}"
    );
    let _ = SigResult::Delivered;
}

#[test]
fn late_events_about_a_dead_process_open_nothing() {
    let app = task(100, "app");
    let mut engine = Engine::new(EngineConfig::default());
    let mut out = Vec::new();
    for ev in [
        generate(0.0, TERM, &runc_term(), &app)
            .handles(&[TERM])
            .ev(),
        deliver(0.1, TERM, &app, Handler),
        exit_code(100.0, &app, 0),
        // After its death (during the settle time): no new episode.
        generate(101.0, KILL, &runc_kill(), &app).ev(),
    ] {
        engine.push(ev, &mut out);
    }
    engine.advance(ns(1000.0), &mut out);
    assert_eq!(stops(&out).len(), 1);
    // Long after the record: a late duplicate delivery and a stale stop signal.
    engine.push(deliver(50.0, TERM, &app, Handler), &mut out);
    engine.push(generate(60.0, INT, &runc_term(), &app).ev(), &mut out);
    engine.finish(&mut out);
    let recs = stops(&out);
    assert_eq!(recs.len(), 1, "{recs:#?}");
    assert_eq!(recs[0].diagnosis, Diagnosis::Graceful);
    assert!(!recs[0].killed);
    let st = engine.stats();
    assert_eq!((st.late_events, st.tracked_processes), (2, 0));
}

#[test]
fn non_stop_signals_to_ordinary_processes_keep_no_state() {
    let mut engine = Engine::new(EngineConfig::default());
    let mut out = Vec::new();
    for i in 0..100u32 {
        let parent = task(2000 + i, "bash");
        let child = task(3000 + i, "ls").ppid(2000 + i);
        engine.push(
            generate(f64::from(i), Signal::CHLD, &child, &parent).ev(),
            &mut out,
        );
    }
    engine.advance(ns(1000.0), &mut out);
    assert_eq!(engine.stats().tracked_processes, 0);
    assert!(out.is_empty());
}

#[test]
fn records_do_not_depend_on_the_timeline() {
    let events = busy_stream();
    let run = |timeline: bool| {
        let mut engine = Engine::new(EngineConfig {
            timeline,
            ..EngineConfig::default()
        });
        let mut out = Vec::new();
        for ev in events.clone() {
            engine.push(ev, &mut out);
        }
        engine.finish(&mut out);
        out
    };
    let with = run(true);
    let without = run(false);
    assert!(with.iter().any(|o| matches!(o, Output::Timeline(_))));
    assert!(!without.iter().any(|o| matches!(o, Output::Timeline(_))));
    let records: Vec<&Output> = with
        .iter()
        .filter(|o| !matches!(o, Output::Timeline(_)))
        .collect();
    assert!(!records.is_empty());
    assert_eq!(records, without.iter().collect::<Vec<_>>());
}

#[test]
fn a_flood_of_handled_stop_signals_fills_the_list_once() {
    // 100 SIGTERMs, each handled: the record lists the first 64, every one with its
    // delivery; the later deliveries find their generation unlisted and add nothing; the
    // cap is said once. Then a SIGINT that was never generated (its delivery alone) is
    // past the cap too.
    let app = task(100, "app");
    let sender = task(7, "kill");
    let mut events = Vec::new();
    for i in 0..100 {
        let ms = f64::from(i) * 2.0;
        events.push(generate(ms, TERM, &sender, &app).handles(&[TERM]).ev());
        events.push(deliver(ms + 1.0, TERM, &app, Handler));
    }
    events.push(deliver(250.0, INT, &app, Handler));
    events.push(exit_code(300.0, &app, 0));
    let s = stop_of(&run(events), 100);
    assert_eq!(s.signals.len(), crate::engine::episode::MAX_SIGNALS);
    for (i, sig) in s.signals.iter().enumerate() {
        assert_eq!(
            sig.delivered_at.map(|t| t.to_string()),
            Some(time(i as f64 * 2.0 + 1.0)),
            "signal {i}"
        );
    }
    assert_eq!(
        s.incomplete_reason.as_deref(),
        Some("more than 64 signals; later ones are not listed")
    );
}

#[test]
fn a_delivery_matches_the_oldest_undelivered_generation_of_its_signal() {
    // Two SIGTERMs pending (the second ALREADY_PENDING), one SIGINT: the SIGINT delivery
    // and then one SIGTERM delivery; the first SIGTERM is the delivered one.
    let app = task(100, "app");
    let sender = task(7, "kill");
    let events = vec![
        generate(0.0, TERM, &sender, &app)
            .handles(&[TERM, INT])
            .ev(),
        generate(1.0, TERM, &sender, &app)
            .handles(&[TERM, INT])
            .result(SigResult::AlreadyPending)
            .ev(),
        generate(2.0, INT, &sender, &app).handles(&[TERM, INT]).ev(),
        deliver(3.0, INT, &app, Handler),
        deliver(4.0, TERM, &app, Handler),
        exit_code(10.0, &app, 0),
    ];
    let s = stop_of(&run(events), 100);
    let delivered: Vec<_> = s
        .signals
        .iter()
        .map(|e| e.delivered_at.map(|t| t.to_string()))
        .collect();
    assert_eq!(delivered, vec![Some(time(4.0)), None, Some(time(3.0))]);
}
