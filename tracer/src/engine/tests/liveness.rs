//! The edges of a trace: stops whose process is gone without a traced exit
//! ([`Engine::exit_not_seen`]) are closed without a record, counted, and never closed while the
//! exit waits in the reorder window; a stop signal delivered just after the trace started,
//! its generation unseen, began before the trace ([`Engine::trace_started`]).
use super::*;
use crate::engine::Diagnosis;
use crate::event::Disposition::*;

#[test]
fn a_stop_whose_exit_was_never_traced_is_closed_without_a_record() {
    let app = task(300, "app");
    let other = task(301, "other");
    let mut engine = Engine::new(EngineConfig::default());
    let mut out = Vec::new();
    for ev in [
        generate(0.0, TERM, &runc_term(), &app)
            .handles(&[TERM])
            .ev(),
        deliver(0.2, TERM, &app, Handler),
        generate(1.0, TERM, &runc_term(), &other)
            .handles(&[TERM])
            .ev(),
        deliver(1.2, TERM, &other, Handler),
    ] {
        engine.push(ev, &mut out);
    }
    engine.advance(ns(20_000.0), &mut out);
    assert_eq!(engine.open_since(ns(0.5)), vec![(300, app.start_ns)]);
    // Another start time is another process: nothing closed.
    assert!(!engine.exit_not_seen(300, app.start_ns + 1, &mut out));
    assert!(engine.exit_not_seen(300, app.start_ns, &mut out));
    assert!(!engine.exit_not_seen(300, app.start_ns, &mut out));
    engine.finish(&mut out);
    let s = stops(&out);
    assert_eq!(
        s.len(),
        1,
        "only the other stop, at the end of the trace: {s:#?}"
    );
    assert_eq!(s[0].pid, 301);
    let ev = engine.stats().evictions;
    assert_eq!(ev.exit_not_seen, 1);
}

#[test]
fn a_stop_whose_exit_waits_in_the_reorder_window_is_not_closed() {
    let app = task(310, "app");
    let mut engine = Engine::new(EngineConfig::default());
    let mut out = Vec::new();
    engine.push(
        generate(0.0, TERM, &runc_term(), &app)
            .handles(&[TERM])
            .ev(),
        &mut out,
    );
    engine.push(deliver(0.2, TERM, &app, Handler), &mut out);
    engine.advance(ns(5_000.0), &mut out);
    // The exit arrives, still buffered (no advance after it).
    engine.push(exit_code(5_000.0, &app, 0), &mut out);
    assert!(!engine.exit_not_seen(310, app.start_ns, &mut out));
    engine.finish(&mut out);
    assert_eq!(stop_of(&out, 310).diagnosis, Diagnosis::Graceful);
}

#[test]
fn a_delivery_just_after_the_trace_started_began_before_it() {
    let early = task(320, "early");
    let late = task(321, "late");
    let mut engine = Engine::new(EngineConfig::default());
    engine.trace_started(ns(100.0));
    let mut out = Vec::new();
    for ev in [
        // Generated before the trace (dropped by the reader), delivered 0.4 ms into it.
        deliver(100.4, TERM, &early, Default),
        exit_signal(100.5, &early, TERM),
        // A second later, a delivery without its generation is a loss: reported, incomplete.
        deliver(1_200.0, TERM, &late, Handler),
        exit_code(1_300.0, &late, 0),
    ] {
        engine.push(ev, &mut out);
    }
    engine.finish(&mut out);
    let s = stops(&out);
    assert_eq!(s.len(), 1, "{s:#?}");
    assert_eq!((s[0].pid, s[0].complete), (321, false));
    assert_eq!(engine.stats().evictions.began_before_trace, 1);
}
