//! sigtrace userspace agent: event source (aya) → decode → correlate → sinks.
//!
//! - [`source`] and [`live`]: load and attach the kernel programs, read the ring buffer (the
//!   only modules that use aya); [`journal`]: the on-disk record of kernel records, read back
//!   for a replay. Both are a [`driver::Source`] of inputs.
//! - [`driver`]: the one loop from a source to a consumer, for live runs and replays alike.
//! - [`pipeline`]: the consumer: [`decode`] (kernel bytes → [`event`]s), [`container`]
//!   attribution, [`engine`] (the pure correlation engine: events → shutdown records with
//!   diagnoses), and the sinks: [`output`] (terminal and JSON), [`journal`], [`metrics`].
//! - [`report`]: post-mortems over journals and record files (`report`, `summary`).
//! - [`app`]: the commands, with their options built once from the command line ([`cli`]).
pub mod app;
pub mod btf;
pub mod budget;
pub mod cli;
pub mod container;
pub mod decode;
pub mod doctor;
pub mod driver;
pub mod engine;
pub mod event;
pub mod filter;
pub mod http;
pub mod input;
pub mod journal;
pub mod live;
pub mod logging;
pub mod metrics;
pub mod output;
pub mod patch;
pub mod pipeline;
pub mod probes;
pub mod refusal;
pub mod report;
pub mod resume;
pub mod summary;

#[cfg(test)]
mod tests;
