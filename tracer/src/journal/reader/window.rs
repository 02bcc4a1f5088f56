//! The reader's bounded window over the current file: two frames' worth, refilled as the
//! frames are walked, and resynchronised after damage.
use std::io::Read;

use super::{JournalReader, OpenFile};
use crate::journal::format::{find_frame, FRAME_HEADER_LEN, MAX_PAYLOAD};
use crate::journal::JournalError;

/// The window holds at least this much after the current position while the file has more:
/// any frame fits.
const NEED: usize = FRAME_HEADER_LEN + MAX_PAYLOAD;
/// The window's size.
const WINDOW: usize = 2 * NEED;

/// Drops the window's bytes before `file.pos` and reads until the window is full or the file
/// ends.
pub(super) fn fill(buf: &mut Vec<u8>, file: &mut OpenFile) -> Result<(), JournalError> {
    let Some(source) = file.source.as_mut() else {
        return Ok(());
    };
    buf.drain(..file.pos);
    file.base += file.pos as u64;
    file.pos = 0;
    let want = WINDOW.saturating_sub(buf.len());
    let mut chunk = source.take(want as u64);
    let read = chunk.read_to_end(buf).map_err(|source| JournalError::Io {
        path: file.path.to_path_buf(),
        op: "read the journal file",
        source,
    })?;
    if read < want {
        file.source = None;
    }
    Ok(())
}

impl JournalReader {
    /// Makes sure a whole frame can be parsed at the current position.
    pub(super) fn refill(&mut self) -> Result<(), JournalError> {
        let Some(file) = self.file.as_mut() else {
            return Ok(());
        };
        if file.source.is_some() && self.buf.len() - file.pos < NEED {
            fill(&mut self.buf, file)?;
        }
        Ok(())
    }

    /// From damage at file offset `start` (the current position): moves to the next valid
    /// frame, reading on as needed, or to the end. Returns the damage's length and, when it
    /// runs to the end of the file, whether it is all zero bytes.
    pub(super) fn resync(&mut self, start: u64) -> Result<(u64, Option<bool>), JournalError> {
        let Some(file) = self.file.as_mut() else {
            return Ok((0, None));
        };
        let mut zeros = true;
        let mut from = file.pos + 1;
        loop {
            let at = find_frame(&self.buf, from);
            // A candidate needs a whole frame's bytes to be judged: read on from the damage.
            let enough = |at: usize| self.buf.len() - at >= NEED;
            match at {
                Some(at) if file.source.is_none() || enough(at) => {
                    let len = file.base + at as u64 - start;
                    file.pos = at;
                    return Ok((len, None));
                }
                _ if file.source.is_none() => {
                    zeros &= self.buf[file.pos..].iter().all(|&b| b == 0);
                    let len = file.base + self.buf.len() as u64 - start;
                    file.pos = self.buf.len();
                    file.done = true;
                    return Ok((len, Some(zeros)));
                }
                _ => {
                    // Keep the bytes a frame could still start in; drop the rest, read on.
                    let keep = at.unwrap_or(self.buf.len().saturating_sub(FRAME_HEADER_LEN));
                    let keep = keep.max(file.pos + 1);
                    zeros &= self.buf[file.pos..keep].iter().all(|&b| b == 0);
                    file.pos = keep;
                    from = fill(&mut self.buf, file).map(|()| 0)?;
                }
            }
        }
    }
}
