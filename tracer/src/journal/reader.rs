//! The replay side: reads journal files whole and walks their frames, lending event bytes
//! straight from the file buffer.
use std::collections::VecDeque;
use std::fs::{self, File};
use std::io::Read;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::format::{
    check_file_header, decode_container, decode_lost, decode_session, find_frame, parse_frame,
    record_type, Frame, HeaderCheck, FILE_HEADER_LEN,
};
use super::{
    ItemKindRef, ItemRef, JournalError, JournalItem, JournalWarning, RecordRef, SessionInfo,
};
use crate::container::ContainerInfo;
use crate::decode::Clock;

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
    /// Frames with a valid CRC, of any type.
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
}

struct OpenFile {
    path: Arc<Path>,
    pos: usize,
    done: bool,
    session: Option<SessionInfo>,
    clock: Option<Clock>,
}

/// What `advance` found; the parts borrowed from the buffer are ranges.
enum Found {
    Event(Range<usize>),
    Session,
    Lost { count: u64, mono_ns: u64 },
    Container(u64),
    Note(Range<usize>),
    Warning(JournalWarning),
}

/// Reads journal files in order. A directory stands for its `*.journal` files, sorted by
/// name (chronological for the writer's names).
///
/// [`next_ref`](Self::next_ref) lends each record without allocating (the replay hot path);
/// the [`Iterator`] implementation yields owned [`JournalItem`]s.
pub struct JournalReader {
    inputs: VecDeque<PathBuf>,
    strict: bool,
    stopped: bool,
    file: Option<OpenFile>,
    /// The current file's bytes, reused from file to file.
    buf: Vec<u8>,
    /// The last `Container` record's info.
    container: ContainerInfo,
    stats: ReplayStats,
}

impl JournalReader {
    pub fn new<I, P>(paths: I, options: ReaderOptions) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<PathBuf>,
    {
        Self {
            inputs: paths.into_iter().map(Into::into).collect(),
            strict: options.strict,
            stopped: false,
            file: None,
            buf: Vec::new(),
            container: ContainerInfo::default(),
            stats: ReplayStats::default(),
        }
    }

    pub fn stats(&self) -> &ReplayStats {
        &self.stats
    }

    /// The session of the file being read, once its `Session` record has been read.
    pub fn session(&self) -> Option<&SessionInfo> {
        self.file.as_ref().and_then(|f| f.session.as_ref())
    }

    /// The next record or warning, borrowing from the reader; `None` at the end (or after an
    /// error in strict mode).
    pub fn next_ref(&mut self) -> Option<Result<ItemRef<'_>, JournalError>> {
        let (offset, found) = match self.advance()? {
            Ok(x) => x,
            Err(e) => return Some(Err(e)),
        };
        let file = self.file.as_ref()?;
        let record = ItemKindRef::Record;
        let kind = match found {
            Found::Event(r) => record(RecordRef::Event(&self.buf[r])),
            Found::Session => record(RecordRef::Session(file.session.as_ref()?)),
            Found::Lost { count, mono_ns } => record(RecordRef::Lost { count, mono_ns }),
            Found::Container(cgroup_id) => record(RecordRef::Container {
                cgroup_id,
                info: &self.container,
            }),
            Found::Note(r) => record(RecordRef::Note(
                std::str::from_utf8(&self.buf[r]).unwrap_or_default(),
            )),
            Found::Warning(w) => ItemKindRef::Warning(w),
        };
        Some(Ok(ItemRef {
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
            if self.file.as_ref().is_none_or(|f| f.done) {
                // The last file stays, so that `session` still answers after the end.
                let path = self.inputs.pop_front()?;
                self.file = None;
                if let Some(r) = self.open(path) {
                    return Some(r);
                }
                continue;
            }
            let file = self.file.as_mut()?;
            let pos = file.pos;
            if pos >= self.buf.len() {
                file.done = true;
                continue;
            }
            let offset = pos as u64;
            let (incomplete, reason) = match parse_frame(&self.buf, pos) {
                Frame::Ok {
                    rtype,
                    payload,
                    next,
                } => {
                    file.pos = next;
                    self.stats.records += 1;
                    if rtype == record_type::EVENT {
                        self.stats.events += 1;
                        return Some(Ok((offset, Found::Event(payload))));
                    }
                    let p = &self.buf[payload.clone()];
                    let found = match rtype {
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
                        record_type::NOTE => std::str::from_utf8(p)
                            .map(|_| Found::Note(payload))
                            .map_err(|_| ("note", "text is not UTF-8".to_string())),
                        _ => {
                            self.stats.unknown_skipped += 1;
                            continue;
                        }
                    };
                    match found {
                        Ok(found) => return Some(Ok((offset, found))),
                        Err((what, reason)) => {
                            self.stats.bad_records += 1;
                            let e = JournalError::BadRecord {
                                path: file.path.to_path_buf(),
                                offset,
                                what,
                                reason,
                            };
                            return self.fail(e);
                        }
                    }
                }
                Frame::Incomplete => (true, "frame runs past the end of the file"),
                Frame::Bad(reason) => (false, reason),
            };
            // Damage: find where valid frames start again.
            let path = file.path.to_path_buf();
            let (len, truncated) = match find_frame(&self.buf, pos + 1) {
                Some(next) => {
                    file.pos = next;
                    (next - pos, false)
                }
                None => {
                    file.done = true;
                    let tail = &self.buf[pos..];
                    (tail.len(), incomplete || tail.iter().all(|&b| b == 0))
                }
            };
            let len = len as u64;
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
            return self.fail(JournalError::Corrupt {
                path,
                offset,
                len,
                reason,
            });
        }
    }

    /// Opens the next input: a directory queues its files; a file is read whole. Returns an
    /// error, or a warning for a file too short to hold a header.
    fn open(&mut self, path: PathBuf) -> Option<Result<(u64, Found), JournalError>> {
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
        if meta.is_dir() {
            match journal_files(&path) {
                Ok(files) => {
                    for f in files.into_iter().rev() {
                        self.inputs.push_front(f);
                    }
                    return None;
                }
                Err(e) => return self.fail_file(e),
            }
        }
        self.buf.clear();
        let read = File::open(&path).and_then(|mut f| {
            self.buf.reserve(usize::try_from(meta.len()).unwrap_or(0));
            f.read_to_end(&mut self.buf)
        });
        if let Err(source) = read {
            return self.fail_file(JournalError::Io {
                path,
                op: "read the journal file",
                source,
            });
        }
        let mut file = OpenFile {
            path: Arc::from(path.as_path()),
            pos: FILE_HEADER_LEN,
            done: false,
            session: None,
            clock: None,
        };
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

impl Iterator for JournalReader {
    type Item = Result<JournalItem, JournalError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_ref().map(|r| r.map(|item| item.to_item()))
    }
}

/// The `*.journal` files of a directory, sorted by name.
fn journal_files(dir: &Path) -> Result<Vec<PathBuf>, JournalError> {
    let entries = fs::read_dir(dir).map_err(|source| JournalError::Io {
        path: dir.to_path_buf(),
        op: "list the journal directory",
        source,
    })?;
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "journal") && p.is_file())
        .collect();
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    Ok(files)
}

/// What [`decode_all`] went through.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DecodeCounts {
    pub events: u64,
    pub decode_errors: u64,
    /// Wrapping sum of the decoded events' wall-clock times (keeps the decoding observable).
    pub wall_ns_sum: u64,
}

/// Reads (strictly) and decodes every event of the given journal files or directories: the
/// replay hot path, for throughput benchmarks.
pub fn decode_all<P: AsRef<Path>>(paths: &[P]) -> Result<DecodeCounts, JournalError> {
    let mut reader = JournalReader::new(
        paths.iter().map(|p| p.as_ref().to_path_buf()),
        ReaderOptions { strict: true },
    );
    let mut counts = DecodeCounts::default();
    while let Some(item) = reader.next_ref() {
        match item?.event() {
            Some(Ok(ev)) => {
                counts.events += 1;
                counts.wall_ns_sum = counts.wall_ns_sum.wrapping_add(ev.wall_ns as u64);
            }
            Some(Err(_)) => counts.decode_errors += 1,
            None => {}
        }
    }
    Ok(counts)
}
