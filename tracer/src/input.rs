//! The one road of `replay`, `report` and `summary`: where recorded stops come from and
//! which are wanted. Journals go through the same pipeline and engine as a live run (each
//! session shaped as it was recorded, unless the command line says otherwise); JSON-lines
//! records of `run --json` from any number of nodes (`--records FILE`, `-` for stdin) are
//! deserialised back into the record type their `"type"` names. Both end in [`Output`]s,
//! selected alike by one [`Selected`] (the filters and the window on a record's start) and
//! handed to a [`NodeSink`].
use std::io::BufRead;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::driver::{drive, OnBadInput};
use crate::engine::{Engine, EngineConfig, Output};
use crate::filter::{RecordFilter, Selected};
use crate::journal::{JournalReader, ReaderOptions};
use crate::output::OutputSink;
use crate::pipeline::{Keep, Pipeline, Window};

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
    /// The engine settings for journals; each recorded session's own apply except `keep`.
    pub engine: EngineConfig,
    pub keep: Keep,
}

/// What reading the inputs found and skipped.
#[derive(Clone, Debug, Default)]
pub struct Reading {
    /// What was skipped, one line each (for stderr and the report's notes).
    pub notes: Vec<String>,
    /// Journal records read.
    pub journal_records: u64,
}

impl Reading {
    /// "no journal records found in …" when journals were given and held none.
    pub fn empty_journals(&self, inputs: &Inputs) -> Option<String> {
        (!inputs.journals.is_empty() && self.journal_records == 0).then(|| {
            format!(
                "no journal records found in {}",
                inputs
                    .journals
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
    }
}

/// A sink that also learns each record's node (a journal's host, a record line's `node`).
pub trait NodeSink: OutputSink {
    fn set_node(&mut self, _node: &str) {}
}

impl NodeSink for crate::summary::Summary {}

impl NodeSink for crate::report::records::Collector {
    fn set_node(&mut self, node: &str) {
        self.node = node.to_string();
    }
}

impl<W: std::io::Write> NodeSink for crate::output::Printer<W> {
    fn set_node(&mut self, node: &str) {
        self.set_node(Some(node.to_string()));
    }
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

/// Feeds every selected output of `inputs` to `sink`; returns it with what was read and
/// skipped.
pub fn read<S: NodeSink>(inputs: &Inputs, sink: S) -> Result<(S, Reading)> {
    let mut reading = Reading::default();
    let mut selected = Selected::new(inputs.filter.clone(), inputs.window, sink);
    if !inputs.journals.is_empty() {
        selected = read_journals(inputs, selected, &mut reading)?;
    }
    for path in &inputs.records {
        if path == Path::new("-") {
            read_lines(
                std::io::stdin().lock(),
                "standard input",
                &mut selected,
                &mut reading,
            )?;
        } else {
            let what = path.display().to_string();
            let f = std::fs::File::open(path).with_context(|| format!("opening {what}"))?;
            read_lines(
                std::io::BufReader::new(f),
                &what,
                &mut selected,
                &mut reading,
            )?;
        }
    }
    Ok((selected.sink, reading))
}

fn read_journals<S: NodeSink>(
    inputs: &Inputs,
    mut selected: Selected<S>,
    reading: &mut Reading,
) -> Result<Selected<S>> {
    let node = journal_node(&inputs.journals).unwrap_or_else(|| "unknown".into());
    selected.sink.set_node(&node);
    let mut reader = JournalReader::new(
        inputs.journals.iter(),
        ReaderOptions {
            strict: inputs.strict,
        },
    );
    let mut pipeline = Pipeline::new(Engine::new(inputs.engine.clone()), selected)
        .with_window(inputs.window)
        .with_recorded_shaping(inputs.keep);
    let on_bad = if inputs.strict {
        OnBadInput::Fail
    } else {
        OnBadInput::ReportEach
    };
    let driven = drive(&mut reader, &mut pipeline, on_bad)?;
    let stats = reader.stats();
    tracing::debug!("replayed {stats:?}");
    reading.journal_records = stats.records;
    if driven.skipped > 0 {
        reading.notes.push(format!(
            "journal: {} corrupt or unreadable record(s) skipped (details on stderr)",
            driven.skipped
        ));
    }
    Ok(pipeline.into_sink())
}

/// The longest record line read (a pod record with many containers is well under it); a
/// longer line is skipped and counted, and never held whole in memory.
pub const MAX_LINE_BYTES: usize = 16 << 20;

/// Reads one line (with its newline) into `buf`, at most `max` bytes of it: `Ok(None)` at the
/// end of the input, `Ok(Some(false))` for a line longer than `max` (its bytes are consumed and
/// dropped, `buf` is left empty), `Ok(Some(true))` otherwise.
fn read_line_bounded(
    input: &mut impl BufRead,
    buf: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<Option<bool>> {
    buf.clear();
    let (mut any, mut fits) = (false, true);
    loop {
        let chunk = input.fill_buf()?;
        if chunk.is_empty() {
            return Ok(any.then_some(fits));
        }
        any = true;
        let (take, done) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (chunk.len(), false),
        };
        if fits && buf.len() + take <= max {
            buf.extend_from_slice(&chunk[..take]);
        } else {
            fits = false;
            buf.clear();
        }
        input.consume(take);
        if done {
            return Ok(Some(fits));
        }
    }
}

fn read_lines<S: NodeSink>(
    mut input: impl BufRead,
    what: &str,
    sink: &mut Selected<S>,
    reading: &mut Reading,
) -> Result<()> {
    read_lines_max(&mut input, what, sink, reading, MAX_LINE_BYTES)
}

fn read_lines_max<S: NodeSink>(
    input: &mut impl BufRead,
    what: &str,
    sink: &mut Selected<S>,
    reading: &mut Reading,
    max: usize,
) -> Result<()> {
    let (mut skipped, mut too_long) = (0u64, 0u64);
    let mut buf = Vec::new();
    for n in 1.. {
        let fits = read_line_bounded(input, &mut buf, max)
            .with_context(|| format!("reading {what} at line {n}"))?;
        match fits {
            None => break,
            Some(false) => {
                too_long += 1;
                continue;
            }
            Some(true) => {}
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
    if too_long > 0 {
        reading.notes.push(format!(
            "{what}: {too_long} line(s) longer than {max} bytes were skipped"
        ));
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests;
