//! The live agent's journal ([`LiveJournal`]): records are batched on the tracing thread and
//! written by the journal's own thread ("sigtrace-journal", a [`Keeper`]) behind a bounded
//! queue, so a disk that stops answering (a hung network filesystem, a frozen filesystem)
//! never blocks tracing, metrics or the printed output.
//!
//! When the queue is full the writer is *stalled*: further batches are dropped and counted
//! (`dropped_stalled`; a container's attribution is kept for the next batch, so a later file
//! still knows it), the journal reads as down, one warning says so. When a batch is accepted
//! again one line says so and a note in the journal tells how many records were lost.
//! [`LiveJournal::finish`] waits for the writer at most [`FINISH_WAIT`].
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::keeper::Keeper;
use super::JournalWriter;
use crate::container::ContainerInfo;

/// Bytes of kernel records gathered before a batch goes to the writer (else at each tick).
const BATCH_BYTES: usize = 64 << 10;
/// Batches the queue holds: at most about 1 MiB waiting for a slow disk.
const QUEUE_BATCHES: usize = 16;
/// How long the end of a run waits for the writer to finish.
pub const FINISH_WAIT: Duration = Duration::from_secs(2);

/// The journal's state, for the metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LiveJournalStats {
    /// Being written now: neither suspended after an error nor stalled.
    pub up: bool,
    /// Failed writes and failed reopenings, in all.
    pub errors: u64,
    /// Records not written while suspended after a write error.
    pub dropped: u64,
    /// Records dropped because the writer did not keep up (a disk that does not answer).
    pub dropped_stalled: u64,
}

enum Entry {
    /// A kernel record of this many bytes of the batch's `bytes`.
    Kernel(u32),
    Lost {
        count: u64,
        mono_ns: u64,
    },
    Container(u64, Box<ContainerInfo>),
    Gone(crate::driver::Gone),
    Note(String),
    /// The wall clock's new offset.
    Clock(i64),
}

#[derive(Default)]
struct Batch {
    bytes: Vec<u8>,
    entries: Vec<Entry>,
}

impl Batch {
    /// Records (not attributions or notes) in it.
    fn records(&self) -> u64 {
        self.entries
            .iter()
            .filter(|e| matches!(e, Entry::Kernel(_) | Entry::Lost { .. } | Entry::Gone(_)))
            .count() as u64
    }
}

enum Msg {
    Batch(Batch),
    Tick,
    Finish,
}

/// What the writer thread shares with the handle.
#[derive(Default)]
struct Shared {
    suspended: AtomicBool,
    errors: AtomicU64,
    dropped: AtomicU64,
}

pub struct LiveJournal {
    batch: Batch,
    tx: SyncSender<Msg>,
    done: Receiver<()>,
    shared: Arc<Shared>,
    dropped_stalled: u64,
    /// Since when batches are dropped, and how many records so far.
    stalled: Option<(Instant, u64)>,
}

impl LiveJournal {
    /// Starts the writer thread on `writer`.
    pub fn new(writer: JournalWriter) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::sync_channel(QUEUE_BATCHES);
        let (done_tx, done) = mpsc::channel();
        let shared = Arc::new(Shared::default());
        let s = shared.clone();
        std::thread::Builder::new()
            .name("sigtrace-journal".into())
            .spawn(move || {
                write_loop(Keeper::new(writer), &rx, &s);
                let _ = done_tx.send(());
            })?;
        Ok(Self {
            batch: Batch::default(),
            tx,
            done,
            shared,
            dropped_stalled: 0,
            stalled: None,
        })
    }

    pub fn stats(&self) -> LiveJournalStats {
        LiveJournalStats {
            up: !self.shared.suspended.load(Ordering::Relaxed) && self.stalled.is_none(),
            errors: self.shared.errors.load(Ordering::Relaxed),
            dropped: self.shared.dropped.load(Ordering::Relaxed),
            dropped_stalled: self.dropped_stalled,
        }
    }

    pub fn append_kernel(&mut self, bytes: &[u8]) {
        let Ok(len) = u32::try_from(bytes.len()) else {
            return;
        };
        self.batch.bytes.extend_from_slice(bytes);
        self.batch.entries.push(Entry::Kernel(len));
        if self.batch.bytes.len() >= BATCH_BYTES {
            self.send();
        }
    }

    pub fn append_lost(&mut self, count: u64, mono_ns: u64) {
        self.batch.entries.push(Entry::Lost { count, mono_ns });
    }

    /// See [`crate::driver::Gone`].
    pub fn append_gone(&mut self, g: crate::driver::Gone) {
        self.batch.entries.push(Entry::Gone(g));
    }

    /// A container's attribution (kept through a stall, so the journal still has it later).
    pub fn append_container(&mut self, cgroup_id: u64, info: &ContainerInfo) {
        self.batch
            .entries
            .push(Entry::Container(cgroup_id, Box::new(info.clone())));
    }

    /// The wall clock moved: the records from now on are timed with `offset_ns`.
    pub fn set_clock(&mut self, offset_ns: i64) {
        self.batch.entries.push(Entry::Clock(offset_ns));
    }

    /// Time passes: the batch goes to the writer, which flushes.
    pub fn tick(&mut self) {
        self.send();
        let _ = self.tx.try_send(Msg::Tick);
    }

    /// End of the run: the last batch, then the writer flushes and syncs; waits at most
    /// [`FINISH_WAIT`] for it.
    pub fn finish(&mut self) {
        let deadline = Instant::now() + FINISH_WAIT;
        self.send();
        let mut msg = Msg::Finish;
        loop {
            match self.tx.try_send(msg) {
                Ok(()) => break,
                Err(TrySendError::Full(m)) if Instant::now() < deadline => {
                    msg = m;
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(_) => {
                    tracing::warn!(
                        "the journal's writer did not take the end of the run within {} s: \
                         what it had not written is lost",
                        FINISH_WAIT.as_secs()
                    );
                    return;
                }
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if self.done.recv_timeout(left).is_err() {
            tracing::warn!(
                "the journal's writer did not finish within {} s (a disk that does not \
                 answer?): its last records may be lost",
                FINISH_WAIT.as_secs()
            );
        }
    }

    /// Hands the batch to the writer, or drops it (counted) when the writer is stalled.
    fn send(&mut self) {
        if self.batch.entries.is_empty() {
            return;
        }
        if let Some((since, lost)) = self.stalled {
            let note = format!(
                "journal writes stalled for {:.1} s; {lost} records were dropped",
                since.elapsed().as_secs_f64()
            );
            self.batch.entries.insert(0, Entry::Note(note));
        }
        let batch = std::mem::take(&mut self.batch);
        match self.tx.try_send(Msg::Batch(batch)) {
            Ok(()) => {
                if let Some((since, lost)) = self.stalled.take() {
                    tracing::info!(
                        "journal writes resumed after {:.1} s ({lost} records dropped meanwhile)",
                        since.elapsed().as_secs_f64()
                    );
                }
            }
            Err(TrySendError::Full(Msg::Batch(b)) | TrySendError::Disconnected(Msg::Batch(b))) => {
                let n = b.records();
                self.dropped_stalled += n;
                match &mut self.stalled {
                    Some((_, lost)) => *lost += n,
                    None => {
                        tracing::warn!(
                            "journal writes stalled (the disk does not answer): records are \
                             dropped and counted, tracing goes on"
                        );
                        self.stalled = Some((Instant::now(), n));
                    }
                }
                // Attributions and the clock are kept for the next batch.
                self.batch.entries.extend(
                    b.entries
                        .into_iter()
                        .filter(|e| matches!(e, Entry::Container(..) | Entry::Clock(_))),
                );
            }
            Err(_) => {}
        }
    }
}

/// The writer thread: batches in order until `Finish` or the handle is gone.
fn write_loop(mut keeper: Keeper, rx: &Receiver<Msg>, shared: &Shared) {
    while let Ok(msg) = rx.recv() {
        match msg {
            Msg::Batch(b) => {
                let mut at = 0usize;
                for e in b.entries {
                    match e {
                        Entry::Kernel(len) => {
                            let end = at + len as usize;
                            keeper.append_kernel(&b.bytes[at..end]);
                            at = end;
                        }
                        Entry::Lost { count, mono_ns } => keeper.append_lost(count, mono_ns),
                        Entry::Container(cg, info) => keeper.append_container(cg, &info),
                        Entry::Gone(g) => keeper.append_gone(g),
                        Entry::Note(n) => keeper.append_note(&n),
                        Entry::Clock(offset) => keeper.set_clock(offset),
                    }
                }
            }
            Msg::Tick => keeper.tick(),
            Msg::Finish => {
                keeper.finish();
                publish(&keeper, shared);
                return;
            }
        }
        publish(&keeper, shared);
    }
    keeper.finish();
}

fn publish(keeper: &Keeper, shared: &Shared) {
    let (suspended, errors, dropped) = keeper.state();
    shared.suspended.store(suspended, Ordering::Relaxed);
    shared.errors.store(errors, Ordering::Relaxed);
    shared.dropped.store(dropped, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::{JournalOptions, SessionInfo};

    fn open(dir: &std::path::Path) -> LiveJournal {
        let w = JournalWriter::open(dir, JournalOptions::default(), SessionInfo::default())
            .expect("journal");
        LiveJournal::new(w).expect("writer thread")
    }

    /// A writer that does not take batches: the handle drops them (counted), keeps the
    /// attributions, and says the journal is down; when batches go through again it is up.
    #[test]
    fn a_stalled_writer_drops_and_counts_then_resumes() {
        let top = tempfile::tempdir().expect("temp dir");
        let mut j = open(top.path());
        // Stand-in for a writer stuck in write(): a queue nobody empties.
        let (tx, rx) = mpsc::sync_channel(1);
        let real = std::mem::replace(&mut j.tx, tx);
        j.append_kernel(b"first");
        j.tick(); // fills the one slot (the Tick does not fit)
        j.append_container(7, &ContainerInfo::default());
        j.append_kernel(b"second");
        j.append_lost(2, 9);
        j.tick();
        let s = j.stats();
        assert!(!s.up);
        assert_eq!(s.dropped_stalled, 2);
        assert!(matches!(
            j.batch.entries.as_slice(),
            [Entry::Container(7, _)]
        ));
        drop(rx);
        j.tx = real;
        j.append_kernel(b"third");
        j.tick();
        assert!(j.stats().up);
        assert!(j.stalled.is_none());
        j.finish();
    }
}
