//! Terminal and JSON sinks (in progress).
