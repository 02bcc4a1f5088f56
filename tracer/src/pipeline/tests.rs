//! Tests of the pipeline: metrics of extra stop signals, sessions a replay reads.
use tracer_common::{kind, Header, ProcessExit, SignalDeliver, SignalGenerate, TaskInfo};

use super::*;
use crate::{
    decode::encode,
    driver::{drive, OnBadInput, Source},
    engine::EngineConfig,
    event::Signal,
    metrics::MetricsOptions,
    output::{Format, Printer},
};

/// Kernel records handed out as the live source would.
struct Records(Vec<Vec<u8>>, usize);

impl Source for Records {
    fn next(&mut self) -> Option<Result<Input<'_>, anyhow::Error>> {
        self.1 += 1;
        Some(Ok(Input::Kernel(self.0.get(self.1 - 1)?, None)))
    }
}

fn task(pid: u32, comm: &str) -> TaskInfo {
    let mut t = TaskInfo {
        tgid: pid,
        tid: pid,
        ppid: 1,
        ns_pid: pid,
        start_ns: u64::from(pid),
        ..Default::default()
    };
    t.comm[..comm.len()].copy_from_slice(comm.as_bytes());
    t
}

/// A runtime sends `sig` to a process that handles it and exits 0.
fn handled_stop(sig: i32) -> Vec<Vec<u8>> {
    let header = |kind, ms: u64| Header {
        kind,
        cpu: 0,
        ts_ns: 1_000_000_000 + ms * 1_000_000,
    };
    let app = task(100, "app");
    vec![
        encode(&KernelRecord::Generate(SignalGenerate {
            header: header(kind::SIGNAL_GENERATE, 0),
            sig,
            sender: task(60, "runc"),
            target: app,
            disp: [2, 0, 0, 0, 0, 0, 0, 0],
            ..Default::default()
        })),
        encode(&KernelRecord::Deliver(SignalDeliver {
            header: header(kind::SIGNAL_DELIVER, 1),
            sig,
            receiver: app,
            sa_handler: 0x4000,
            ..Default::default()
        })),
        encode(&KernelRecord::Exit(ProcessExit {
            header: header(kind::PROCESS_EXIT, 200),
            task: app,
            exit_code: 0,
            group_dead: 1,
        })),
    ]
}

/// The metrics exposition after driving `records` through a pipeline with `stop_signals`.
fn metrics_after(stop_signals: &[Signal], records: Vec<Vec<u8>>) -> String {
    let metrics = Arc::new(
        Metrics::new(MetricsOptions {
            drop_pod: false,
            max_series: 10,
            version: "test".into(),
            kernel: "test".into(),
            node: "test".into(),
        })
        .expect("metrics"),
    );
    let engine = Engine::new(EngineConfig {
        extra_stop_signals: stop_signals.to_vec(),
        ..EngineConfig::default()
    });
    let printer = Printer::new(Vec::new(), Format::Json, false);
    let mut pipeline = Pipeline::new(engine, printer)
        .with_clock(Clock { offset_ns: 0 })
        .with_metrics(metrics.clone());
    let driven = drive(&mut Records(records, 0), &mut pipeline, OnBadInput::Fail).expect("drive");
    assert_eq!(driven.skipped, 0);
    metrics.encode()
}

/// Two recorded sessions, as a replay reads them.
enum Step {
    Session(crate::journal::SessionInfo),
    Kernel(Vec<u8>),
    Gone(Gone),
}

struct Steps(Vec<Step>, usize);

impl Source for Steps {
    fn next(&mut self) -> Option<Result<Input<'_>, anyhow::Error>> {
        self.1 += 1;
        Some(Ok(match self.0.get(self.1 - 1)? {
            Step::Session(s) => Input::Session(s),
            Step::Kernel(k) => Input::Kernel(k, Some(Clock { offset_ns: 0 })),
            Step::Gone(g) => Input::Gone(*g),
        }))
    }
}

/// The JSON records of a stop whose exit is in a second session, which resumed the first
/// (`resumed`) or not.
fn across_sessions(resumed: bool) -> Vec<serde_json::Value> {
    let session = |start: i64, resumed_at: Option<u64>| crate::journal::SessionInfo {
        started_wall_ns: start,
        boot_id: "b".into(),
        shaping: Some(Shaping {
            resumed_at_mono_ns: resumed_at,
            ..Shaping::default()
        }),
        ..Default::default()
    };
    let mut stop = handled_stop(15).into_iter();
    let steps = vec![
        Step::Session(session(1, None)),
        Step::Kernel(stop.next().unwrap()),
        Step::Kernel(stop.next().unwrap()),
        Step::Session(session(1, None)), // the same session's frame again
        Step::Session(session(2, resumed.then_some(1_100_000_000))),
        Step::Kernel(stop.next().unwrap()),
    ];
    let printer = Printer::new(Vec::new(), Format::Json, false);
    let mut pipeline = Pipeline::new(Engine::new(EngineConfig::default()), printer);
    drive(&mut Steps(steps, 0), &mut pipeline, OnBadInput::Fail).expect("drive");
    let out = pipeline.into_sink().into_inner();
    String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A session that resumed its predecessor carries its open stop on: one complete record,
/// marked; one that did not ends it with its own trace (no record spans two agents that
/// did not hand over).
#[test]
fn only_a_resumed_session_carries_open_stops_on() {
    let recs = across_sessions(true);
    assert_eq!(recs.len(), 1, "{recs:#?}");
    assert_eq!(recs[0]["complete"], true);
    assert_eq!(recs[0]["agent_restarted_during"], true);
    assert_eq!(recs[0]["exit"]["code"], 0);
    let recs = across_sessions(false);
    assert_eq!(recs.len(), 1, "{recs:#?}");
    assert_eq!(recs[0]["complete"], false);
    assert_eq!(
        recs[0]["incomplete_reason"],
        "still running when the trace ended"
    );
    assert!(recs[0].get("agent_restarted_during").is_none());
}

#[test]
fn a_stop_started_by_an_extra_stop_signal_is_counted() {
    let text = metrics_after(&[Signal::USR1], handled_stop(10));
    let usr1 = text
        .lines()
        .find(|l| l.starts_with("sigtrace_signals_total{") && l.contains(r#"signal="SIGUSR1""#));
    assert!(
        usr1.is_some_and(|l| l.contains(r#"result="delivered""#) && l.ends_with("} 1")),
        "{text}"
    );
    let stop =
        r#"sigtrace_process_stops_total{diagnosis="graceful",namespace="",outcome="exited"} 1"#;
    assert!(text.contains(stop), "{text}");
    // Without --stop-signal USR1, SIGUSR1 starts no stop and is no stop signal.
    let text = metrics_after(&[], handled_stop(10));
    assert!(!text.contains(r#"signal="SIGUSR1""#), "{text}");
    assert!(!text.contains("sigtrace_process_stops_total{"), "{text}");
}

#[test]
fn bad_kernel_records_are_skipped_and_counted() {
    let mut records = handled_stop(15);
    records.insert(1, vec![1, 2, 3]);
    let metrics_text = {
        let engine = Engine::new(EngineConfig::default());
        let mut pipeline = Pipeline::new(engine, Printer::new(Vec::new(), Format::Json, false))
            .with_clock(Clock { offset_ns: 0 });
        let driven = drive(
            &mut Records(records.clone(), 0),
            &mut pipeline,
            OnBadInput::ReportFirst,
        )
        .expect("drive");
        assert_eq!((driven.inputs, driven.skipped), (4, 1));
        assert_eq!(pipeline.decode_errors, 1);
        pipeline.into_sink().into_inner()
    };
    let lines = String::from_utf8(metrics_text).expect("UTF-8");
    assert!(lines.contains(r#""diagnosis":"graceful""#), "{lines}");
    let engine = Engine::new(EngineConfig::default());
    let mut pipeline = Pipeline::new(engine, Printer::new(Vec::new(), Format::Json, false))
        .with_clock(Clock { offset_ns: 0 });
    assert!(drive(&mut Records(records, 0), &mut pipeline, OnBadInput::Fail).is_err());
}

/// A recorded `Gone` (the live run found the process gone without a traced exit) closes the
/// stop in a replay as it did live: no record, where without it the replay would end the stop
/// as still running.
#[test]
fn a_recorded_gone_closes_the_stop_without_a_record() {
    let replay = |gone: bool| {
        let mut stop = handled_stop(15).into_iter();
        let mut steps = vec![
            Step::Session(crate::journal::SessionInfo::default()),
            Step::Kernel(stop.next().unwrap()),
            Step::Kernel(stop.next().unwrap()),
        ];
        if gone {
            steps.push(Step::Gone(Gone {
                pid: 100,
                start_ns: 100,
                mono_ns: 30_000_000_000,
            }));
        }
        let printer = Printer::new(Vec::new(), Format::Json, false);
        let mut pipeline = Pipeline::new(Engine::new(EngineConfig::default()), printer);
        drive(&mut Steps(steps, 0), &mut pipeline, OnBadInput::Fail).expect("drive");
        let out = pipeline.into_sink().into_inner();
        String::from_utf8(out).unwrap().lines().count()
    };
    assert_eq!(replay(false), 1);
    assert_eq!(replay(true), 0);
}
