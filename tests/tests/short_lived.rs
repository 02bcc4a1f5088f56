//! End-to-end: containers that live 50 ms (a crash loop, a failed start) are attributed. Each
//! is a runc container (its own cgroup and PID namespace) stopped 50 ms after `runc run -d`
//! returned, with `runc kill TERM` (its init handles it) or `runc kill KILL`, then deleted at
//! once. The agent is held stopped (SIGSTOP) while they run, the worst case of an agent that
//! reads late: when it reads their events, every one of their cgroups is gone. It must still
//! give each a `container_stop` with its id: it knows the cgroup from the kernel's record of its
//! creation.
use std::{collections::BTreeMap, time::Duration};

use tests::{records::*, runc::RuncContainer, *};

/// Containers started; at least [`NEEDED`] must be attributed.
const RUNS: u64 = 50;
const NEEDED: usize = 48;

#[test]
fn runc_containers_living_50_ms_are_attributed() {
    let agent = agent(&[]);
    // Resumed when the test ends, whatever happens.
    let held = Held::stop(agent.pid());
    let parent = format!("/sigtrace-short-{}", std::process::id());
    let mut ids = Vec::new();
    for i in 0..RUNS {
        let id = hex_id(100 + i);
        let cgroups_path = format!("{parent}/{id}");
        let (args, sig): (&[&str], &str) = if i % 2 == 0 {
            (&["/bin/victim", "--handle", "TERM:0:0"], "TERM")
        } else {
            (&["/bin/victim"], "KILL")
        };
        let mut ctr = RuncContainer::run("k8s.io", &id, &cgroups_path, &BTreeMap::new(), args);
        std::thread::sleep(Duration::from_millis(50));
        ctr.kill(sig);
        assert!(
            wait_until(Duration::from_secs(5), || !pid_alive(ctr.pid)),
            "container {id} did not end on SIG{sig}"
        );
        ctr.delete();
        ids.push((id, sig));
    }
    drop(held);
    let stop_of = |lines: &[serde_json::Value], id: &str| {
        lines
            .iter()
            .find(|l| l["type"] == "container_stop" && l["container"]["id"] == id)
            .cloned()
    };
    wait_until(Duration::from_secs(20), || {
        let lines = agent.lines();
        ids.iter().all(|(id, _)| stop_of(&lines, id).is_some())
    });
    let lines = agent.lines();
    let mut missing = Vec::new();
    for (id, sig) in &ids {
        let Some(rec) = stop_of(&lines, id) else {
            missing.push(id.clone());
            continue;
        };
        assert_eq!(
            rec["container"]["cgroup_path"],
            format!("{parent}/{id}"),
            "{rec:#}"
        );
        assert!(rec.to_string().contains(&format!("SIG{sig}")), "{rec:#}");
    }
    assert!(
        ids.len() - missing.len() >= NEEDED,
        "{} of {RUNS} short-lived containers without a container_stop: {missing:?}\nagent stderr: {}",
        missing.len(),
        agent.stderr()
    );
}

/// A process held with SIGSTOP until dropped (SIGCONT).
struct Held(u32);

impl Held {
    fn stop(pid: u32) -> Self {
        kill(pid, libc::SIGSTOP);
        Self(pid)
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        kill(self.0, libc::SIGCONT);
    }
}
