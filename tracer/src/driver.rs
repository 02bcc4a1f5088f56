//! The one road from a source of inputs to the pipeline: [`Input`] (what a source yields),
//! [`Source`] (implemented by the live ring-buffer reader and by the journal reader),
//! [`Consumer`] (implemented by the pipeline and by `--raw`) and [`drive`], the loop that
//! `run`, `replay` and the engine benchmark all use. "A replay gives exactly the live records"
//! holds because both feed the same consumer the same inputs through this loop.
use std::fmt::Display;

use anyhow::Result;
use thiserror::Error;

use crate::{container::ContainerInfo, decode::Clock, decode::DecodeError};

/// Counters of the live source, handed to the consumer with every tick.
#[derive(Clone, Debug, Default)]
pub struct LiveStats {
    pub kernel: crate::probes::KernelStats,
    /// Kernel records taken out of the ring buffer.
    pub records_read: u64,
}

/// The process (`pid`, `start_ns`) of a stop in progress was found gone at `mono_ns`, its
/// exit never traced (lost, or before the hooks were attached): the live run closed the stop
/// without a record, and journals it so that a replay does the same.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gone {
    pub pid: u32,
    pub start_ns: u64,
    pub mono_ns: u64,
}

/// One thing a source yields.
pub enum Input<'a> {
    /// A kernel record, exactly as the ring buffer gave it, with the clock of the session that
    /// recorded it (`None` live, where the consumer knows its clock; `None` in a journal file
    /// whose session frame is missing).
    Kernel(&'a [u8], Option<Clock>),
    /// The kernel dropped `count` records (ring buffer full), noticed at `mono_ns`.
    Lost { count: u64, mono_ns: u64 },
    /// A recorded finding of the live run (replay): a process of a stop in progress was gone
    /// without a traced exit.
    Gone(Gone),
    /// What a cgroup was resolved to when it was recorded (replay).
    Container {
        cgroup_id: u64,
        info: &'a ContainerInfo,
    },
    /// Time passes (live only): timers, flushing and health.
    Tick {
        now_mono_ns: u64,
        stats: &'a LiveStats,
    },
    /// A recorded session begins (replay only): what shaped its records.
    Session(&'a crate::journal::SessionInfo),
    /// Something wrong with the input that still let the source go on (replay only).
    Warning(&'a dyn Display),
}

/// Why a consumer could not take an input.
#[derive(Debug, Error)]
pub enum FeedError {
    /// The input is bad: skipped (and counted, or fatal under `--strict`).
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// A kernel record came before any clock: its time is unknown. Skipped like bad input.
    #[error("kernel record before any session record: its time is unknown")]
    NoClock,
    /// The consumer's own output failed: fatal.
    #[error(transparent)]
    Output(#[from] anyhow::Error),
}

/// A stream of inputs: the live ring buffer, or journal files.
pub trait Source {
    /// The next input; `None` at the end of the stream. An `Err` is bad input the source could
    /// skip: the driver reports it and asks for the next input (unless strict).
    fn next(&mut self) -> Option<Result<Input<'_>, anyhow::Error>>;

    /// Says where the input last returned came from, for a consumer's complaint about it.
    fn locate(&self, e: FeedError) -> anyhow::Error {
        e.into()
    }
}

/// What takes the inputs.
pub trait Consumer {
    fn input(&mut self, input: Input<'_>) -> Result<(), FeedError>;
    /// End of the stream: everything pending out, everything flushed.
    fn finish(&mut self) -> Result<()>;
}

/// What the driver does with bad input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnBadInput {
    /// Stop with an error (`replay --strict`).
    Fail,
    /// Say each on stderr and go on (`replay`).
    ReportEach,
    /// Log the first, count the others, and go on (the live agent).
    ReportFirst,
}

/// What a drive went through.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Driven {
    /// Inputs taken from the source (bad ones included).
    pub inputs: u64,
    /// Bad inputs skipped.
    pub skipped: u64,
}

/// Feeds every input of `source` to `consumer`, then finishes it. A closed standard output
/// (`sigtrace | head`) ends the drive quietly.
pub fn drive(
    source: &mut dyn Source,
    consumer: &mut dyn Consumer,
    on_bad: OnBadInput,
) -> Result<Driven> {
    let mut d = Driven::default();
    let bad = |d: &mut Driven, e: anyhow::Error| -> Result<()> {
        d.skipped += 1;
        match on_bad {
            OnBadInput::Fail => Err(e.context("stopped at bad input (--strict)")),
            OnBadInput::ReportEach => {
                eprintln!("sigtrace: {e:#}; skipping it");
                Ok(())
            }
            OnBadInput::ReportFirst => {
                if d.skipped == 1 {
                    tracing::warn!("bad input ({e:#}); counting further ones silently");
                }
                Ok(())
            }
        }
    };
    while let Some(next) = source.next() {
        d.inputs += 1;
        let input = match next {
            Ok(i) => i,
            Err(e) => {
                bad(&mut d, e)?;
                continue;
            }
        };
        if let Input::Warning(w) = input {
            eprintln!("sigtrace: warning: {w}");
            continue;
        }
        match consumer.input(input) {
            Ok(()) => {}
            Err(FeedError::Output(e)) if is_broken_pipe(&e) => return Ok(d),
            Err(FeedError::Output(e)) => return Err(e),
            Err(e) => {
                let e = source.locate(e);
                bad(&mut d, e)?;
            }
        }
    }
    match consumer.finish() {
        Err(e) if is_broken_pipe(&e) => Ok(d),
        other => other.map(|()| d),
    }
}

/// Whether an error chain ends in EPIPE (the reader of standard output went away).
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            || c.downcast_ref::<serde_json::Error>()
                .is_some_and(|j| j.io_error_kind() == Some(std::io::ErrorKind::BrokenPipe))
    })
}
