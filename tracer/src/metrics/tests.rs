//! Tests of the metrics: stops counted, label sets capped, totals that only go up.
use super::*;

fn metrics(max_series: usize) -> Metrics {
    Metrics::new(MetricsOptions {
        drop_pod: false,
        max_series,
        version: "t".into(),
        kernel: "k".into(),
        node: "n".into(),
    })
    .unwrap()
}

#[test]
fn counts_stops_and_caps_label_sets() {
    let m = metrics(1);
    let f = StopFacts {
        kind: "container",
        namespace: "ns",
        workload: "w",
        pod: "p",
        container: "c",
        diagnosis: Diagnosis::SlowHandler,
        outcome: "killed",
        duration_s: 2.1,
        overrun: true,
        overrun_s: 0.1,
    };
    m.stop(&f);
    m.stop(&StopFacts {
        container: "other",
        ..f.clone()
    });
    let text = m.encode();
    assert!(text.contains(r#"sigtrace_container_stops_total{container="c",diagnosis="slow_handler",namespace="ns",outcome="killed",pod="p",workload="w"} 1"#), "{text}");
    assert!(text.contains(
        r#"sigtrace_grace_overruns_total{container="c",namespace="ns",pod="p",workload="w"} 1"#
    ));
    assert!(!text.contains(r#"container="other""#));
    assert!(text.contains("sigtrace_label_sets_overflow_total 1"));
    assert!(text.contains(
        r#"sigtrace_stop_duration_seconds_bucket{kind="container",namespace="ns",workload="w",le="2.5"} 2"#
    ));
}

#[test]
fn health_totals_only_go_up() {
    let m = metrics(10);
    m.health(&Health {
        events_read: 10,
        events_lost: 2,
        ..Default::default()
    });
    m.health(&Health {
        events_read: 7,
        events_lost: 5,
        ..Default::default()
    });
    let text = m.encode();
    assert!(text.contains("sigtrace_events_read_total 10"));
    assert!(text.contains("sigtrace_events_lost_total 5"));
    assert!(text.contains(r#"sigtrace_build_info{kernel="k",node="n",version="t"} 1"#));
}
