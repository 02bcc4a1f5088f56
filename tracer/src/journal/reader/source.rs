//! The reader as the driver's [`Source`]: frames become inputs, damage is bad input.
use super::{Found, JournalReader};
use crate::driver::{FeedError, Input, Source};
use crate::journal::JournalError;

/// The journal as the driver's source: kernel, lost and container frames become inputs (each
/// kernel record with its session's clock), and so is each new session; damage is bad input;
/// repeated session frames and notes give nothing more.
impl Source for JournalReader {
    fn next(&mut self) -> Option<Result<Input<'_>, anyhow::Error>> {
        let (offset, found) = loop {
            let (offset, found) = match self.advance()? {
                Err(e) => return Some(Err(e.into())),
                Ok((_, Found::Note(_))) => continue,
                Ok((_, Found::Session)) => {
                    let current = self.file.as_ref().and_then(|f| f.session.as_ref());
                    if current.is_none() || current == self.session.as_ref() {
                        continue;
                    }
                    self.session = current.cloned();
                    return Some(Ok(Input::Session(self.session.as_ref()?)));
                }
                Ok(x) => x,
            };
            let file = self.file.as_mut()?;
            if file.clock.is_none() && matches!(found, Found::Kernel(_) | Found::BlockKernel(_)) {
                // Before any intact session frame: these cannot be timed. One error a file.
                self.stats.untimed += 1;
                if file.untimed_reported {
                    continue;
                }
                file.untimed_reported = true;
                return Some(Err(JournalError::NoSession {
                    path: file.path.to_path_buf(),
                    offset,
                }
                .into()));
            }
            break (offset, found);
        };
        self.last_offset = offset;
        if let Found::Warning(w) = found {
            return Some(Ok(Input::Warning(self.warning.insert(w))));
        }
        let clock = self.file.as_ref()?.clock;
        Some(Ok(match found {
            Found::Kernel(r) => Input::Kernel(&self.buf[r], clock),
            Found::BlockKernel(r) => Input::Kernel(&self.block[r], clock),
            Found::Lost { count, mono_ns } => Input::Lost { count, mono_ns },
            Found::Gone(g) => Input::Gone(g),
            Found::Container(cgroup_id) => Input::Container {
                cgroup_id,
                info: &self.container,
            },
            Found::Session | Found::Note(_) | Found::Warning(_) => unreachable!("handled above"),
        }))
    }

    fn locate(&self, e: FeedError) -> anyhow::Error {
        let path = self
            .file
            .as_ref()
            .map(|f| f.path.to_path_buf())
            .unwrap_or_default();
        let offset = self.last_offset;
        match e {
            FeedError::Decode(source) => JournalError::Decode {
                path,
                offset,
                source,
            }
            .into(),
            FeedError::NoClock => JournalError::NoSession { path, offset }.into(),
            FeedError::Output(e) => e,
        }
    }
}
