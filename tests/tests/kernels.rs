//! End-to-end: what every kernel of the matrix must get right (`cargo xtask vmtest` boots
//! Debian's 5.10, 6.1 and 6.12 in VMs and runs this file in each, once more with the raw
//! tracepoint fallback forced; `cargo xtask test` runs it on the host too). `doctor` passes
//! with every hook on the path the kernel should take, and each scenario — a graceful handler,
//! a PID-namespace init that ignores SIGTERM, a host process's default action, a shell init
//! that does not forward, a runtime-style exec into a namespace, an OOM kill — gives the right
//! records, proven on a named path ([`Agent::assert_path`]). The process scenarios share one
//! agent (starting one costs seconds on an emulated CPU); each is asserted on its own PIDs and
//! reported by name. Waits are long; assertions are on diagnoses and fields, never on timing.
use std::{
    fs,
    process::{Command, Stdio},
    time::Duration,
};

use serde_json::Value;
use tests::{stop::stop, *};

const T: Duration = Duration::from_secs(60);
const GRACE: Duration = Duration::from_secs(2);

/// Waits (bounded) for the `process_stop` record of `pid`.
fn record(agent: &Agent, pid: u32) -> Value {
    agent.process_stop(T, pid)
}

/// The record's signals named `sig`.
fn signals_named<'a>(rec: &'a Value, sig: &str) -> Vec<&'a Value> {
    rec["signals"]
        .as_array()
        .map(|a| a.iter().filter(|s| s["signal"] == sig).collect())
        .unwrap_or_default()
}

fn wait_comm(pid: u32, name: &str) {
    assert!(
        wait_until(T, || comm(pid) == name),
        "pid {pid} never became {name:?} (is {:?})",
        comm(pid)
    );
}

/// A named scenario, run against a live agent.
type Scenario = (&'static str, fn(&Agent));

/// The process scenarios, each against the same agent; every one runs, and the test names
/// those that failed.
#[test]
fn scenarios_give_the_right_records() {
    let agent = Agent::start(&["run", "--json"]);
    let path = agent.assert_path();
    let scenarios: [Scenario; 5] = [
        (
            "a handler that exits is graceful",
            a_handler_that_exits_is_graceful,
        ),
        (
            "a PID 1 without handler is ignored_by_pid1",
            a_pid1_without_handler_is_ignored_by_pid1,
        ),
        (
            "a host process without handler takes the default action",
            a_host_process_without_handler_takes_the_default_action,
        ),
        (
            "a shell PID 1 does not forward",
            a_shell_pid1_does_not_forward,
        ),
        ("an OOM kill is diagnosed", an_oom_kill_is_diagnosed),
    ];
    let mut failed = Vec::new();
    for (name, scenario) in scenarios {
        let ok =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| scenario(&agent))).is_ok();
        eprintln!(
            "scenario on {} ({path}): {name}: {}",
            kernel_release(),
            if ok { "ok" } else { "FAILED" }
        );
        if !ok {
            failed.push(name);
        }
    }
    assert!(
        failed.is_empty(),
        "scenarios failed on {} ({path}): {failed:?}; agent stderr:\n{}",
        kernel_release(),
        agent.stderr()
    );
}

#[test]
fn doctor_passes_with_every_hook_on_this_kernels_path() {
    let mut cmd = Command::new(sigtrace_bin());
    cmd.arg("doctor");
    let out = cmd.output().expect("running sigtrace doctor");
    let text = String::from_utf8_lossy(&out.stdout);
    eprintln!("{} doctor:\n{text}", kernel_release());
    assert!(out.status.success(), "doctor failed:\n{text}");
    for line in text.lines() {
        assert!(
            line.starts_with("PASS"),
            "not PASS on {}: {line}",
            kernel_release()
        );
    }
    let check = |name: &str| {
        text.lines()
            .find(|l| l.split_whitespace().nth(1) == Some(name))
            .unwrap_or_else(|| panic!("no {name} check:\n{text}"))
            .to_string()
    };
    // The `programs` check loads what `run` loads; doctor does not take the tests' forcing.
    let native = if kernel_path_is_raw() {
        "raw_tp"
    } else {
        "tp_btf"
    };
    let programs = check("programs");
    let fallback = check("raw-fallback");
    for hook in [
        "signal_generate",
        "signal_deliver",
        "sched_process_exit",
        "mark_victim",
        "sched_process_exec",
        "cgroup_mkdir",
    ] {
        assert!(
            programs.contains(&format!("{hook} ({native})")),
            "{hook} not on {native}: {programs}"
        );
        assert!(
            fallback.contains(&format!("{hook} (raw_tp)")),
            "{hook} not on raw_tp: {fallback}"
        );
    }
}

/// Before 5.11 (no `bpf_get_current_task_btf`) the raw tracepoints are the kernel's own path.
fn kernel_path_is_raw() -> bool {
    let release = kernel_release();
    let mut nums = release
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse::<u32>().ok());
    (nums.next().unwrap_or(0), nums.next().unwrap_or(0)) < (5, 11)
}

/// A host process whose SIGTERM handler exits 0.
fn a_handler_that_exits_is_graceful(agent: &Agent) {
    let mut v = Proc::victim(&["--handle", "TERM:0:100"]);
    kill(v.pid, libc::SIGTERM);
    assert_eq!(v.wait_exit(T).and_then(|s| s.code()), Some(0));
    let rec = record(agent, v.pid);
    assert_eq!(rec["diagnosis"], "graceful", "{rec}");
    assert_eq!(rec["exit"]["code"], 0, "{rec}");
    let term = signals_named(&rec, "SIGTERM");
    assert_eq!(term.len(), 1, "{rec}");
    assert_eq!(term[0]["result"], "delivered", "{rec}");
    assert_eq!(term[0]["disposition"], "handler", "{rec}");
    assert_eq!(term[0]["sender"]["pid"], std::process::id(), "{rec}");
}

/// PID 1 of a PID namespace (`sleep`) has no handler: the kernel drops SIGTERM, and the
/// player SIGKILLs it after the grace.
fn a_pid1_without_handler_is_ignored_by_pid1(agent: &Agent) {
    let (_ns, pid) = in_pid_namespace(&["sleep", "1000"]);
    wait_comm(pid, "sleep");
    let out = stop(pid, libc::SIGTERM, GRACE);
    assert!(out.killed && out.dead, "{out:?}");
    let rec = record(agent, pid);
    assert_eq!(rec["diagnosis"], "ignored_by_pid1", "{rec}");
    assert_eq!(rec["ns_init"], true, "{rec}");
    assert_eq!(rec["ns_pid"], 1, "{rec}");
    assert_eq!(rec["exit"]["signal"], "SIGKILL", "{rec}");
    let term = signals_named(&rec, "SIGTERM");
    assert_eq!(term.len(), 1, "{rec}");
    assert_eq!(term[0]["result"], "ignored", "{rec}");
    assert_eq!(term[0]["disposition"], "default", "{rec}");
    assert_eq!(signals_named(&rec, "SIGKILL").len(), 1, "{rec}");
}

/// A host process without a handler dies of SIGTERM's default action.
fn a_host_process_without_handler_takes_the_default_action(agent: &Agent) {
    let mut v = Proc::victim(&[]);
    kill(v.pid, libc::SIGTERM);
    v.wait_exit(T).expect("the victim exits");
    let rec = record(agent, v.pid);
    assert_eq!(rec["diagnosis"], "default_action", "{rec}");
    assert_eq!(rec["exit"]["signal"], "SIGTERM", "{rec}");
    let term = signals_named(&rec, "SIGTERM");
    assert_eq!(term.len(), 1, "{rec}");
    assert_eq!(term[0]["result"], "delivered", "{rec}");
    assert_eq!(term[0]["disposition"], "default", "{rec}");
}

/// PID 1 is `/bin/sh -c 'sleep 1000; true'`: it neither handles nor forwards SIGTERM.
fn a_shell_pid1_does_not_forward(agent: &Agent) {
    let (_ns, sh) = in_pid_namespace(&["/bin/sh", "-c", "sleep 1000; true"]);
    wait_comm(sh, "sh");
    let sleep = child_named(sh, "sleep");
    // dash blocks every signal around its fork; a blocked signal is never "ignored" at
    // generation (it is dropped later, at delivery). Stop it once it waits with TERM open.
    assert!(
        wait_until(T, || {
            fs::read_to_string(format!("/proc/{sh}/status"))
                .is_ok_and(|s| s.lines().any(|l| l.starts_with("SigBlk:")))
                && !tests::records::has_mask(sh, "SigBlk", libc::SIGTERM)
        }),
        "the shell kept SIGTERM blocked"
    );
    let out = stop(sh, libc::SIGTERM, GRACE);
    assert!(out.killed && out.dead, "{out:?}");
    let rec = record(agent, sh);
    assert_eq!(rec["diagnosis"], "shell_not_forwarding", "{rec}");
    assert_eq!(
        signals_named(&rec, "SIGTERM")[0]["result"],
        "ignored",
        "{rec}"
    );
    let child = record(agent, sleep);
    assert_eq!(child["diagnosis"], "orphan_killed", "{child}");
    assert_eq!(child["ppid"], sh, "{child}");
}

/// A runtime-style exec: a process enters a PID namespace, moves into the "container's"
/// cgroup and execs there (as `runc exec` does). The exec is recorded with its path.
#[test]
fn an_exec_into_a_namespace_is_recorded() {
    let agent = Agent::start(&["run", "--raw"]);
    agent.assert_path();
    let cg = Cgroup::create("sigtrace-test-kernels-exec");
    let (mut ns, init) = in_pid_namespace(&["sleep", "1000"]);
    cg.add(init);
    let procs = cg_procs(&cg);
    // Inside the namespace, the shell writes its own (namespace) PID into the cgroup, then
    // execs: the new program's cgroup differs from its parent's (nsenter, on the host).
    let script = format!("echo $$ > {procs} && exec /bin/sleep 0.2");
    let status = Command::new("nsenter")
        .args([
            "-t",
            &init.to_string(),
            "-p",
            "--",
            "/bin/sh",
            "-c",
            &script,
        ])
        .stdin(Stdio::null())
        .status()
        .expect("nsenter");
    assert!(status.success(), "nsenter: {status}");
    let exec = agent
        .wait_for(T, |l| {
            l["event"] == "exec"
                && l["path"] == "/bin/sleep"
                && l["task"]["cgroup_id"].as_u64() == Some(cg.id())
        })
        .unwrap_or_else(|| panic!("no exec record; agent stderr:\n{}", agent.stderr()));
    assert_ne!(exec["parent_cgroup_id"].as_u64(), Some(cg.id()), "{exec}");
    assert_ne!(exec["task"]["ns_pid"], exec["task"]["pid"], "{exec}");
    kill(init, libc::SIGKILL);
    ns.wait_exit(T);
}

/// A process in a cgroup limited to 32 MiB allocates until the OOM killer ends it.
fn an_oom_kill_is_diagnosed(agent: &Agent) {
    let cg = MemoryCgroup::create("sigtrace-test-kernels-oom");
    // The shell moves itself into the cgroup before it starts to grow.
    let mut p = Proc::spawn(Command::new("/bin/sh").args([
        "-c",
        &format!(
            "echo $$ > {} && x=a; while true; do x=$x$x; done",
            cg.dir.join("cgroup.procs").display()
        ),
    ]));
    let status = p.wait_exit(T).expect("the OOM killer ends it");
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGKILL),
        "{status:?}"
    );
    assert!(cg.oom_kills() > 0, "the cgroup saw no OOM kill");
    let rec = record(agent, p.pid);
    assert_eq!(rec["diagnosis"], "oom_killed", "{rec}");
    assert_eq!(rec["exit"]["signal"], "SIGKILL", "{rec}");
}

fn cg_procs(cg: &Cgroup) -> String {
    cg.path.join("cgroup.procs").display().to_string()
}

/// A cgroup with a 32 MiB memory limit: v2 where the memory controller is there (the VMs),
/// else v1's memory hierarchy (a hybrid host). Emptied and removed on drop.
struct MemoryCgroup {
    dir: std::path::PathBuf,
    v2: bool,
}

impl MemoryCgroup {
    fn create(name: &str) -> Self {
        let v2root = cgroup_v2_mount();
        let controllers = fs::read_to_string(v2root.join("cgroup.controllers")).unwrap_or_default();
        let v2 = controllers.split_whitespace().any(|c| c == "memory");
        let dir = if v2 {
            fs::write(v2root.join("cgroup.subtree_control"), "+memory")
                .expect("enabling the v2 memory controller");
            v2root.join(name)
        } else {
            std::path::Path::new("/sys/fs/cgroup/memory").join(name)
        };
        if !dir.exists() {
            fs::create_dir(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        }
        let cg = Self { dir, v2 };
        let (limit, swap) = if v2 {
            ("memory.max", "memory.swap.max")
        } else {
            ("memory.limit_in_bytes", "memory.memsw.limit_in_bytes")
        };
        fs::write(cg.dir.join(limit), "33554432")
            .unwrap_or_else(|e| panic!("{limit} in {}: {e}", cg.dir.display()));
        // No swap to escape to (absent where swap accounting is off).
        let _ = fs::write(cg.dir.join(swap), if v2 { "0" } else { "33554432" });
        cg
    }

    /// OOM kills in this cgroup so far.
    fn oom_kills(&self) -> u64 {
        let file = if self.v2 {
            "memory.events"
        } else {
            "memory.oom_control"
        };
        fs::read_to_string(self.dir.join(file))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("oom_kill ")?.trim().parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for MemoryCgroup {
    fn drop(&mut self) {
        remove_cgroup_dir(&self.dir);
    }
}
