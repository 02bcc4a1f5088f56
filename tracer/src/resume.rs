//! An agent that starts on an existing journal carries on the stops its predecessor left in
//! progress (its own update, a crash, a node drain of the agent): the journal's tail — at most
//! the last `max_age` of this boot, at most `max_bytes` of files — goes through the same
//! driver, pipeline and engine as a replay, with no output (what finished was emitted by the
//! agent that saw it), and the engine with its open stops becomes the live one. A stop that
//! spans the restart then gives one complete record, marked `agent_restarted_during`; the new
//! session's journal says it resumed (`Shaping::resumed_at_mono_ns`), so a replay of the data
//! dir gives the same record.
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::driver::{drive, Consumer, Input, OnBadInput};
use crate::engine::{Engine, Output};
use crate::journal::{JournalReader, ReaderOptions};
use crate::output::OutputSink;
use crate::pipeline::{Pipeline, Window};

/// How much of the journal a start reads back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResumeOptions {
    /// Only what the journal holds of the last `max_age` (0: no resume).
    pub max_age: Duration,
    /// At most this many bytes of the newest files.
    pub max_bytes: u64,
}

/// What a start rebuilt.
#[derive(Debug, Default)]
pub struct Resumed {
    /// Journal files read back.
    pub files: usize,
    /// Stops in progress carried on.
    pub open: usize,
}

/// Discards the records a rebuild gives.
struct Discard;

impl OutputSink for Discard {
    fn output(&mut self, _: &Output) -> std::io::Result<()> {
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Feeds the pipeline but leaves its end to the live run.
struct NoFinish<'a>(&'a mut Pipeline<Discard>);

impl Consumer for NoFinish<'_> {
    fn input(&mut self, input: Input<'_>) -> Result<(), crate::driver::FeedError> {
        self.0.input(input)
    }

    fn finish(&mut self) -> anyhow::Result<()> {
        Ok(())
    }
}

/// The newest `*.journal` files of `dir` written during this boot within `opts`, oldest first.
fn tail_files(dir: &Path, boot_id: &str, opts: &ResumeOptions) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let oldest = SystemTime::now()
        .checked_sub(opts.max_age)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let mut files: Vec<(SystemTime, u64, PathBuf)> = entries
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "journal"))
        .filter_map(|e| {
            let m = e.metadata().ok()?;
            let modified = m.modified().ok()?;
            (m.is_file() && modified >= oldest).then(|| (modified, m.len(), e.path()))
        })
        .collect();
    files.sort_by_key(|f| std::cmp::Reverse(f.0));
    let mut picked = Vec::new();
    let mut bytes = 0u64;
    for (_, len, path) in files {
        if bytes >= opts.max_bytes {
            break;
        }
        if same_boot(&path, boot_id) {
            bytes += len;
            picked.push(path);
        }
    }
    picked.reverse();
    picked
}

fn same_boot(path: &Path, boot_id: &str) -> bool {
    let mut r = JournalReader::new([path], ReaderOptions { strict: false });
    for _ in 0..16 {
        match r.next_item() {
            Some(Ok(_)) => {
                if let Some(s) = r.session() {
                    return !boot_id.is_empty() && s.boot_id == boot_id;
                }
            }
            Some(Err(_)) => continue,
            None => return false,
        }
    }
    false
}

/// Rebuilds `engine`'s open stops from the tail of the journal in `dir` (see the module docs).
/// `now_wall_ns` bounds the window. Never fails: a journal that cannot be read leaves the
/// engine as it was, logged.
pub fn rebuild(
    dir: &Path,
    engine: Engine,
    opts: &ResumeOptions,
    boot_id: &str,
    now_wall_ns: i64,
) -> (Engine, Resumed) {
    if opts.max_age.is_zero() || opts.max_bytes == 0 {
        return (engine, Resumed::default());
    }
    let files = tail_files(dir, boot_id, opts);
    if files.is_empty() {
        return (engine, Resumed::default());
    }
    let since = now_wall_ns.saturating_sub(i64::try_from(opts.max_age.as_nanos()).unwrap_or(0));
    let mut pipeline = Pipeline::new(engine, Discard).with_window(Window {
        since: Some(since),
        until: None,
    });
    let mut reader = JournalReader::new(files.iter(), ReaderOptions { strict: false });
    if let Err(e) = drive(
        &mut reader,
        &mut NoFinish(&mut pipeline),
        OnBadInput::ReportFirst,
    ) {
        tracing::warn!("reading the journal's tail back failed: {e:#}");
    }
    let mut engine = pipeline.into_engine();
    engine.settle(&mut Vec::new());
    let open = engine.open_stops();
    (
        engine,
        Resumed {
            files: files.len(),
            open,
        },
    )
}
