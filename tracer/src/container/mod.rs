//! Container attribution (in progress).
