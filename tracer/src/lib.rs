//! sigtrace userspace agent: event source (aya) → decode → correlate → sinks.
//!
//! - [`source`]: loads and attaches the kernel programs, reads the ring buffer (the only
//!   module that uses aya).
//! - [`decode`] and [`event`]: kernel bytes → typed events.
//! - [`engine`]: the pure correlation engine (events → shutdown records with diagnoses).
//! - [`container`]: cgroup → container → pod attribution.
//! - [`journal`]: the on-disk record of raw events, and its replay.
//! - sinks: [`output`] (terminal and JSON).
pub mod agent;
pub mod app;
pub mod btf;
pub mod cli;
pub mod container;
pub mod decode;
pub mod doctor;
pub mod engine;
pub mod event;
pub mod journal;
pub mod logging;
pub mod metrics;
pub mod output;
pub mod patch;
pub mod pipeline;
pub mod source;
