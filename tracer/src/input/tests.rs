//! Tests of the one road: record lines, their nodes, the selection and what is skipped.
use super::*;
use crate::engine::tests::{handled_runtime_term, run, task};
use crate::event::WallTime;
use crate::report::records;

/// JSON lines of one host process stop (the S1 record), as `run --json` prints them.
pub(crate) fn s1_line(node: &str) -> String {
    let out = run(handled_runtime_term(&task(100, "app"), 1.0, 1200.0));
    let rec = out
        .iter()
        .find(|o| matches!(o, Output::ProcessStop(_)))
        .expect("a record");
    let mut v = serde_json::to_value(rec).unwrap();
    v["node"] = node.into();
    v.to_string()
}

pub(crate) fn read_text(text: &str, inputs: &Inputs) -> (records::Collector, Reading) {
    let mut reading = Reading::default();
    let mut sel = Selected::new(
        inputs.filter.clone(),
        inputs.window,
        records::Collector::new("unknown"),
    );
    read_lines(text.as_bytes(), "test input", &mut sel, &mut reading).unwrap();
    (sel.sink.finish(), reading)
}

#[test]
fn record_lines_with_prefixes_and_noise_are_merged_by_node() {
    let a = s1_line("node-a");
    let b = s1_line("node-b");
    let text = format!(
        "[pod/sigtrace-a/sigtrace] {a}\n{a}\nnot a record\n[pod/x/y] {{\"type\":\"other\"}}\n\n{b}\n{{broken json\n"
    );
    let (c, reading) = read_text(&text, &Inputs::default());
    // a twice (with and without its prefix): one stop; b on another node: another.
    assert_eq!(c.stops.len(), 2);
    assert_eq!(c.duplicates, 1);
    let mut nodes: Vec<&str> = c.stops.iter().map(|s| s.node.as_str()).collect();
    nodes.sort();
    assert_eq!(nodes, ["node-a", "node-b"]);
    assert_eq!(
        reading.notes,
        ["test input: 3 line(s) that are not sigtrace records were skipped"]
    );
    let s = &c.stops[0];
    assert_eq!(
        (s.kind, s.label.as_str()),
        (records::StopKind::Process, "app[100]")
    );
    assert_eq!(s.diagnosis, crate::engine::Diagnosis::Graceful);
    assert!(s
        .marks
        .iter()
        .any(|m| m.signal == crate::event::Signal::TERM && m.sender == "runc"));
}

#[test]
fn a_line_that_is_not_utf8_is_skipped_and_counted() {
    let mut bytes = b"\xff\xfe{\"type\":\"process_stop\"}\n".to_vec();
    bytes.extend_from_slice(s1_line("n").as_bytes());
    let inputs = Inputs::default();
    let mut reading = Reading::default();
    let mut sel = Selected::new(
        inputs.filter.clone(),
        inputs.window,
        records::Collector::new("unknown"),
    );
    read_lines(&bytes[..], "test input", &mut sel, &mut reading).unwrap();
    assert_eq!(sel.sink.finish().stops.len(), 1);
    assert_eq!(
        reading.notes,
        ["test input: 1 line(s) that are not sigtrace records were skipped"]
    );
}

#[test]
fn a_killed_stop_has_its_deadline_at_the_escalation_and_a_graceful_one_none() {
    use crate::engine::tests::{deliver, exit_signal, generate, runc_kill, runc_term, wall};
    use crate::event::{Disposition, Signal};
    let app = task(100, "app");
    let out = run(vec![
        generate(0.0, Signal::TERM, &runc_term(), &app)
            .handles(&[Signal::TERM])
            .ev(),
        deliver(0.1, Signal::TERM, &app, Disposition::Handler),
        generate(2000.0, Signal::KILL, &runc_kill(), &app).ev(),
        exit_signal(2000.5, &app, Signal::KILL),
    ]);
    let mut c = records::Collector::new("n");
    for o in &out {
        c.record(o);
    }
    let s = &c.finish().stops[0];
    assert!(s.killed);
    assert_eq!(s.deadline_us, Some(wall(2000.0) / 1000));
    assert_eq!(s.diagnosis, crate::engine::Diagnosis::SlowHandler);
    let graceful = &read_text(&s1_line("n"), &Inputs::default()).0.stops[0];
    assert_eq!(graceful.deadline_us, None);
}

#[test]
fn window_and_filters_select_record_lines() {
    let a = s1_line("n");
    let start = serde_json::from_str::<serde_json::Value>(&a).unwrap()["time"]
        .as_str()
        .and_then(WallTime::parse)
        .unwrap()
        .micros()
        * 1000;
    let later = Inputs {
        window: Window {
            since: Some(start + 1),
            until: None,
        },
        ..Inputs::default()
    };
    assert!(read_text(&a, &later).0.stops.is_empty());
    let covering = Inputs {
        window: Window {
            since: Some(start),
            until: Some(start + 1),
        },
        ..Inputs::default()
    };
    assert_eq!(read_text(&a, &covering).0.stops.len(), 1);
    // A host process has no namespace: a namespace filter drops it.
    let ns = Inputs {
        filter: RecordFilter {
            namespaces: vec!["shop".into()],
            ..Default::default()
        },
        ..Inputs::default()
    };
    assert!(read_text(&a, &ns).0.stops.is_empty());
}

/// Latin-1 text, random bytes and an over-long line among good records: the good records are
/// read, the others skipped and counted, and the long line is never held whole.
#[test]
fn bad_bytes_and_an_over_long_line_are_skipped_and_counted() {
    let good = s1_line("n");
    let mut bytes = Vec::new();
    bytes.extend_from_slice(b"caf\xe9 cr\xe8me\n");
    bytes.extend_from_slice(good.as_bytes());
    bytes.push(b'\n');
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    for _ in 0..3000 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        bytes.push((seed & 0xff) as u8);
    }
    bytes.push(b'\n');
    bytes.extend_from_slice(
        format!(
            "{{\"type\":\"process_stop\",\"x\":\"{}\"}}\n",
            "a".repeat(5000)
        )
        .as_bytes(),
    );
    bytes.extend_from_slice(s1_line("m").as_bytes());
    let inputs = Inputs::default();
    let mut reading = Reading::default();
    let mut sel = Selected::new(
        inputs.filter.clone(),
        inputs.window,
        records::Collector::new("unknown"),
    );
    // A small bound, so that the test needs no 16 MiB line.
    read_lines_max(&mut &bytes[..], "test input", &mut sel, &mut reading, 4096).unwrap();
    let c = sel.sink.finish();
    let mut nodes: Vec<&str> = c.stops.iter().map(|s| s.node.as_str()).collect();
    nodes.sort();
    assert_eq!(nodes, ["m", "n"]);
    assert_eq!(reading.notes.len(), 2, "{:?}", reading.notes);
    assert!(
        reading.notes[0].contains("line(s) that are not sigtrace records"),
        "{:?}",
        reading.notes
    );
    assert_eq!(
        reading.notes[1],
        "test input: 1 line(s) longer than 4096 bytes were skipped"
    );
}

#[test]
fn a_bounded_line_read_keeps_what_fits_and_drops_the_rest() {
    let mut input = &b"short\nthis line is too long\nlast"[..];
    let mut buf = Vec::new();
    assert_eq!(
        read_line_bounded(&mut input, &mut buf, 8).unwrap(),
        Some(true)
    );
    assert_eq!(buf, b"short\n");
    assert_eq!(
        read_line_bounded(&mut input, &mut buf, 8).unwrap(),
        Some(false)
    );
    assert!(buf.is_empty());
    assert_eq!(
        read_line_bounded(&mut input, &mut buf, 8).unwrap(),
        Some(true)
    );
    assert_eq!(buf, b"last");
    assert_eq!(read_line_bounded(&mut input, &mut buf, 8).unwrap(), None);
}
