//! Harness of the privileged end-to-end tests: starts the real `sigtrace` binary, spawns real
//! processes (the `victim` helper, shells, PID namespaces), and cleans every one of them up —
//! also when a test fails — through guards whose `Drop` kills and removes what they own.
//! Every wait is bounded; every assertion filters by PID or cgroup because the machine is shared.
use std::{
    fs,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;

pub mod cri;
pub mod metrics;
pub mod oci;
pub mod records;
pub mod runc;
pub mod runtime;
pub mod stop;

/// Where the sigtrace binary is (set by `cargo xtask test`), else the debug build.
pub fn sigtrace_bin() -> PathBuf {
    std::env::var_os("SIGTRACE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target/debug/sigtrace"))
}

pub fn workspace() -> PathBuf {
    std::env::var_os("SIGTRACE_WORKSPACE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".."))
}

/// The `victim` helper, next to the test binary's directory.
pub fn victim_bin() -> PathBuf {
    helper_bin("victim")
}

/// A helper program of this crate (`victim`, `pause`), next to the test binary's directory.
pub fn helper_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    dir.join(name)
}

/// The tests force the raw tracepoint fallback on every agent they start
/// (`SIGTRACE_FORCE_RAW=1`: the kernel matrix runs its scenarios on both paths).
pub fn forced_raw() -> bool {
    std::env::var_os("SIGTRACE_FORCE_RAW").is_some_and(|v| v == "1")
}

/// The running kernel's release (`uname -r`).
pub fn kernel_release() -> String {
    fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// The path every hook should take on this kernel, judged by its version (independently of
/// how the agent decides): "raw_tp" when forced or before 5.11 (no
/// `bpf_get_current_task_btf`), else "tp_btf".
pub fn expected_path() -> &'static str {
    expected_path_for(forced_raw())
}

/// [`expected_path`] for an agent whose raw tracepoints are forced or not.
pub fn expected_path_for(forced: bool) -> &'static str {
    let release = kernel_release();
    let mut nums = release
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse::<u32>().ok());
    let version = (nums.next().unwrap_or(0), nums.next().unwrap_or(0));
    if forced || version < (5, 11) {
        "raw_tp"
    } else {
        "tp_btf"
    }
}

/// Polls `f` every 10 ms until it returns true or `timeout` passes.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

pub fn kill(pid: u32, sig: i32) {
    // SAFETY: kill(2) to a process this test created.
    unsafe { libc::kill(pid as i32, sig) };
}

pub fn pid_alive(pid: u32) -> bool {
    // A zombie still has /proc/<pid>, so look at its state.
    procfs::process::Process::new(pid as i32)
        .and_then(|p| p.stat())
        .is_ok_and(|s| s.state != 'Z')
}

/// Headless Chromium with a fresh profile in `profile` and no background networking (the
/// flags are `tests/chromium.args`, which the report benchmark uses too).
pub fn headless_chromium(chromium: &Path, profile: &Path) -> std::process::Command {
    let mut c = std::process::Command::new(chromium);
    c.args(CHROMIUM_ARGS.lines().filter(|l| !l.trim().is_empty()))
        .arg(format!("--user-data-dir={}", profile.display()))
        .stdin(std::process::Stdio::null());
    c
}

/// The headless-Chromium flags, one per line.
pub const CHROMIUM_ARGS: &str = include_str!("../chromium.args");

/// A temporary directory (removed on drop), named after what it is for.
pub struct TempDir(tempfile::TempDir);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix(&format!("sigtrace-test-{tag}-"))
            .tempdir()
            .expect("temp dir");
        Self(dir)
    }

    pub fn path(&self) -> &Path {
        self.0.path()
    }
}

/// A child process killed (SIGKILL) and reaped on drop.
pub struct Proc {
    pub child: Option<Child>,
    pub pid: u32,
}

impl Proc {
    pub fn spawn(cmd: &mut Command) -> Self {
        let child = cmd
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {cmd:?}: {e}"));
        let pid = child.id();
        Self {
            child: Some(child),
            pid,
        }
    }

    /// Spawns the victim helper and waits until it has installed its dispositions.
    pub fn victim(args: &[&str]) -> Self {
        let dir = TempDir::new("victim");
        let ready = dir.path().join("ready");
        let p = Self::spawn(
            Command::new(victim_bin())
                .args(args)
                .arg("--ready")
                .arg(&ready),
        );
        assert!(
            wait_until(Duration::from_secs(10), || ready.exists()),
            "victim did not get ready"
        );
        p
    }

    /// Waits (bounded) for the process to exit and reaps it.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            if let Ok(None) = c.try_wait() {
                let _ = c.kill();
            }
            let _ = c.wait();
        }
    }
}

/// Children (host PIDs) of `pid`, from /proc.
pub fn children_of(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    if let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) {
        for t in tasks.flatten() {
            if let Ok(s) = fs::read_to_string(t.path().join("children")) {
                out.extend(s.split_whitespace().filter_map(|x| x.parse::<u32>().ok()));
            }
        }
    }
    out
}

/// The command name of a process ("" once it is gone).
pub fn comm(pid: u32) -> String {
    fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// Waits (bounded, 10 s) for a child of `parent` named `name`; returns its host PID.
pub fn child_named(parent: u32, name: &str) -> u32 {
    let mut found = 0;
    assert!(
        wait_until(Duration::from_secs(10), || {
            found = children_of(parent)
                .into_iter()
                .find(|&c| comm(c) == name)
                .unwrap_or(0);
            found != 0
        }),
        "no child {name:?} of {parent}"
    );
    found
}

/// `unshare --pid --fork --mount-proc CMD...`: CMD becomes PID 1 of a new PID namespace.
/// Returns the unshare process and CMD's host PID.
pub fn in_pid_namespace(cmd: &[&str]) -> (Proc, u32) {
    let p = Proc::spawn(
        Command::new("unshare")
            .args(["--pid", "--fork", "--mount-proc"])
            .args(cmd)
            .stderr(Stdio::null()),
    );
    let mut inner = 0;
    assert!(
        wait_until(Duration::from_secs(10), || {
            inner = children_of(p.pid).first().copied().unwrap_or(0);
            inner != 0
        }),
        "no process inside the PID namespace"
    );
    (p, inner)
}

/// The running sigtrace agent; killed on drop if `stop` was not called.
pub struct Agent {
    child: Option<Child>,
    pub dir: TempDir,
}

/// What an agent printed.
pub struct AgentOutput {
    pub lines: Vec<Value>,
    pub stderr: String,
    pub status: Option<ExitStatus>,
}

impl Agent {
    /// Starts `sigtrace ARGS --ready-file ...` and waits until its probes are attached.
    pub fn start(args: &[&str]) -> Self {
        let dir = TempDir::new("agent");
        let ready = dir.path().join("ready");
        let out = fs::File::create(dir.path().join("out.jsonl")).expect("out file");
        let err = fs::File::create(dir.path().join("err.log")).expect("err file");
        let mut cmd = Command::new(sigtrace_bin());
        cmd.args(args)
            .arg("--ready-file")
            .arg(&ready)
            .stdout(out)
            .stderr(err)
            .stdin(Stdio::null());
        if !args.contains(&"--data-dir") && args.first() != Some(&"replay") {
            cmd.arg("--no-record");
        }
        if forced_raw()
            && args.first() == Some(&"run")
            && !args.contains(&"--force-raw-tracepoints")
        {
            cmd.arg("--force-raw-tracepoints");
        }
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {:?}: {e}", sigtrace_bin()));
        // Generous: under an emulated CPU (the kernel matrix's VMs) the verifier alone takes
        // seconds per program.
        let ok = wait_until(Duration::from_secs(120), || {
            ready.exists() || matches!(child.try_wait(), Ok(Some(_)))
        });
        let agent = Self {
            child: Some(child),
            dir,
        };
        assert!(
            ok && ready.exists(),
            "sigtrace did not get ready: {}",
            agent.stderr()
        );
        // Every live agent of every test runs on the path this kernel should take: a
        // fallback cannot pass unnoticed.
        if args.first() == Some(&"run") {
            agent.assert_path_is(expected_path_for(
                forced_raw() || args.contains(&"--force-raw-tracepoints"),
            ));
        }
        agent
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// How each hook is attached, from the agent's start-up line ("tracing: 6 hooks
    /// attached: signal_generate (tp_btf), …"): (hook, "tp_btf" | "raw_tp").
    pub fn attached(&self) -> Vec<(String, String)> {
        let err = self.stderr();
        let line = err
            .lines()
            .find(|l| l.contains("hooks attached:"))
            .unwrap_or_else(|| panic!("no start-up line naming the hooks: {err}"));
        let list = line.split("hooks attached:").nth(1).unwrap_or_default();
        list.split(", ")
            .filter_map(|h| {
                let (hook, how) = h.trim().split_once(" (")?;
                Some((hook.to_string(), how.trim_end_matches(')').to_string()))
            })
            .collect()
    }

    /// Asserts that every hook runs on the path this kernel should take
    /// ([`expected_path`]), and returns that path: a scenario's result says which path it
    /// was proven on, and a silent fallback fails it.
    pub fn assert_path(&self) -> &'static str {
        let want = expected_path();
        self.assert_path_is(want);
        eprintln!(
            "sigtrace attached every hook as {want} on {}",
            kernel_release()
        );
        want
    }

    fn assert_path_is(&self, want: &str) {
        let attached = self.attached();
        assert_eq!(attached.len(), 6, "every hook attached: {attached:?}");
        for (hook, how) in &attached {
            assert_eq!(
                how,
                want,
                "{hook} on {how}, expected {want}: {}",
                self.stderr()
            );
        }
    }

    pub fn stderr(&self) -> String {
        fs::read_to_string(self.dir.path().join("err.log")).unwrap_or_default()
    }

    /// Lines printed so far.
    pub fn lines(&self) -> Vec<Value> {
        parse_lines(&fs::read_to_string(self.dir.path().join("out.jsonl")).unwrap_or_default())
    }

    /// Waits (bounded) until a printed line satisfies `f`.
    pub fn wait_for(&self, timeout: Duration, mut f: impl FnMut(&Value) -> bool) -> Option<Value> {
        let mut found = None;
        wait_until(timeout, || {
            found = self.lines().into_iter().find(|l| f(l));
            found.is_some()
        });
        found
    }

    /// Waits (bounded) for the `process_stop` record of `pid`; on timeout, fails with the
    /// agent's stderr.
    pub fn process_stop(&self, timeout: Duration, pid: u32) -> Value {
        self.wait_for(timeout, |l| l["type"] == "process_stop" && l["pid"] == pid)
            .unwrap_or_else(|| {
                panic!(
                    "no process_stop record for pid {pid}; agent stderr:\n{}",
                    self.stderr()
                )
            })
    }

    /// Waits (bounded) for the `container_stop` record of container `id`; on timeout, fails
    /// with every record about it (or about any container or PID-namespace init) and the
    /// agent's stderr.
    pub fn container_stop(&self, timeout: Duration, id: &str) -> Value {
        self.wait_for(timeout, |l| {
            l["type"] == "container_stop" && l["container"]["id"] == id
        })
        .unwrap_or_else(|| {
            let related: Vec<String> = self
                .lines()
                .iter()
                .filter(|l| {
                    l["container"]["id"] == id
                        || l["type"] == "container_stop"
                        || l["ns_init"] == true
                })
                .map(|l| l.to_string())
                .collect();
            panic!(
                "no container_stop record for {id}; related records:\n{}\nagent stderr: {}",
                related.join("\n"),
                self.stderr()
            )
        })
    }

    /// SIGKILL (no chance to flush), return what it printed.
    pub fn sigkill(mut self) -> AgentOutput {
        let mut status = None;
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            status = c.wait().ok();
        }
        AgentOutput {
            lines: self.lines(),
            stderr: self.stderr(),
            status,
        }
    }

    /// SIGTERM, wait (bounded) for a graceful exit, return what it printed.
    pub fn stop(mut self) -> AgentOutput {
        let mut status = None;
        if let Some(mut c) = self.child.take() {
            kill(c.id(), libc::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(s)) = c.try_wait() {
                    status = Some(s);
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            if status.is_none() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        AgentOutput {
            lines: self.lines(),
            stderr: self.stderr(),
            status,
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub fn parse_lines(text: &str) -> Vec<Value> {
    text.lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Raw events whose subject (target, receiver, exiting task) is `pid`.
pub fn raw_events_for(lines: &[Value], pid: u32) -> Vec<&Value> {
    lines
        .iter()
        .filter(|l| {
            let who = match l["event"].as_str() {
                Some("signal_generate") => &l["target"]["pid"],
                Some("signal_deliver") => &l["receiver"]["pid"],
                Some("exit") => &l["task"]["pid"],
                Some("oom_victim") => &l["victim"]["pid"],
                _ => return false,
            };
            who.as_u64() == Some(pid as u64)
        })
        .collect()
}

/// The cgroup v2 mount point, from /proc/self/mountinfo.
pub fn cgroup_v2_mount() -> PathBuf {
    let mi = fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    mi.lines()
        .find_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            let mount = pre.split(' ').nth(4)?;
            (post.split(' ').next()? == "cgroup2").then(|| PathBuf::from(mount))
        })
        .expect("no cgroup v2 mount")
}

/// A cgroup v2 directory (and its parents under the v2 mount) removed on drop, deepest first,
/// after any process still in it has been killed.
pub struct Cgroup {
    pub path: PathBuf,
    created: Vec<PathBuf>,
}

impl Cgroup {
    /// Creates `rel` (e.g. "sigtrace-test-1/kubepods.slice/...") under the v2 mount.
    pub fn create(rel: &str) -> Self {
        let root = cgroup_v2_mount();
        let mut created = Vec::new();
        let mut cur = root.clone();
        for part in rel.split('/').filter(|p| !p.is_empty()) {
            cur = cur.join(part);
            if !cur.exists() {
                fs::create_dir(&cur).unwrap_or_else(|e| panic!("mkdir {}: {e}", cur.display()));
                created.push(cur.clone());
            }
        }
        Self { path: cur, created }
    }

    /// The cgroup id (directory inode).
    pub fn id(&self) -> u64 {
        use std::os::unix::fs::MetadataExt;
        fs::metadata(&self.path).expect("cgroup dir").ino()
    }

    pub fn add(&self, pid: u32) {
        fs::write(self.path.join("cgroup.procs"), pid.to_string())
            .expect("moving a process into the cgroup");
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        for dir in self.created.iter().rev() {
            remove_cgroup_dir(dir);
        }
    }
}

/// A hand-made Kubernetes-style container: a kubepods cgroup and, in a containerd state
/// directory of its own, the CRI annotations of a pod in namespace `namespace`. Processes
/// moved into it are attributed to that namespace, which nothing else on the machine uses.
pub struct FakePod {
    /// The container id (64 hex).
    pub id: String,
    pub cgroup: Cgroup,
    /// Pass to the agent as `--containerd-state`.
    pub state: TempDir,
}

impl FakePod {
    /// `tag` names the test (the cgroup tree is per test and process).
    pub fn new(tag: &str, namespace: &str) -> Self {
        let id = format!(
            "{:032x}{:032x}",
            tag.bytes()
                .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b))),
            std::process::id()
        );
        let uid = format!(
            "0badf00d-{:04x}-4b6e-9a3f-0123456789ab",
            std::process::id() & 0xffff
        );
        let cgroup = Cgroup::create(&format!(
            "sigtrace-test-{}-{tag}/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{}.slice/cri-containerd-{id}.scope",
            std::process::id(),
            uid.replace('-', "_")
        ));
        let state = TempDir::new("fake-containerd");
        let bundle = state
            .path()
            .join("io.containerd.runtime.v2.task/k8s.io")
            .join(&id);
        fs::create_dir_all(&bundle).expect("bundle dir");
        let config = serde_json::json!({"annotations": {
            "io.kubernetes.cri.container-type": "container",
            "io.kubernetes.cri.container-name": "app",
            "io.kubernetes.cri.sandbox-name": "app-0",
            "io.kubernetes.cri.sandbox-namespace": namespace,
            "io.kubernetes.cri.sandbox-uid": uid,
        }});
        fs::write(bundle.join("config.json"), config.to_string()).expect("config.json");
        Self { id, cgroup, state }
    }
}

/// Kills whatever is still in the cgroup directory `dir`, then removes it (bounded wait).
pub fn remove_cgroup_dir(dir: &Path) {
    if let Ok(procs) = fs::read_to_string(dir.join("cgroup.procs")) {
        for pid in procs
            .split_whitespace()
            .filter_map(|p| p.parse::<u32>().ok())
        {
            kill(pid, libc::SIGKILL);
        }
    }
    wait_until(Duration::from_secs(5), || {
        fs::remove_dir(dir).is_ok() || !dir.exists()
    });
}

/// Mounts tracefs for a peer tracer that needs it; unmounts on drop if it mounted it.
pub struct Tracefs(bool);

impl Tracefs {
    pub fn ensure() -> Self {
        if Path::new("/sys/kernel/tracing/events").exists() {
            return Self(false);
        }
        let ok = Command::new("mount")
            .args(["-t", "tracefs", "nodev", "/sys/kernel/tracing"])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "mounting tracefs failed");
        Self(true)
    }
}

impl Drop for Tracefs {
    fn drop(&mut self) {
        if self.0 {
            let _ = Command::new("umount").arg("/sys/kernel/tracing").status();
        }
    }
}
