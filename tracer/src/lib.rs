//! sigtrace userspace agent library.
