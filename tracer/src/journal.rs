//! Event journal: record and replay (in progress).
