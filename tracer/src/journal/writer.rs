//! The live-path side: appends frames to a buffered file, rotates and prunes.
use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{BufWriter, ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use super::format::{
    block_header, encode_lost, encode_session, file_header, frame_header, is_writer_name,
    record_type, utc_stamp, FRAME_HEADER_LEN, MAGIC, MAX_PAYLOAD,
};
use super::{JournalError, SessionInfo};
use crate::container::ContainerInfo;

/// Size limits of a journal directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JournalOptions {
    /// A file is closed and a new one started before it would grow past this (default 64 MiB).
    pub max_file_bytes: u64,
    /// The oldest journal files are deleted while the directory's journal files, the current
    /// one counted at `max_file_bytes`, exceed this (default 512 MiB).
    pub max_total_bytes: u64,
    /// Kernel and lost records go into LZ4-compressed `Block` frames (default); without, one
    /// frame each, as version 1 wrote them (tests of frame-level damage use that).
    pub compress: bool,
}

impl Default for JournalOptions {
    fn default() -> Self {
        Self {
            max_file_bytes: 64 << 20,
            max_total_bytes: 512 << 20,
            compress: true,
        }
    }
}

/// Containers re-written at the start of each new file, so that it can be replayed alone.
const MAX_REMEMBERED_CONTAINERS: usize = 1024;
const WRITE_BUFFER_BYTES: usize = 64 << 10;
/// Kernel and lost records are compressed together in blocks of about this many bytes.
const BLOCK_BYTES: usize = 64 << 10;
/// A file repeats its session frame after this many bytes.
pub const SESSION_EVERY: u64 = 1 << 20;

/// Appends records to the journal in a directory. Writes are buffered: a record reaches the
/// file when the buffer fills, on [`flush`](Self::flush), or when the writer is dropped.
pub struct JournalWriter {
    dir: PathBuf,
    /// The directory's exclusive lock.
    lock: super::dir::DirLock,
    options: JournalOptions,
    session: SessionInfo,
    out: BufWriter<File>,
    path: PathBuf,
    /// Bytes written to the current file, buffered ones included.
    file_bytes: u64,
    /// Bytes of the current file's header, session and container records.
    preamble_bytes: u64,
    /// Where the last session frame of the current file starts.
    last_session: u64,
    next_seq: u32,
    last_name_secs: u64,
    /// cgroup id → (insertion number, `Container` payload).
    containers: HashMap<u64, (u64, Vec<u8>)>,
    containers_added: u64,
    scratch: Vec<u8>,
    /// Kernel and lost records not yet compressed into a `Block` frame.
    block: Vec<u8>,
    compressed: Vec<u8>,
    /// A write failed: the file may end in a partial frame, so the next append starts a new
    /// file (the old one then reads as truncated, not corrupt).
    broken: bool,
}

fn io_err<'a>(
    path: &'a Path,
    op: &'static str,
) -> impl FnOnce(std::io::Error) -> JournalError + 'a {
    move |source| JournalError::Io {
        path: path.to_path_buf(),
        op,
        source,
    }
}

/// A `Container` frame's payload: the cgroup id, then the info as JSON.
fn container_payload(cgroup_id: u64, info: &ContainerInfo) -> serde_json::Result<Vec<u8>> {
    let mut payload = Vec::with_capacity(256);
    payload.extend_from_slice(&cgroup_id.to_le_bytes());
    serde_json::to_writer(&mut payload, info)?;
    Ok(payload)
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl JournalWriter {
    /// Creates `dir` if needed, starts a new file in it and deletes the oldest files beyond
    /// the size cap.
    pub fn open(
        dir: impl AsRef<Path>,
        options: JournalOptions,
        session: SessionInfo,
    ) -> Result<Self, JournalError> {
        let dir = dir.as_ref().to_path_buf();
        super::dir::prepare(&dir)?;
        let lock = super::dir::lock(&dir)?;
        let (floor_secs, floor_seq) = newest_name(&dir);
        if floor_secs > now_secs() {
            tracing::warn!(
                "the clock is behind the newest journal file of {} (named for {}): new files are \
                 named after it, so that retention and replay keep the order they were written in",
                dir.display(),
                crate::event::utc_stamp(floor_secs)
            );
        }
        let (path, file, seq, secs) = create_file(&dir, floor_secs, floor_seq)?;
        let mut w = Self {
            dir,
            lock,
            options,
            session,
            out: BufWriter::with_capacity(WRITE_BUFFER_BYTES, file),
            path,
            file_bytes: 0,
            preamble_bytes: 0,
            last_session: 0,
            next_seq: seq + 1,
            last_name_secs: secs,
            containers: HashMap::new(),
            containers_added: 0,
            scratch: Vec::with_capacity(256),
            block: Vec::with_capacity(BLOCK_BYTES + 4096),
            compressed: Vec::new(),
            broken: false,
        };
        w.write_preamble()?;
        w.prune()?;
        Ok(w)
    }

    /// The file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends a kernel record, exactly as the ring buffer gave it (into the open block).
    pub fn append_kernel(&mut self, bytes: &[u8]) -> Result<(), JournalError> {
        self.append_to_block(record_type::KERNEL, bytes)
    }

    /// Records that the kernel dropped `count` records, noticed at monotonic `mono_ns`.
    pub fn append_lost(&mut self, count: u64, mono_ns: u64) -> Result<(), JournalError> {
        self.append_to_block(record_type::LOST, &encode_lost(count, mono_ns))
    }

    /// See [`crate::driver::Gone`].
    pub fn append_gone(&mut self, g: crate::driver::Gone) -> Result<(), JournalError> {
        self.append_to_block(record_type::GONE, &super::format::encode_gone(g))
    }

    fn append_to_block(&mut self, rtype: u16, payload: &[u8]) -> Result<(), JournalError> {
        if !self.options.compress {
            return self.append(rtype, &[payload]);
        }
        if payload.len() > MAX_PAYLOAD {
            return Err(JournalError::TooLarge {
                path: self.path.clone(),
                len: payload.len(),
            });
        }
        self.block.extend_from_slice(&rtype.to_le_bytes());
        self.block
            .extend_from_slice(&(payload.len() as u32).to_le_bytes());
        self.block.extend_from_slice(payload);
        if self.block.len() >= BLOCK_BYTES {
            self.write_block()?;
        }
        Ok(())
    }

    /// Compresses the open block into a `Block` frame. On failure its records are lost (not
    /// counted as dropped; the error is the caller's) and the block is never written twice.
    fn write_block(&mut self) -> Result<(), JournalError> {
        if self.block.is_empty() {
            return Ok(());
        }
        let raw = std::mem::take(&mut self.block);
        let mut compressed = std::mem::take(&mut self.compressed);
        compressed.clear();
        compressed.resize(lz4_flex::block::get_maximum_output_size(raw.len()), 0);
        let n = lz4_flex::block::compress_into(&raw, &mut compressed)
            .expect("the buffer has the maximum compressed size");
        compressed.truncate(n);
        let res = self.append(record_type::BLOCK, &[&block_header(raw.len()), &compressed]);
        self.block = raw;
        self.block.clear();
        self.compressed = compressed;
        res
    }

    /// Records what a cgroup was resolved to. Writing the same information again is a no-op;
    /// the writer repeats it at the start of later files (for up to 1024 cgroups).
    pub fn append_container(
        &mut self,
        cgroup_id: u64,
        info: &ContainerInfo,
    ) -> Result<(), JournalError> {
        self.write_block()?;
        let payload = container_payload(cgroup_id, info).map_err(|e| JournalError::Io {
            path: self.path.clone(),
            op: "serialise container info",
            source: e.into(),
        })?;
        if self
            .containers
            .get(&cgroup_id)
            .is_some_and(|(_, p)| *p == payload)
        {
            return Ok(());
        }
        self.append(record_type::CONTAINER, &[&payload])?;
        self.remember_payload(cgroup_id, payload);
        Ok(())
    }

    /// Appends free text (e.g. "agent stopping").
    pub fn append_note(&mut self, text: &str) -> Result<(), JournalError> {
        self.write_block()?;
        self.append(record_type::NOTE, &[text.as_bytes()])
    }

    /// Hands buffered records to the kernel (the open block compressed first).
    pub fn flush(&mut self) -> Result<(), JournalError> {
        self.write_block()?;
        self.out
            .flush()
            .map_err(io_err(&self.path, "write the journal file"))
    }

    /// Flushes and waits until the data is on disk.
    pub fn sync(&mut self) -> Result<(), JournalError> {
        self.flush()?;
        self.out
            .get_ref()
            .sync_data()
            .map_err(io_err(&self.path, "sync the journal file"))
    }

    /// The current file was deleted (its link count is 0): what is written goes nowhere.
    pub fn file_removed(&self) -> bool {
        use std::os::unix::fs::MetadataExt;
        self.out.get_ref().metadata().is_ok_and(|m| m.nlink() == 0)
    }

    /// Starts a new file now (after a failure): the directory is created again if it went
    /// away; the new file starts with the session and the remembered containers.
    pub fn reopen(&mut self) -> Result<(), JournalError> {
        self.rotate()
    }

    /// Remembers a container for the start of later files without writing it now.
    pub fn remember_container(&mut self, cgroup_id: u64, info: &ContainerInfo) {
        if let Ok(payload) = container_payload(cgroup_id, info) {
            self.remember_payload(cgroup_id, payload);
        }
    }

    fn remember_payload(&mut self, cgroup_id: u64, payload: Vec<u8>) {
        if !self.containers.contains_key(&cgroup_id)
            && self.containers.len() >= MAX_REMEMBERED_CONTAINERS
        {
            let oldest = self
                .containers
                .iter()
                .min_by_key(|(_, (n, _))| *n)
                .map(|(id, _)| *id);
            if let Some(id) = oldest {
                self.containers.remove(&id);
            }
        }
        self.containers_added += 1;
        self.containers
            .insert(cgroup_id, (self.containers_added, payload));
    }

    fn append(&mut self, rtype: u16, parts: &[&[u8]]) -> Result<(), JournalError> {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        if len > MAX_PAYLOAD {
            return Err(JournalError::TooLarge {
                path: self.path.clone(),
                len,
            });
        }
        let frame_bytes = (FRAME_HEADER_LEN + len) as u64;
        if self.broken
            || (self.file_bytes + frame_bytes > self.options.max_file_bytes
                && self.file_bytes > self.preamble_bytes)
        {
            self.rotate()?;
        }
        if self.file_bytes - self.last_session >= SESSION_EVERY {
            self.write_session()?;
        }
        self.write_frame(rtype, parts)
    }

    /// The wall clock moved (a step, or a slew that added up): records from now on are timed
    /// with `offset_ns`. The open block (timed with the old offset) is written first, then
    /// the session frame with the new one, which times what follows in a replay.
    pub fn set_clock(&mut self, offset_ns: i64) -> Result<(), JournalError> {
        if self.session.clock_offset_ns == offset_ns {
            return Ok(());
        }
        self.session.clock_offset_ns = offset_ns;
        self.write_block()?;
        self.write_session()
    }

    /// The session frame, again: a file whose head is damaged loses at most what comes
    /// before the next copy.
    fn write_session(&mut self) -> Result<(), JournalError> {
        let mut scratch = std::mem::take(&mut self.scratch);
        encode_session(&self.session, &mut scratch);
        self.last_session = self.file_bytes;
        let res = self.write_frame(record_type::SESSION, &[&scratch]);
        self.scratch = scratch;
        res
    }

    fn write_frame(&mut self, rtype: u16, parts: &[&[u8]]) -> Result<(), JournalError> {
        let header = frame_header(rtype, parts);
        let mut res = self.out.write_all(&header);
        for p in parts {
            res = res.and_then(|()| self.out.write_all(p));
        }
        if let Err(e) = res {
            self.broken = true;
            return Err(io_err(&self.path, "write the journal file")(e));
        }
        self.file_bytes += header.len() as u64 + parts.iter().map(|p| p.len() as u64).sum::<u64>();
        Ok(())
    }

    /// Writes the file header, the session and the remembered containers to a new file.
    fn write_preamble(&mut self) -> Result<(), JournalError> {
        let header = file_header();
        if let Err(e) = self.out.write_all(&header) {
            self.broken = true;
            return Err(io_err(&self.path, "write the journal file")(e));
        }
        self.file_bytes = header.len() as u64;
        self.write_session()?;
        let mut containers: Vec<_> = self.containers.values().collect();
        containers.sort_by_key(|(n, _)| *n);
        let payloads: Vec<Vec<u8>> = containers.into_iter().map(|(_, p)| p.clone()).collect();
        for p in &payloads {
            self.write_frame(record_type::CONTAINER, &[p])?;
        }
        self.preamble_bytes = self.file_bytes;
        Ok(())
    }

    fn rotate(&mut self) -> Result<(), JournalError> {
        if let Err(e) = self.out.flush() {
            tracing::warn!(path = %self.path.display(), error = %e, "journal: flushing before rotation failed");
        }
        if !self.dir.is_dir() {
            // Removed under us: made again, and locked again (the old lock went with it).
            super::dir::prepare(&self.dir)?;
            self.lock = super::dir::lock(&self.dir)?;
        }
        let (path, file, seq, secs) = create_file(&self.dir, self.last_name_secs, self.next_seq)?;
        self.next_seq = seq + 1;
        self.last_name_secs = secs;
        let old = std::mem::replace(
            &mut self.out,
            BufWriter::with_capacity(WRITE_BUFFER_BYTES, file),
        );
        // Anything the failed flush left behind is only more of the old file's tail.
        drop(old);
        self.path = path;
        self.broken = false;
        self.write_preamble()?;
        self.prune()
    }

    /// Deletes the oldest journal files until the directory's journal files, the current one
    /// counted at `max_file_bytes`, fit in `max_total_bytes`.
    fn prune(&mut self) -> Result<(), JournalError> {
        let entries =
            fs::read_dir(&self.dir).map_err(io_err(&self.dir, "list the journal directory"))?;
        let mut ours: Vec<(String, PathBuf, u64)> = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            if !is_writer_name(&name) || path == self.path {
                continue;
            }
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_file() && has_magic(&path) {
                ours.push((name, path, meta.len()));
            }
        }
        ours.sort();
        let mut total: u64 = ours.iter().map(|(_, _, len)| len).sum::<u64>()
            + self.options.max_file_bytes.max(self.file_bytes);
        for (_, path, len) in ours {
            if total <= self.options.max_total_bytes {
                break;
            }
            match fs::remove_file(&path) {
                Ok(()) => total -= len,
                Err(e) if e.kind() == ErrorKind::NotFound => total -= len,
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "journal: cannot delete an old file")
                }
            }
        }
        Ok(())
    }
}

impl Drop for JournalWriter {
    /// The open block is written out (the buffered writer then flushes itself).
    fn drop(&mut self) {
        if let Err(e) = self.write_block() {
            tracing::warn!("journal: writing the last block failed: {e}");
        }
    }
}

fn has_magic(path: &Path) -> bool {
    let mut head = [0u8; 8];
    File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok()
        && head == MAGIC
}

/// The (stamp, next sequence number) a new file's name must not sort before: the newest
/// writer name in `dir`, so that files sort in the order they were written across agent
/// restarts, even when the clock went back in between. (0, 0) for an empty directory.
fn newest_name(dir: &Path) -> (u64, u32) {
    let Ok(entries) = fs::read_dir(dir) else {
        return (0, 0);
    };
    entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let rest = name.strip_prefix("sigtrace-")?.strip_suffix(".journal")?;
            let (stamp, seq) = rest.split_once('-')?;
            if !has_magic(&e.path()) {
                return None;
            }
            Some((
                crate::event::parse_utc_stamp(stamp)?,
                seq.parse::<u32>().ok()?.saturating_add(1),
            ))
        })
        .max()
        .unwrap_or((0, 0))
}

/// Creates a new file named from the current time (never earlier than `min_secs`, so names
/// sort in creation order even if the clock steps back) and the first free sequence number
/// from `seq`.
fn create_file(
    dir: &Path,
    min_secs: u64,
    mut seq: u32,
) -> Result<(PathBuf, File, u32, u64), JournalError> {
    let secs = now_secs().max(min_secs);
    let stamp = utc_stamp(secs);
    loop {
        let path = dir.join(format!("sigtrace-{stamp}-{seq:06}.journal"));
        match super::dir::create_file(&path) {
            Ok(file) => return Ok((path, file, seq, secs)),
            Err(e) if e.kind() == ErrorKind::AlreadyExists && seq < 999_999 => seq += 1,
            Err(e) => return Err(io_err(&path, "create the journal file")(e)),
        }
    }
}
