//! Shutdown correlation engine (in progress).
