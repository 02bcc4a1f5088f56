//! Whether the processes of stops in progress are still alive (live runs only). An exit the
//! kernel side never reported (lost in a full ring buffer, or in the instant before the hooks
//! were attached) would leave its stop open until the episode timeout, then diagnosed from
//! half the picture (`signal_blocked`, `slow_handler`) though the process died long before.
//! Checked through `/proc`, and only where `/proc` shows the host's PID namespace (the pids of
//! kernel records are the host's).
use std::{
    collections::HashSet,
    fs,
    path::{Path, PathBuf},
};

/// How often the open stops are checked, in engine (monotonic) time.
const CHECK_EVERY_NS: u64 = 10_000_000_000;
/// A stop is checked once its first stop signal is this old: a fresh exit may still be on its
/// way through the ring buffer and the reorder window.
const MIN_AGE_NS: u64 = 10_000_000_000;

#[derive(Debug)]
pub struct Liveness {
    proc_root: PathBuf,
    last_check: u64,
    /// Found gone at the last check: (pid, start time). A process is declared gone only when
    /// two checks in a row miss it, so its exit record, if it comes, has had time to arrive.
    suspects: HashSet<(u32, u64)>,
}

impl Liveness {
    /// `None` (no checks) when `proc_root` is not the host's PID namespace: there the pids of
    /// kernel records mean other processes, or none.
    pub fn new(proc_root: &Path) -> Option<Self> {
        if !host_pid_namespace(proc_root) {
            tracing::info!(
                "{} is not the host's PID namespace: stops whose exit is never traced stay \
                 open until the episode timeout",
                proc_root.display()
            );
            return None;
        }
        Some(Self {
            proc_root: proc_root.to_owned(),
            last_check: 0,
            suspects: HashSet::new(),
        })
    }

    /// At engine time `now`, every [`CHECK_EVERY_NS`]: of the processes `open(before)` lists
    /// (those of stops whose first stop signal came before `before`), the ones missing from
    /// `/proc` at this check and at the previous one.
    pub fn check(
        &mut self,
        now: u64,
        open: impl FnOnce(u64) -> Vec<(u32, u64)>,
    ) -> Vec<(u32, u64)> {
        if now < self.last_check.saturating_add(CHECK_EVERY_NS) {
            return Vec::new();
        }
        self.last_check = now;
        let gone: HashSet<(u32, u64)> = open(now.saturating_sub(MIN_AGE_NS))
            .into_iter()
            .filter(|(pid, _)| !self.proc_root.join(pid.to_string()).exists())
            .collect();
        let confirmed = gone.intersection(&self.suspects).copied().collect();
        self.suspects = gone;
        confirmed
    }
}

impl Liveness {
    /// Of `open`, the processes missing from `/proc` now (at the end of a trace, when no exit
    /// can still be on its way).
    pub fn gone_now(&self, open: Vec<(u32, u64)>) -> Vec<(u32, u64)> {
        open.into_iter()
            .filter(|(pid, _)| !self.proc_root.join(pid.to_string()).exists())
            .collect()
    }
}

/// `/proc/self` under `proc_root` is this process, seen from the initial PID namespace: its
/// `NSpid` names one pid, ours.
fn host_pid_namespace(proc_root: &Path) -> bool {
    let Ok(status) = fs::read_to_string(proc_root.join("self/status")) else {
        return false;
    };
    let Some(line) = status.lines().find_map(|l| l.strip_prefix("NSpid:")) else {
        return false;
    };
    let pids: Vec<&str> = line.split_whitespace().collect();
    pids == [std::process::id().to_string().as_str()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_is_gone_after_two_checks_that_miss_it() {
        let dir = tempfile::tempdir().unwrap();
        let alive = 4242u32;
        fs::create_dir(dir.path().join(alive.to_string())).unwrap();
        let mut l = Liveness {
            proc_root: dir.path().to_owned(),
            last_check: 0,
            suspects: HashSet::new(),
        };
        let s = 1_000_000_000u64;
        let open = |before: u64| {
            assert!(before <= 100 * s);
            vec![(alive, 1), (777, 2)]
        };
        // First check: 777 is a suspect only; a check before the period is due does nothing.
        assert!(l.check(20 * s, open).is_empty());
        assert!(l.check(25 * s, |_| panic!("not due")).is_empty());
        assert_eq!(l.check(30 * s, open), vec![(777, 2)]);
        // A process seen again is no longer a suspect.
        fs::create_dir(dir.path().join("777")).unwrap();
        assert!(l.check(40 * s, open).is_empty());
        assert!(l.check(50 * s, open).is_empty());
    }

    #[test]
    fn this_process_proc_is_the_host_one_or_not() {
        // The test runner itself: whatever the namespace, the answer matches NSpid.
        let status = fs::read_to_string("/proc/self/status").unwrap();
        let nspid = status.lines().find(|l| l.starts_with("NSpid:")).unwrap();
        let host = nspid.split_whitespace().count() == 2;
        assert_eq!(host_pid_namespace(Path::new("/proc")), host);
        assert!(!host_pid_namespace(Path::new("/nonexistent")));
    }
}
