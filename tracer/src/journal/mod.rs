//! Event journal: a size-capped, rotating on-disk record of the raw kernel records plus what
//! was resolved about them at the time, and the reader that replays it (`sigtrace replay`).
//!
//! The agent appends through a [`JournalWriter`]; post-mortems read with a [`JournalReader`]
//! and feed the same correlation engine as the live path.
//!
//! # Files
//!
//! A journal is a directory (default `/var/lib/sigtrace`) of files named
//! `sigtrace-<UTC yyyymmddThhmmss>Z-<seq, 6 digits>.journal`, so that sorting the names sorts
//! them chronologically. The writer starts a new file when the current one would exceed
//! `max_file_bytes`, and deletes the oldest journal files (by name) when the journal files of the
//! directory would exceed `max_total_bytes`, counting the current file at its full allowed
//! size. It only ever deletes files whose name has that pattern *and* whose first bytes are the
//! magic below; other files are never touched nor counted.
//!
//! Every file starts with a `Session` record, followed by a `Container` record for each
//! container the writer still remembers, so that any file can be replayed alone. The `Session`
//! record is repeated after every MiB of the file, so that damage to one copy loses only the
//! records up to the next. The directory is 0700, the files 0600, and an exclusive lock on
//! `.lock` keeps a second writer out (see `dir.rs`).
//!
//! # Format (version 2.1)
//!
//! All integers are little-endian. A file is a 16-byte header followed by frames. Version 2
//! keeps kernel and lost records in LZ4-compressed `Block` frames (about 64 KiB of records
//! each, closed early whenever another record type is written, on every flush and when the
//! writer stops); version 1 wrote one frame per record, and its files are still read.
//!
//! File header:
//!
//! | offset | size | field                                                         |
//! |-------:|-----:|---------------------------------------------------------------|
//! | 0      | 8    | magic `b"SIGTRACE"`                                           |
//! | 8      | 2    | major format version, `u16` = 2; a reader refuses a newer one |
//! | 10     | 2    | minor format version, `u16` = 1; additions older readers skip |
//! | 12     | 4    | flags, `u32` = 0 (reserved; readers ignore them)              |
//!
//! Frame (16-byte frame header, then the payload):
//!
//! | offset | size | field                                                             |
//! |-------:|-----:|-------------------------------------------------------------------|
//! | 0      | 4    | sync marker `F5 53 4A 46` (`0xF5 'S' 'J' 'F'`)                    |
//! | 4      | 4    | payload length `n`, `u32`, at most [`MAX_PAYLOAD`]                |
//! | 8      | 2    | record type, `u16` (table below)                                  |
//! | 10     | 2    | frame flags, `u16` = 0 (reserved; readers ignore them)            |
//! | 12     | 4    | CRC-32 (IEEE/zlib polynomial) of bytes 4..12 of this frame header (length, type, flags) followed by the `n` payload bytes |
//! | 16     | n    | payload                                                           |
//!
//! Record types and payloads (a reader ignores payload bytes after the fields it knows, so
//! fields can be appended in a later minor version):
//!
//! | type | record      | payload                                                            |
//! |-----:|-------------|--------------------------------------------------------------------|
//! | 1    | `Session`   | `clock_offset_ns: i64` (wall = monotonic + offset), `started_wall_ns: i64`, then three strings, each a `u16` byte length and UTF-8 bytes: `version`, `hostname`, `boot_id`; since 2.1 a fourth, [`Shaping`] as JSON (what shaped the records: replays apply it) |
//! | 2    | `Kernel`    | the kernel record exactly as the ring buffer gave it (the `#[repr(C)]` structs of `tracer-common`, in the recording host's byte order, which is little-endian on every supported target); decoded with [`crate::decode`] |
//! | 3    | `Lost`      | `count: u64` records the kernel dropped, `mono_ns: u64` when noticed |
//! | 4    | `Container` | `cgroup_id: u64`, then [`ContainerInfo`] as JSON (UTF-8) up to the end of the payload |
//! | 5    | `Note`      | free UTF-8 text                                                    |
//! | 6    | `Block`     | `codec: u8` = 1 (LZ4 block format), 3 reserved bytes, `raw_len: u32` (at most 1 MiB), then the compressed bytes of `raw_len` bytes of records, each `type: u16`, `length: u32` and the payload as above (`Kernel`, `Lost` and `Gone` records) |
//! | 7    | `Gone`      | since 2.2: `pid: u32`, 4 reserved bytes, `start_ns: u64`, `mono_ns: u64`: the process of a stop in progress was found gone at `mono_ns` without a traced exit; its stop was closed without a record |
//!
//! Any other record type is skipped by the reader and counted in
//! [`ReplayStats::unknown_skipped`]; new record types are therefore a minor version change.
//!
//! # Damage
//!
//! The sync marker, the length bound and the CRC let the reader find frames again after
//! damage. A file that ends inside a frame (the agent was killed mid-write, or the tail was
//! never written back) replays up to its last complete record and yields a
//! [`JournalWarning::Truncated`]; a tail of zero bytes counts as truncation too. Anything else
//! that is not a valid frame is a [`JournalError::Corrupt`] naming the file and byte offset:
//! in lenient mode the reader then carries on at the next valid frame, in strict mode it
//! stops. A file without the magic or with a newer major version is an error for that file;
//! in lenient mode the other files are still read. A `Block` whose CRC holds but that does not
//! decode (codec, data, a record cut inside it) is an error at its offset and loses its
//! records only; a damaged `Block` frame loses the records in it (up to 64 KiB of them). A
//! `Kernel` record whose payload the kernel
//! side cannot have written (size, kind, a time more than a minute before the file's latest)
//! is a [`JournalError::BadRecord`]; kernel records before any intact `Session` record of
//! their file cannot be timed and are skipped with one [`JournalError::NoSession`]. Files are
//! read through a window of two frames' worth, whatever their size.
mod dir;
mod format;
mod keeper;
mod live;
mod reader;
#[cfg(test)]
mod tests;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use thiserror::Error;

use crate::container::ContainerInfo;
use crate::decode::{Clock, DecodeError};
use crate::event::Event;

pub use format::{record_type, FORMAT_MAJOR, FORMAT_MINOR, MAX_PAYLOAD};
pub use live::{LiveJournal, LiveJournalStats};
pub use reader::{JournalReader, ReaderOptions, ReplayStats};
pub use writer::{JournalOptions, JournalWriter};

/// Where the agent keeps its journal unless told otherwise (`--data-dir`), and where `replay`,
/// `report` and `summary` look by default.
pub const DEFAULT_DIR: &str = "/var/lib/sigtrace";

/// What a journal file says about the agent that wrote it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionInfo {
    /// sigtrace crate version.
    pub version: String,
    pub hostname: String,
    /// The session's [`Clock`] offset: wall = monotonic + offset, in nanoseconds.
    pub clock_offset_ns: i64,
    /// When the agent started, wall-clock nanoseconds since the Unix epoch.
    pub started_wall_ns: i64,
    /// `/proc/sys/kernel/random/boot_id`, empty when unreadable.
    pub boot_id: String,
    /// What shaped the session's records (format 2.1; `None` in older files).
    pub shaping: Option<Shaping>,
}

/// The settings of a live run that shape its records beyond the kernel records themselves:
/// a replay of the session applies them (unless told otherwise) so that it gives the records
/// the live run gave.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Shaping {
    /// `--grace`, in milliseconds.
    pub grace_ms: Option<u64>,
    /// `--stop-signal`s: stop signals beyond TERM, INT, QUIT, HUP and KILL.
    pub stop_signals: Vec<i32>,
    /// The kernel side's emit mask (`--signals`; bit `n - 1` for signal `n`).
    pub emit_mask: u64,
    /// `--runtime-comm`s: more process names that count as the container runtime.
    pub runtime_comms: Vec<String>,
    /// The session carried on the stops its predecessor left in progress, rebuilt from the
    /// journal ([`crate::resume`]); the agent restarted at this monotonic time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resumed_at_mono_ns: Option<u64>,
    /// Every hook was attached at this monotonic time; the kernel records before it were
    /// dropped ([`crate::engine::Engine::trace_started`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traced_from_mono_ns: Option<u64>,
}

impl SessionInfo {
    /// This host and this process, with the given clock.
    pub fn current(clock: Clock) -> Self {
        let started_wall_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
        let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        Self {
            version: env!("CARGO_PKG_VERSION").to_string(),
            hostname: hostname(),
            clock_offset_ns: clock.offset_ns,
            started_wall_ns,
            boot_id,
            shaping: None,
        }
    }

    /// The clock that turns this session's monotonic timestamps into wall-clock time.
    pub fn clock(&self) -> Clock {
        Clock {
            offset_ns: self.clock_offset_ns,
        }
    }
}

/// This host's name (`gethostname`), empty when it cannot be read.
pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the pointer and length describe `buf`, which outlives the call.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return String::new();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// A frame of a journal, as the reader lends it: the kernel record bytes and note text
/// borrow the reader's buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    Session(&'a SessionInfo),
    /// A kernel record, exactly as the ring buffer gave it; see [`crate::decode`].
    Kernel(&'a [u8]),
    /// The kernel dropped `count` records (ring buffer full), noticed at `mono_ns`.
    Lost {
        count: u64,
        mono_ns: u64,
    },
    Container {
        cgroup_id: u64,
        info: &'a ContainerInfo,
    },
    Note(&'a str),
    /// See [`crate::driver::Gone`].
    Gone(crate::driver::Gone),
}

/// Something wrong with a file that still let the reader replay what it holds.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum JournalWarning {
    /// The file ends inside a record, at `offset`: `tail_bytes` bytes of an incomplete record
    /// were ignored. Everything before it was replayed.
    #[error(
        "{}: ends inside a record at byte offset {offset} ({tail_bytes} bytes of an incomplete \
         record ignored; sigtrace was probably stopped mid-write)",
        .path.display()
    )]
    Truncated {
        path: PathBuf,
        offset: u64,
        tail_bytes: u64,
    },
}

/// What the reader found at one place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ItemKind<'a> {
    Frame(Frame<'a>),
    Warning(JournalWarning),
}

/// One frame (or warning) lent by [`JournalReader::next_item`], with where it was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item<'a> {
    pub path: &'a Arc<Path>,
    /// Byte offset of the frame (or of the damage, for a warning) in the file.
    pub offset: u64,
    /// The clock of the file's session, once its `Session` frame has been read.
    pub clock: Option<Clock>,
    pub kind: ItemKind<'a>,
}

impl Item<'_> {
    /// For a `Kernel` frame: the decoded event, timed with the session's clock.
    pub fn event(&self) -> Option<Result<Event, JournalError>> {
        match self.kind {
            ItemKind::Frame(Frame::Kernel(bytes)) => {
                Some(decode_event(bytes, self.clock, self.path, self.offset))
            }
            _ => None,
        }
    }
}

/// Decodes an `Event` record's bytes found at `offset` of `path` with its session's clock.
pub fn decode_event(
    bytes: &[u8],
    clock: Option<Clock>,
    path: &Path,
    offset: u64,
) -> Result<Event, JournalError> {
    let clock = clock.ok_or_else(|| JournalError::NoSession {
        path: path.to_path_buf(),
        offset,
    })?;
    crate::decode::decode(bytes, &clock).map_err(|source| JournalError::Decode {
        path: path.to_path_buf(),
        offset,
        source,
    })
}

#[derive(Debug, Error)]
pub enum JournalError {
    #[error("refusing the journal directory {}: {reason}", .path.display())]
    UnsafeDir { path: PathBuf, reason: String },
    #[error(
        "the journal directory {} is in use by another sigtrace (pid {holder}); give each agent \
         its own --data-dir",
        .path.display()
    )]
    Locked { path: PathBuf, holder: String },
    #[error("{}: cannot {op}: {source}", .path.display())]
    Io {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: not a sigtrace journal", .path.display())]
    NotAJournal { path: PathBuf },
    #[error("{}: skipped: {what}, not a journal file", .path.display())]
    NotRegular { path: PathBuf, what: &'static str },
    #[error(
        "{}: journal format version {version} is newer than this sigtrace supports (up to {})",
        .path.display(), FORMAT_MAJOR
    )]
    UnsupportedVersion { path: PathBuf, version: u16 },
    #[error(
        "{}: corrupt journal data at byte offset {offset} ({reason}); {len} bytes unreadable",
        .path.display()
    )]
    Corrupt {
        path: PathBuf,
        offset: u64,
        len: u64,
        reason: &'static str,
    },
    #[error("{}: malformed {what} record at byte offset {offset}: {reason}", .path.display())]
    BadRecord {
        path: PathBuf,
        offset: u64,
        what: &'static str,
        reason: String,
    },
    #[error(
        "{}: event at byte offset {offset} comes before any session record; its time is unknown",
        .path.display()
    )]
    NoSession { path: PathBuf, offset: u64 },
    #[error("{}: undecodable event at byte offset {offset}: {source}", .path.display())]
    Decode {
        path: PathBuf,
        offset: u64,
        #[source]
        source: DecodeError,
    },
    #[error(
        "{}: a {len}-byte record is larger than the journal's {}-byte maximum",
        .path.display(), MAX_PAYLOAD
    )]
    TooLarge { path: PathBuf, len: usize },
}

impl JournalError {
    /// The file (or directory) the error is about.
    pub fn path(&self) -> &Path {
        match self {
            Self::Io { path, .. }
            | Self::UnsafeDir { path, .. }
            | Self::Locked { path, .. }
            | Self::NotAJournal { path }
            | Self::NotRegular { path, .. }
            | Self::UnsupportedVersion { path, .. }
            | Self::Corrupt { path, .. }
            | Self::BadRecord { path, .. }
            | Self::NoSession { path, .. }
            | Self::Decode { path, .. }
            | Self::TooLarge { path, .. } => path,
        }
    }

    /// The byte offset in the file, for errors about a place in it.
    pub fn offset(&self) -> Option<u64> {
        match self {
            Self::Corrupt { offset, .. }
            | Self::BadRecord { offset, .. }
            | Self::NoSession { offset, .. }
            | Self::Decode { offset, .. } => Some(*offset),
            _ => None,
        }
    }
}
