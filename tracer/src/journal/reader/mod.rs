//! The replay side: reads journal files through a bounded window (two frames' worth, whatever
//! the file's size) and walks their frames, lending event bytes straight from the window.
use std::collections::VecDeque;
use std::fs::{self, File};
use std::ops::{ControlFlow, ControlFlow::Break, ControlFlow::Continue, Range};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::format::{
    check_file_header, decode_block, decode_container, decode_gone, decode_lost, decode_session,
    inner_record, parse_frame, record_type, HeaderCheck, Parsed, FILE_HEADER_LEN,
};
use super::{Frame as Lent, Item, ItemKind, JournalError, JournalWarning, SessionInfo};
use crate::container::ContainerInfo;
use crate::decode::Clock;

mod source;
mod window;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReaderOptions {
    /// Stop at the first error (corrupt data, foreign file, unreadable file) instead of
    /// reporting it and carrying on with the next valid record or file.
    pub strict: bool,
}

/// What a reader has gone through so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReplayStats {
    /// Journal files opened (with a valid header, or empty/truncated header).
    pub files: u64,
    /// Files that could not be read or are not journals.
    pub failed_files: u64,
    /// Records read intact: frames with a valid CRC, and the records inside blocks (a block
    /// frame itself is not counted).
    pub records: u64,
    pub events: u64,
    /// Frames of a record type this version does not know, skipped.
    pub unknown_skipped: u64,
    /// Frames of a known type whose payload could not be parsed.
    pub bad_records: u64,
    /// Damaged regions (each reported as a [`JournalError::Corrupt`]).
    pub corrupt_regions: u64,
    /// Files ending inside a record (each reported as a [`JournalWarning::Truncated`]).
    pub truncated_files: u64,
    /// Kernel records before any intact session record of their file (untimed, skipped).
    pub untimed: u64,
}

struct OpenFile {
    path: Arc<Path>,
    /// The rest of the file, `None` once it has all been read into the window.
    source: Option<File>,
    /// File offset of the window's first byte.
    base: u64,
    /// Position in the window.
    pos: usize,
    done: bool,
    session: Option<SessionInfo>,
    clock: Option<Clock>,
    /// Kernel frames before any intact session frame were reported (once per file).
    untimed_reported: bool,
    /// The latest kernel record time of the file.
    max_ts: u64,
}

/// What `advance` found; the parts borrowed from the buffer are ranges.
enum Found {
    Kernel(Range<usize>),
    /// A kernel record in the decompressed block.
    BlockKernel(Range<usize>),
    Session,
    Lost {
        count: u64,
        mono_ns: u64,
    },
    Container(u64),
    Gone(crate::driver::Gone),
    Note(Range<usize>),
    Warning(JournalWarning),
}

/// Reads journal files in order. A directory stands for its `*.journal` files, sorted by
/// name (chronological for the writer's names).
///
/// [`next_item`](Self::next_item) lends each frame without allocating (the replay hot path).
pub struct JournalReader {
    /// Paths to read, and whether each was found in a directory (not named by the user).
    inputs: VecDeque<(PathBuf, bool)>,
    strict: bool,
    stopped: bool,
    file: Option<OpenFile>,
    /// A window on the current file (at most [`WINDOW`] bytes, reused from file to file).
    buf: Vec<u8>,
    /// The last `Container` record's info.
    container: ContainerInfo,
    /// The last warning handed out as an input.
    warning: Option<JournalWarning>,
    /// Offset of the last frame handed out as an input.
    last_offset: u64,
    /// The current `Block` frame, decompressed; its records are handed out one by one.
    block: Vec<u8>,
    block_pos: usize,
    /// File offset of the current block's frame.
    block_offset: u64,
    stats: ReplayStats,
    /// The last session handed out as an input (its frame repeats in every file and every
    /// MiB; a consumer hears of each session once in a row).
    session: Option<SessionInfo>,
}

impl JournalReader {
    pub fn new<I, P>(paths: I, options: ReaderOptions) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<PathBuf>,
    {
        Self {
            inputs: paths.into_iter().map(|p| (p.into(), false)).collect(),
            strict: options.strict,
            stopped: false,
            file: None,
            buf: Vec::new(),
            container: ContainerInfo::default(),
            warning: None,
            last_offset: 0,
            block: Vec::new(),
            block_pos: 0,
            block_offset: 0,
            stats: ReplayStats::default(),
            session: None,
        }
    }

    pub fn stats(&self) -> &ReplayStats {
        &self.stats
    }

    /// Bytes the reader's window holds now (tests: it stays bounded).
    #[cfg(test)]
    pub(crate) fn window_capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// The session of the file being read, once its `Session` record has been read.
    pub fn session(&self) -> Option<&SessionInfo> {
        self.file.as_ref().and_then(|f| f.session.as_ref())
    }

    /// The next record or warning, borrowing from the reader; `None` at the end (or after an
    /// error in strict mode).
    pub fn next_item(&mut self) -> Option<Result<Item<'_>, JournalError>> {
        let (offset, found) = match self.advance()? {
            Ok(x) => x,
            Err(e) => return Some(Err(e)),
        };
        let file = self.file.as_ref()?;
        let frame = ItemKind::Frame;
        let kind = match found {
            Found::Kernel(r) => frame(Lent::Kernel(&self.buf[r])),
            Found::BlockKernel(r) => frame(Lent::Kernel(&self.block[r])),
            Found::Session => frame(Lent::Session(file.session.as_ref()?)),
            Found::Lost { count, mono_ns } => frame(Lent::Lost { count, mono_ns }),
            Found::Container(cgroup_id) => frame(Lent::Container {
                cgroup_id,
                info: &self.container,
            }),
            Found::Gone(g) => frame(Lent::Gone(g)),
            Found::Note(r) => frame(Lent::Note(
                std::str::from_utf8(&self.buf[r]).unwrap_or_default(),
            )),
            Found::Warning(w) => ItemKind::Warning(w),
        };
        Some(Ok(Item {
            path: &file.path,
            offset,
            clock: file.clock,
            kind,
        }))
    }

    fn fail(&mut self, e: JournalError) -> Option<Result<(u64, Found), JournalError>> {
        if self.strict {
            self.stopped = true;
        }
        Some(Err(e))
    }

    fn fail_file(&mut self, e: JournalError) -> Option<Result<(u64, Found), JournalError>> {
        self.stats.failed_files += 1;
        self.fail(e)
    }

    fn advance(&mut self) -> Option<Result<(u64, Found), JournalError>> {
        loop {
            if self.stopped {
                return None;
            }
            if self.block_pos < self.block.len() {
                match self.next_in_block() {
                    Some(r) => return Some(r),
                    None => continue,
                }
            }
            if self.file.as_ref().is_none_or(|f| f.done) {
                // The last file stays, so that `session` still answers after the end.
                let (path, in_dir) = self.inputs.pop_front()?;
                self.file = None;
                if let Some(r) = self.open(path, in_dir) {
                    return Some(r);
                }
                continue;
            }
            if let Err(e) = self.refill() {
                return self.fail(e);
            }
            let file = self.file.as_mut()?;
            let pos = file.pos;
            if pos >= self.buf.len() {
                file.done = true;
                continue;
            }
            let offset = file.base + pos as u64;
            let step = match parse_frame(&self.buf, pos) {
                Parsed::Ok {
                    rtype,
                    payload,
                    next,
                } => {
                    file.pos = next;
                    self.frame(offset, rtype, payload)
                }
                Parsed::Incomplete => {
                    Break(self.damage(offset, true, "frame runs past the end of the file"))
                }
                Parsed::Bad(reason) => Break(self.damage(offset, false, reason)),
            };
            if let Break(found) = step {
                return found;
            }
        }
    }

    /// A whole frame at `offset`: what it holds, or `Continue` for a block (its records come
    /// next) and a record of an unknown type.
    fn frame(
        &mut self,
        offset: u64,
        rtype: u16,
        payload: Range<usize>,
    ) -> ControlFlow<Option<Result<(u64, Found), JournalError>>> {
        let Some(file) = self.file.as_mut() else {
            return Break(None);
        };
        if rtype == record_type::BLOCK {
            // Not counted itself: the records in it are, one by one.
            return match decode_block(&self.buf[payload], &mut self.block) {
                Ok(()) => {
                    self.block_pos = 0;
                    self.block_offset = offset;
                    Continue(())
                }
                Err(reason) => {
                    self.block.clear();
                    let path = file.path.to_path_buf();
                    Break(self.bad_record(path, offset, "block", reason))
                }
            };
        }
        self.stats.records += 1;
        let p = &self.buf[payload.clone()];
        let found = match rtype {
            record_type::KERNEL => check_kernel_frame(p, &mut file.max_ts)
                .map(|()| {
                    self.stats.events += 1;
                    Found::Kernel(payload)
                })
                .map_err(|r| ("kernel", r)),
            record_type::SESSION => decode_session(p)
                .map(|s| {
                    file.clock = Some(s.clock());
                    file.session = Some(s);
                    Found::Session
                })
                .map_err(|r| ("session", r)),
            record_type::LOST => decode_lost(p)
                .map(|(count, mono_ns)| Found::Lost { count, mono_ns })
                .map_err(|r| ("lost", r)),
            record_type::CONTAINER => decode_container(p)
                .map(|(cgroup_id, info)| {
                    self.container = info;
                    Found::Container(cgroup_id)
                })
                .map_err(|r| ("container", r)),
            record_type::GONE => decode_gone(p).map(Found::Gone).map_err(|r| ("gone", r)),
            record_type::NOTE => std::str::from_utf8(p)
                .map(|_| Found::Note(payload))
                .map_err(|_| ("note", "text is not UTF-8".to_string())),
            _ => {
                self.stats.unknown_skipped += 1;
                return Continue(());
            }
        };
        Break(match found {
            Ok(found) => Some(Ok((offset, found))),
            Err((what, reason)) => {
                let path = file.path.to_path_buf();
                self.bad_record(path, offset, what, reason)
            }
        })
    }

    /// Damage at `offset` (`incomplete`: a frame cut by the end of the file): finds where
    /// valid frames start again. Damage that runs to the end of the file, cut inside a frame
    /// or zeros, is truncation; damage followed by valid frames is corruption.
    fn damage(
        &mut self,
        offset: u64,
        incomplete: bool,
        reason: &'static str,
    ) -> Option<Result<(u64, Found), JournalError>> {
        let path = self.file.as_ref()?.path.to_path_buf();
        let (len, truncated) = match self.resync(offset) {
            Ok((len, Some(zeros))) => (len, incomplete || zeros),
            Ok((len, None)) => (len, false),
            Err(e) => return self.fail(e),
        };
        if truncated {
            self.stats.truncated_files += 1;
            let w = JournalWarning::Truncated {
                path,
                offset,
                tail_bytes: len,
            };
            return Some(Ok((offset, Found::Warning(w))));
        }
        self.stats.corrupt_regions += 1;
        self.fail(JournalError::Corrupt {
            path,
            offset,
            len,
            reason,
        })
    }

    fn bad_record(
        &mut self,
        path: PathBuf,
        offset: u64,
        what: &'static str,
        reason: String,
    ) -> Option<Result<(u64, Found), JournalError>> {
        self.stats.bad_records += 1;
        self.fail(JournalError::BadRecord {
            path,
            offset,
            what,
            reason,
        })
    }

    /// The next record of the current block: kernel and lost records (others are skipped as
    /// unknown). `None` when the block is used up, or a record was skipped.
    fn next_in_block(&mut self) -> Option<Result<(u64, Found), JournalError>> {
        let offset = self.block_offset;
        let file = self.file.as_mut()?;
        let (rtype, payload, next) = match inner_record(&self.block, self.block_pos) {
            Ok(r) => r,
            Err(reason) => {
                let len = (self.block.len() - self.block_pos) as u64;
                self.block_pos = self.block.len();
                self.stats.corrupt_regions += 1;
                let e = JournalError::Corrupt {
                    path: file.path.to_path_buf(),
                    offset,
                    len,
                    reason: "a damaged record inside a block",
                };
                tracing::debug!("journal block at {offset}: {reason}");
                return self.fail(e);
            }
        };
        self.block_pos = next;
        self.stats.records += 1;
        let p = &self.block[payload.clone()];
        let (what, reason) = match rtype {
            record_type::KERNEL => match check_kernel_frame(p, &mut file.max_ts) {
                Ok(()) => {
                    self.stats.events += 1;
                    return Some(Ok((offset, Found::BlockKernel(payload))));
                }
                Err(reason) => ("kernel", reason),
            },
            record_type::LOST => match decode_lost(p) {
                Ok((count, mono_ns)) => return Some(Ok((offset, Found::Lost { count, mono_ns }))),
                Err(reason) => ("lost", reason),
            },
            record_type::GONE => match decode_gone(p) {
                Ok(g) => return Some(Ok((offset, Found::Gone(g)))),
                Err(reason) => ("gone", reason),
            },
            _ => {
                self.stats.unknown_skipped += 1;
                return None;
            }
        };
        let path = file.path.to_path_buf();
        self.bad_record(path, offset, what, reason)
    }

    /// Opens the next input: a directory queues its files; a file is read whole. Returns an
    /// error, or a warning for a file too short to hold a header.
    fn open(&mut self, path: PathBuf, in_dir: bool) -> Option<Result<(u64, Found), JournalError>> {
        let meta = match fs::metadata(&path) {
            Ok(m) => m,
            Err(source) => {
                return self.fail_file(JournalError::Io {
                    path,
                    op: "read the journal",
                    source,
                })
            }
        };
        if meta.is_dir() && !in_dir {
            match journal_files(&path) {
                Ok(files) => {
                    for f in files.into_iter().rev() {
                        self.inputs.push_front((f, true));
                    }
                    return None;
                }
                Err(e) => return self.fail_file(e),
            }
        }
        if !meta.is_file() {
            let what = match meta.file_type() {
                t if t.is_dir() => "a directory named *.journal",
                t if std::os::unix::fs::FileTypeExt::is_fifo(&t) => "a FIFO",
                t if std::os::unix::fs::FileTypeExt::is_socket(&t) => "a socket",
                t if std::os::unix::fs::FileTypeExt::is_char_device(&t)
                    || std::os::unix::fs::FileTypeExt::is_block_device(&t) =>
                {
                    "a device"
                }
                _ => "not a regular file",
            };
            return self.fail_file(JournalError::NotRegular { path, what });
        }
        self.buf.clear();
        let source = match File::open(&path) {
            Ok(f) => f,
            Err(source) => {
                return self.fail_file(JournalError::Io {
                    path,
                    op: "read the journal file",
                    source,
                })
            }
        };
        let mut file = OpenFile {
            path: Arc::from(path.as_path()),
            source: Some(source),
            base: 0,
            pos: 0,
            done: false,
            session: None,
            clock: None,
            untimed_reported: false,
            max_ts: 0,
        };
        if let Err(e) = window::fill(&mut self.buf, &mut file) {
            return self.fail_file(e);
        }
        file.pos = FILE_HEADER_LEN;
        match check_file_header(&self.buf) {
            HeaderCheck::Ok => {
                self.stats.files += 1;
                self.file = Some(file);
                None
            }
            HeaderCheck::Short => {
                self.stats.files += 1;
                self.stats.truncated_files += 1;
                file.done = true;
                self.file = Some(file);
                let w = JournalWarning::Truncated {
                    path,
                    offset: 0,
                    tail_bytes: self.buf.len() as u64,
                };
                Some(Ok((0, Found::Warning(w))))
            }
            HeaderCheck::Foreign => self.fail_file(JournalError::NotAJournal { path }),
            HeaderCheck::Newer(version) => {
                self.fail_file(JournalError::UnsupportedVersion { path, version })
            }
        }
    }
}

/// Most a kernel record's time may go back within a file (CPUs' records interleave by a few
/// milliseconds; a clock does not jump back by minutes).
const MAX_TIME_BACK_NS: u64 = 60_000_000_000;

/// A kernel frame's payload must be a whole record of a known kind whose time does not go
/// back within the file; `max_ts` is the file's latest time so far.
fn check_kernel_frame(p: &[u8], max_ts: &mut u64) -> Result<(), String> {
    if p.len() < 16 {
        return Err(format!("{} bytes, shorter than a record header", p.len()));
    }
    let k = u32::from_le_bytes([p[0], p[1], p[2], p[3]]);
    let Some(need) = tracer_common::kind::size(k) else {
        return Err(format!("unknown record kind {k}"));
    };
    if p.len() != need {
        return Err(format!("{} bytes for a kind-{k} record of {need}", p.len()));
    }
    let ts = u64::from_le_bytes(p[8..16].try_into().unwrap_or_default());
    if ts == 0 || ts.saturating_add(MAX_TIME_BACK_NS) < *max_ts {
        return Err(format!(
            "time {ts} ns goes back from {max_ts} ns: not a record of this file"
        ));
    }
    *max_ts = (*max_ts).max(ts);
    Ok(())
}

/// The `*.journal` files of a directory, sorted by name.
fn journal_files(dir: &Path) -> Result<Vec<PathBuf>, JournalError> {
    let entries = fs::read_dir(dir).map_err(|source| JournalError::Io {
        path: dir.to_path_buf(),
        op: "list the journal directory",
        source,
    })?;
    // Every `*.journal` entry: one that is not a regular file is reported when its turn comes.
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "journal"))
        .collect();
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    Ok(files)
}
