//! The thread-side journal ([`Keeper`]): a [`JournalWriter`] that never stops the agent. A write
//! error (disk full, data dir removed, too many open files) *suspends* the journal: the record
//! is dropped and counted, one warning says so, and tracing, printing and metrics go on. Every
//! [`RETRY`] the journal tries a new file (recreating the directory if it went away); when that
//! works it is *resumed*, one line says so, and a note in the new file tells how many records
//! were lost meanwhile. It runs on the journal's own thread ([`super::live`]).
use std::time::{Duration, Instant};

use super::{JournalError, JournalWriter};
use crate::container::ContainerInfo;

/// How often a suspended journal tries again.
pub const RETRY: Duration = Duration::from_secs(1);

pub struct Keeper {
    writer: JournalWriter,
    /// How often a suspended journal tries again ([`RETRY`]).
    retry: Duration,
    /// Since when, and why, the journal is suspended.
    suspended: Option<(Instant, String)>,
    errors: u64,
    dropped: u64,
    dropped_since_suspended: u64,
}

impl Keeper {
    pub fn new(writer: JournalWriter) -> Self {
        Self {
            writer,
            retry: RETRY,
            suspended: None,
            errors: 0,
            dropped: 0,
            dropped_since_suspended: 0,
        }
    }

    /// (suspended, failed writes and reopenings, records dropped while suspended).
    pub fn state(&self) -> (bool, u64, u64) {
        (self.suspended.is_some(), self.errors, self.dropped)
    }

    /// The wall clock's new offset ([`JournalWriter::set_clock`]).
    pub fn set_clock(&mut self, offset_ns: i64) {
        self.write(|w| w.set_clock(offset_ns));
    }

    /// A note in the journal (written like a record: dropped while suspended).
    pub fn append_note(&mut self, text: &str) {
        self.write(|w| w.append_note(text));
    }

    fn write(&mut self, f: impl FnOnce(&mut JournalWriter) -> Result<(), JournalError>) {
        if self.suspended.is_some() {
            self.dropped += 1;
            self.dropped_since_suspended += 1;
            return;
        }
        if let Err(e) = f(&mut self.writer) {
            self.fail(e);
            self.dropped += 1;
            self.dropped_since_suspended += 1;
        }
    }

    fn fail(&mut self, e: JournalError) {
        self.errors += 1;
        let why = e.to_string();
        if self.suspended.is_none() {
            tracing::warn!(
                "journal suspended: {why}; tracing goes on, the journal retries every {} s",
                RETRY.as_secs()
            );
        }
        self.suspended = Some((Instant::now(), why));
    }

    pub fn append_kernel(&mut self, bytes: &[u8]) {
        self.write(|w| w.append_kernel(bytes));
    }

    pub fn append_lost(&mut self, count: u64, mono_ns: u64) {
        self.write(|w| w.append_lost(count, mono_ns));
    }

    pub fn append_gone(&mut self, g: crate::driver::Gone) {
        self.write(|w| w.append_gone(g));
    }

    /// A container's attribution. Remembered even while suspended: a resumed journal's new
    /// file starts with it.
    pub fn append_container(&mut self, cgroup_id: u64, info: &ContainerInfo) {
        if self.suspended.is_some() {
            self.writer.remember_container(cgroup_id, info);
        }
        self.write(|w| w.append_container(cgroup_id, info));
    }

    /// Time passes: flushes (and starts a new file if the current one was deleted), or, while
    /// suspended, tries a new file once the retry time has passed.
    pub fn tick(&mut self) {
        match &self.suspended {
            None => {
                let result = if self.writer.file_removed() {
                    tracing::warn!(
                        "journal file {} was removed: starting a new one",
                        self.writer.path().display()
                    );
                    self.writer.reopen()
                } else {
                    self.writer.flush()
                };
                if let Err(e) = result {
                    self.fail(e);
                }
            }
            Some((since, _)) if since.elapsed() >= self.retry => match self.writer.reopen() {
                Ok(()) => {
                    let lost = self.dropped_since_suspended;
                    tracing::info!(
                        "journal resumed in {} ({lost} records not journaled while suspended)",
                        self.writer.path().display()
                    );
                    self.suspended = None;
                    self.dropped_since_suspended = 0;
                    let note = format!("journal resumed; {lost} records were not journaled");
                    if let Err(e) = self.writer.append_note(&note) {
                        self.fail(e);
                    }
                }
                Err(e) => {
                    self.errors += 1;
                    tracing::debug!("journal still suspended: {e}");
                    self.suspended = Some((Instant::now(), e.to_string()));
                }
            },
            Some(_) => {}
        }
    }

    /// End of the run: flushed and synced if it is up.
    pub fn finish(&mut self) {
        if self.suspended.is_none() {
            if let Err(e) = self.writer.sync() {
                self.fail(e);
            }
        }
    }

    #[cfg(test)]
    pub fn writer(&self) -> &JournalWriter {
        &self.writer
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::{JournalOptions, JournalReader, ReaderOptions, SessionInfo};

    fn live(dir: &std::path::Path) -> Keeper {
        let w = JournalWriter::open(dir, JournalOptions::default(), SessionInfo::default())
            .expect("journal");
        Keeper {
            retry: Duration::ZERO,
            ..Keeper::new(w)
        }
    }

    fn notes(dir: &std::path::Path) -> Vec<String> {
        let mut r = JournalReader::new([dir], ReaderOptions::default());
        let mut out = Vec::new();
        while let Some(item) = r.next_item() {
            if let Ok(crate::journal::Item {
                kind: crate::journal::ItemKind::Frame(crate::journal::Frame::Note(n)),
                ..
            }) = item
            {
                out.push(n.to_string());
            }
        }
        out
    }

    /// The data dir removed under the agent: the next tick starts a new file in a new one.
    #[test]
    fn a_removed_directory_is_made_again() {
        let top = tempfile::tempdir().expect("temp dir");
        let dir = top.path().join("j");
        let mut j = live(&dir);
        j.append_kernel(b"first");
        std::fs::remove_dir_all(&dir).expect("rm -r");
        j.tick();
        assert!(!j.state().0, "{:?}", j.suspended);
        j.append_kernel(b"second");
        j.finish();
        assert!(j.writer().path().exists());
        assert_eq!(j.state().1, 0);
    }

    /// A write error suspends the journal (counted, the agent goes on); once writing works
    /// again it resumes by itself, with a note of what was lost.
    #[test]
    fn a_failing_journal_is_suspended_then_resumes() {
        let top = tempfile::tempdir().expect("temp dir");
        let dir = top.path().join("j");
        let mut j = live(&dir);
        // The directory is replaced by a file: no new journal file can be made.
        std::fs::remove_dir_all(&dir).expect("rm -r");
        std::fs::write(&dir, b"in the way").expect("blocker");
        j.tick();
        assert!(j.state().0);
        let errors = j.state().1;
        assert!(errors >= 1);
        j.append_kernel(b"lost");
        j.append_lost(3, 42);
        assert_eq!(j.state().2, 2);
        j.tick(); // still failing: counted, not fatal
        assert!(j.state().0);
        assert!(j.state().1 > errors);
        std::fs::remove_file(&dir).expect("rm");
        j.tick();
        assert!(!j.state().0);
        j.finish();
        let notes = notes(&dir);
        assert!(
            notes
                .iter()
                .any(|n| n.contains("2 records were not journaled")),
            "{notes:?}"
        );
    }
}
