//! Tests of the terminal and JSON printer: what a person sees, through the code that shows it.
use std::sync::Arc;

use super::*;
use crate::container::ContainerInfo;
use crate::engine::tests::{handled_runtime_term, run, task, time};

/// What the printer writes for the outputs of an S1 stream (runc's SIGTERM to a process that
/// handles it and exits 0 after 200 ms), in `format`.
fn printed(format: Format, containers_only: bool, container: Option<ContainerInfo>) -> String {
    let app = task(100, "app");
    let mut out = run(handled_runtime_term(&app, 1.0, 200.0));
    if let Some(c) = container {
        let c = Arc::new(c);
        for o in &mut out {
            match o {
                Output::Timeline(t) => t.container = Some(c.clone()),
                Output::ProcessStop(p) => p.container = Some(c.clone()),
                Output::ContainerStop(_) | Output::PodStop(_) => {}
            }
        }
    }
    let mut p = Printer::new(Vec::new(), format, containers_only);
    for o in &out {
        p.output(o).expect("write to a Vec");
    }
    String::from_utf8(p.out).expect("UTF-8")
}

fn web() -> ContainerInfo {
    ContainerInfo {
        id: "0123456789abcdef0123".into(),
        runtime: "containerd".into(),
        name: Some("web".into()),
        pod: Some("web-7d4b9c-x2x9z".into()),
        namespace: Some("shop".into()),
        ..Default::default()
    }
}

#[test]
fn timeline_lines_are_the_terminal_lines() {
    let text = printed(Format::Terminal { color: false }, false, None);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    // The clock column, the place column padded to 28, then what happened.
    let hhmmss = &time(0.0)[11..23];
    assert_eq!(
        lines[0],
        format!(
            "{hhmmss}  {:<28} SIGTERM  runc(60) → app(100)  delivered, handler",
            "host"
        )
    );
    assert!(lines[1].ends_with("SIGTERM  delivered to app(100) tid 100 → handler"));
    assert!(lines[2].ends_with("exit     app(100) exited 0 after 0.200s"));
    assert!(
        lines[3].contains("STOP app(100) stopped in 0.200s: exited 0  graceful"),
        "{}",
        lines[3]
    );
    // Every line of the timeline is what `timeline_line` renders.
    let app = task(100, "app");
    let out = run(handled_runtime_term(&app, 1.0, 200.0));
    let rendered: Vec<String> = out
        .iter()
        .filter_map(|o| match o {
            Output::Timeline(t) => Some(timeline_line(t)),
            _ => None,
        })
        .collect();
    assert_eq!(rendered, lines[..3]);
}

#[test]
fn containers_are_named_by_namespace_pod_and_name() {
    let text = printed(Format::Terminal { color: false }, false, Some(web()));
    for line in text.lines() {
        assert_eq!(
            &line[14..14 + 28],
            format!("{:<28}", "shop/web-7d4b9c-x2x9z/web"),
            "{line}"
        );
    }
    let bare = ContainerInfo {
        name: None,
        pod: None,
        namespace: None,
        ..web()
    };
    let text = printed(Format::Terminal { color: false }, false, Some(bare));
    assert!(text.lines().all(|l| l[14..].starts_with("0123456789ab ")));
}

#[test]
fn colour_only_when_asked() {
    let plain = printed(Format::Terminal { color: false }, false, None);
    assert!(!plain.contains('\x1b'), "{plain}");
    let coloured = printed(Format::Terminal { color: true }, false, None);
    let lines: Vec<&str> = coloured.lines().collect();
    // Timeline lines dim, the diagnosis in green, STOP in bold.
    assert!(lines[0].starts_with(DIM) && lines[0].ends_with(RESET));
    assert!(lines[3].contains(&format!("{BOLD}STOP{RESET}")));
    assert!(lines[3].contains(&format!("\x1b[32mgraceful{RESET}")));
    // The same text once the escapes are gone.
    let stripped: String = coloured
        .replace(DIM, "")
        .replace(BOLD, "")
        .replace(RESET, "")
        .replace("\x1b[32m", "");
    assert_eq!(stripped, plain);
}

#[test]
fn no_color_and_pipes_turn_colour_off() {
    // Test output is captured, so stdout is not a terminal here: never colour.
    assert_eq!(Format::detect(false), Format::Terminal { color: false });
    assert_eq!(Format::detect(true), Format::Json);
    // NO_COLOR wins even where a terminal would get colour.
    assert!(!Format::colour_for(true, Some("1".as_ref())));
    assert!(Format::colour_for(true, Some("".as_ref())));
    assert!(Format::colour_for(true, None));
    assert!(!Format::colour_for(false, None));
}

#[test]
fn containers_only_hides_host_processes() {
    assert_eq!(printed(Format::Terminal { color: false }, true, None), "");
    assert_eq!(printed(Format::Json, true, None), "");
    let text = printed(Format::Terminal { color: false }, true, Some(web()));
    assert_eq!(text.lines().count(), 4);
}

#[test]
fn json_is_one_record_per_line_without_timeline() {
    let text = printed(Format::Json, false, None);
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(lines.len(), 1, "{text}");
    assert_eq!(lines[0]["type"], "process_stop");
    assert_eq!(lines[0]["diagnosis"], "graceful");
}
