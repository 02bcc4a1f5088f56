//! One file per kernel hook, each with its handler and its three entry points
//! ([`crate::probe!`]); the hooks and their program names are listed in
//! `tracer_common::HOOKS`.
mod cgroup_mkdir;
mod oom;
mod process_exec;
mod process_exit;
mod signal_deliver;
mod signal_generate;
