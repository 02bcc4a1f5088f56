//! Privileged end-to-end tests of sigtrace.
