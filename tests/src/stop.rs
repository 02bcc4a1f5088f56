//! A runtime player: stops a process the way `docker stop -t GRACE` (or the kubelet) does —
//! the stop signal, a bounded wait for the process to die, then SIGKILL if it is still alive —
//! so that the end-to-end tests reproduce shutdown timelines without a container runtime.
//! The signals come from the test process itself (one sender for the stop signal and the
//! SIGKILL, as with a runtime).
use std::time::{Duration, Instant};

use crate::{kill, pid_alive, wait_until};

/// How long to wait for a process to die after the SIGKILL.
const AFTER_KILL: Duration = Duration::from_secs(10);

/// What happened when a process was stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StopOutcome {
    /// The process died within the grace period (no SIGKILL was sent).
    pub exited_in_grace: bool,
    /// The grace period ran out and SIGKILL was sent.
    pub killed: bool,
    /// The process is dead (or a zombie) now.
    pub dead: bool,
    /// From the stop signal until the process was seen dead (or until giving up).
    pub elapsed: Duration,
}

/// Sends `signal` to `pid`, waits up to `grace` for it to die (a zombie counts as dead), then
/// SIGKILLs it if it is still alive and waits (bounded) for that to take effect.
pub fn stop(pid: u32, signal: i32, grace: Duration) -> StopOutcome {
    let start = Instant::now();
    kill(pid, signal);
    let exited_in_grace = wait_until(grace, || !pid_alive(pid));
    let mut killed = false;
    if !exited_in_grace {
        kill(pid, libc::SIGKILL);
        killed = true;
    }
    let dead = exited_in_grace || wait_until(AFTER_KILL, || !pid_alive(pid));
    StopOutcome {
        exited_in_grace,
        killed,
        dead,
        elapsed: start.elapsed(),
    }
}
