//! Post-mortems: `sigtrace report` (a self-contained HTML file) and `sigtrace summary` (a
//! terminal table), over journals (through the same engine as `replay`) and over JSON-lines
//! records of `run --json` from any number of nodes (`--records FILE`, `-` for stdin).
//!
//! Both roads end in [`Output`]s: a journal's are the engine's; a record line is deserialised
//! back into the record type its `"type"` names. So the filters (`--namespace`, `--pod`,
//! `--workload`, `--container`, `--diagnosis`) and the window (`--since`/`--until`, on a record's
//! start) select alike, whatever the input. Records are merged and deduplicated by node and
//! identity ([`records::Collector`]).
pub mod html;
pub mod records;

use std::io::BufRead;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::driver::{drive, OnBadInput};
use crate::engine::{Engine, EngineConfig, Output};
use crate::event::WallTime;
use crate::filter::RecordFilter;
use crate::journal::{JournalReader, ReaderOptions};
use crate::output::OutputSink;
use crate::pipeline::{Pipeline, Window};

/// Where the stops come from, and which are wanted.
#[derive(Clone, Debug, Default)]
pub struct Inputs {
    /// Journal files or directories.
    pub journals: Vec<PathBuf>,
    /// JSON-lines files of records (`-`: standard input).
    pub records: Vec<PathBuf>,
    pub window: Window,
    pub strict: bool,
    pub filter: RecordFilter,
    pub engine: EngineConfig,
}

/// What reading the inputs skipped, for the report's notes and stderr.
#[derive(Clone, Debug, Default)]
pub struct Reading {
    pub notes: Vec<String>,
}

/// The start of a record, for the window.
fn record_start(o: &Output) -> Option<i64> {
    let t = match o {
        Output::ProcessStop(p) => p.time,
        Output::ContainerStop(c) => c.started,
        Output::PodStop(p) => p.started,
        Output::Timeline(t) => t.time,
    };
    Some(t.micros().saturating_mul(1000))
}

/// The part of a record line that says what it is and where it comes from.
#[derive(serde::Deserialize)]
struct LineHead {
    #[serde(rename = "type")]
    kind: String,
    node: Option<String>,
}

/// A record line (from its first `{`) back into its record type, with its node: `None` for
/// what is not a sigtrace stop record.
pub fn output_of(line: &str) -> Option<(Output, Option<String>)> {
    let json = &line[line.find('{')?..];
    let head: LineHead = serde_json::from_str(json).ok()?;
    let out = match head.kind.as_str() {
        "process_stop" => Output::ProcessStop(serde_json::from_str(json).ok()?),
        "container_stop" => Output::ContainerStop(serde_json::from_str(json).ok()?),
        "pod_stop" => Output::PodStop(serde_json::from_str(json).ok()?),
        _ => return None,
    };
    Some((out, head.node))
}

/// The host name of the first journal session under `paths` (the node a journal's records
/// come from).
pub fn journal_node(paths: &[PathBuf]) -> Option<String> {
    let mut reader = JournalReader::new(paths.iter(), ReaderOptions { strict: false });
    for _ in 0..64 {
        match reader.next_item()? {
            Ok(_) => {
                if let Some(s) = reader.session() {
                    return Some(s.hostname.clone());
                }
            }
            Err(_) => continue,
        }
    }
    None
}

/// A sink that also learns each record's node (JSON records carry one).
pub trait NodeSink: OutputSink {
    fn set_node(&mut self, _node: &str) {}
}

impl NodeSink for crate::summary::Summary {}

impl NodeSink for records::Collector {
    fn set_node(&mut self, node: &str) {
        self.node = node.to_string();
    }
}

/// Feeds every selected stop of `inputs` to `sink`; returns it with what was skipped.
pub fn read<S: NodeSink>(inputs: &Inputs, mut sink: S) -> Result<(S, Reading)> {
    let mut reading = Reading::default();
    if !inputs.journals.is_empty() {
        let node = journal_node(&inputs.journals).unwrap_or_else(|| "unknown".into());
        sink.set_node(&node);
        let mut reader = JournalReader::new(
            inputs.journals.iter(),
            ReaderOptions {
                strict: inputs.strict,
            },
        );
        let mut pipeline = Pipeline::new(
            Engine::new(inputs.engine.clone()),
            Selected { inputs, sink },
        )
        .with_window(inputs.window)
        // Each session's records as its live run shaped them (report and summary take no
        // engine flags).
        .with_recorded_shaping(crate::pipeline::Keep::default());
        let on_bad = if inputs.strict {
            OnBadInput::Fail
        } else {
            OnBadInput::ReportEach
        };
        let driven = drive(&mut reader, &mut pipeline, on_bad)?;
        let stats = reader.stats();
        if driven.skipped > 0 {
            reading.notes.push(format!(
                "journal: {} corrupt or unreadable record(s) skipped (details on stderr)",
                driven.skipped
            ));
        }
        if stats.records == 0 {
            reading.notes.push(format!(
                "no journal records found in {}",
                inputs
                    .journals
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        sink = pipeline.into_sink().sink;
    }
    for path in &inputs.records {
        let what = path.display().to_string();
        let mut selected = Selected { inputs, sink };
        if path == Path::new("-") {
            read_lines(
                std::io::stdin().lock(),
                "standard input",
                &mut selected,
                &mut reading,
            )?;
        } else {
            let f = std::fs::File::open(path).with_context(|| format!("opening {what}"))?;
            read_lines(
                std::io::BufReader::new(f),
                &what,
                &mut selected,
                &mut reading,
            )?;
        }
        sink = selected.sink;
    }
    Ok((sink, reading))
}

fn read_lines<S: NodeSink>(
    input: impl BufRead,
    what: &str,
    sink: &mut Selected<'_, S>,
    reading: &mut Reading,
) -> Result<()> {
    let mut skipped = 0u64;
    let mut input = input;
    let mut buf = Vec::new();
    for n in 1.. {
        buf.clear();
        let read = input
            .read_until(b'\n', &mut buf)
            .with_context(|| format!("reading {what} at line {n}"))?;
        if read == 0 {
            break;
        }
        // A line that is not UTF-8, not JSON or not a record is skipped and counted. A log
        // prefix (`kubectl logs --prefix`: "[pod/name/container] ") may come before a record.
        let line = std::str::from_utf8(&buf).unwrap_or("");
        let Some((out, node)) = output_of(line) else {
            skipped += u64::from(!buf.trim_ascii().is_empty());
            continue;
        };
        if let Some(node) = node {
            sink.sink.set_node(&node);
        }
        sink.output(&out)?;
    }
    if skipped > 0 {
        reading.notes.push(format!(
            "{what}: {skipped} line(s) that are not sigtrace records were skipped"
        ));
    }
    Ok(())
}

/// The filter and the window in front of a sink.
struct Selected<'a, S> {
    inputs: &'a Inputs,
    sink: S,
}

impl<S: NodeSink> OutputSink for Selected<'_, S> {
    fn output(&mut self, o: &Output) -> std::io::Result<()> {
        if matches!(o, Output::Timeline(_)) || !self.inputs.filter.keeps(o) {
            return Ok(());
        }
        if let Some(t) = record_start(o) {
            if !self.inputs.window.contains(t) {
                return Ok(());
            }
        }
        self.sink.output(o)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.sink.flush()
    }
}

/// `sigtrace report`: writes the HTML file; returns how many stops it shows.
pub fn report(inputs: &Inputs, title: &str, out: &Path) -> Result<usize> {
    let (collector, reading) = read(inputs, records::Collector::new("unknown"))?;
    let collector = collector.finish();
    let mut notes = reading.notes;
    if collector.duplicates > 0 {
        notes.push(format!(
            "{} record(s) seen more than once (overlapping inputs) were merged",
            collector.duplicates
        ));
    }
    for n in &notes {
        eprintln!("sigtrace: {n}");
    }
    let page = html::Page {
        title,
        stops: &collector.stops,
        notes: &notes,
    };
    std::fs::write(out, page.render()).with_context(|| format!("writing {}", out.display()))?;
    Ok(collector.stops.len())
}

/// A default title: the window the report covers.
pub fn default_title(window: &Window) -> String {
    let t = |ns: i64| WallTime::from_ns(ns).to_string();
    match (window.since, window.until) {
        (Some(a), Some(b)) => format!("sigtrace: stops from {} to {}", t(a), t(b)),
        (Some(a), None) => format!("sigtrace: stops since {}", t(a)),
        (None, Some(b)) => format!("sigtrace: stops until {}", t(b)),
        (None, None) => "sigtrace: stops".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::tests::{handled_runtime_term, run, task};

    /// JSON lines of one host process stop (the S1 record), as `run --json` prints them.
    fn s1_line(node: &str) -> String {
        let out = run(handled_runtime_term(&task(100, "app"), 1.0, 1200.0));
        let rec = out
            .iter()
            .find(|o| matches!(o, Output::ProcessStop(_)))
            .expect("a record");
        let mut v = serde_json::to_value(rec).unwrap();
        v["node"] = node.into();
        v.to_string()
    }

    fn read_text(text: &str, inputs: &Inputs) -> (records::Collector, Reading) {
        let mut reading = Reading::default();
        let mut sel = Selected {
            inputs,
            sink: records::Collector::new("unknown"),
        };
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
        let mut sel = Selected {
            inputs: &inputs,
            sink: records::Collector::new("unknown"),
        };
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

    #[test]
    fn the_page_is_self_contained_and_has_a_lane_per_stop() {
        let text = format!("{}\n{}\n", s1_line("node-a"), s1_line("node-b"));
        let (c, _) = read_text(&text, &Inputs::default());
        let notes = vec!["a note <with> markup".to_string()];
        let html = html::Page {
            title: "t & t",
            stops: &c.stops,
            notes: &notes,
        }
        .render();
        assert_eq!(html.matches("<g class=\"lane\"").count(), 2);
        assert!(html.contains("<title>t &amp; t</title>"));
        assert!(html.contains("a note &lt;with&gt; markup"));
        assert!(html.contains("Content-Security-Policy"));
        assert!(!html.contains("src=\"http") && !html.contains("href=\"http"));
        for d in crate::engine::Diagnosis::ALL {
            assert!(html.contains(&format!("data-diagnosis=\"{}\"", d.as_str())));
        }
        // Both bars: 1.2 s each, same width.
        let widths: Vec<&str> = html
            .match_indices("class=\"bar t\"")
            .map(|(i, _)| {
                let tag = &html[i..i + html[i..].find('>').unwrap()];
                tag.split(" width=\"")
                    .nth(1)
                    .unwrap()
                    .split('"')
                    .next()
                    .unwrap()
            })
            .collect();
        assert_eq!(widths.len(), 2);
        assert_eq!(widths[0], widths[1]);
    }

    #[test]
    fn an_empty_selection_still_renders() {
        let html = html::Page {
            title: "empty",
            stops: &[],
            notes: &[],
        }
        .render();
        assert!(html.contains("<b data-stops=\"0\">0</b> stops"));
        assert!(html.contains("Nothing: every stop was graceful"));
    }
}
