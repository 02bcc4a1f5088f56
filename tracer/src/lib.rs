//! sigtrace userspace agent: event source (aya) → decode → correlate → sinks.
pub mod btf;
pub mod decode;
pub mod event;
pub mod source;
