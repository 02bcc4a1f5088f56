//! A runc container from a hand-made OCI bundle, the way Kubernetes' containerd leaves it on
//! disk: the bundle (with its CRI annotations) sits at
//! `<state>/io.containerd.runtime.v2.task/<namespace>/<id>/`, so sigtrace finds it with
//! `--containerd-state <state>`, and `linux.cgroupsPath` is chosen by the test (e.g. a
//! kubepods-style path). runc keeps its own state under a private `--root`.
//!
//! Torn down on drop, also when the test fails: the container is SIGKILLed and deleted, and the
//! cgroup directories it created (in every hierarchy, v1 controllers and v2) are removed,
//! deepest first — only those that did not exist before the container was created.
use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use crate::{runtime::busybox_rootfs, TempDir};

/// A running runc container.
pub struct RuncContainer {
    pub id: String,
    /// The containerd-style state directory holding the bundle (pass it as `--containerd-state`).
    pub state: PathBuf,
    pub bundle: PathBuf,
    /// Host PID of the container's init.
    pub pid: u32,
    pub cgroups_path: String,
    root: PathBuf,
    /// Cgroup directories (absolute, every hierarchy) created for it, shallowest first.
    created_cgroups: Vec<PathBuf>,
    deleted: bool,
    // Last: removed after everything else.
    dir: TempDir,
}

/// The cgroup hierarchies mounted under /sys/fs/cgroup (v1 controllers, the v2 mount, or the
/// v2 root itself on a unified host), without duplicates (`cpu` → `cpu,cpuacct`).
fn cgroup_roots() -> Vec<PathBuf> {
    let mut roots: Vec<PathBuf> = vec![PathBuf::from("/sys/fs/cgroup")];
    if let Ok(rd) = fs::read_dir("/sys/fs/cgroup") {
        roots.extend(
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.join("cgroup.procs").exists()),
        );
    }
    let mut seen = Vec::new();
    roots.retain(|r| {
        let c = fs::canonicalize(r).unwrap_or_else(|_| r.clone());
        let fresh = r.join("cgroup.procs").exists() && !seen.contains(&c);
        seen.push(c);
        fresh
    });
    roots
}

fn runc_cmd(root: &Path) -> Command {
    let mut c = Command::new("runc");
    c.arg("--root").arg(root);
    c
}

impl RuncContainer {
    /// Writes a bundle with a busybox rootfs (plus `/bin/victim`) under
    /// `<state>/io.containerd.runtime.v2.task/<namespace>/<id>/`, with `args` as the process,
    /// `cgroups_path` as `linux.cgroupsPath` and `annotations`, then `runc run -d`.
    pub fn run(
        namespace: &str,
        id: &str,
        cgroups_path: &str,
        annotations: &BTreeMap<String, String>,
        args: &[&str],
    ) -> Self {
        let dir = TempDir::new("runc");
        let state = dir.path().join("state");
        let bundle = state
            .join("io.containerd.runtime.v2.task")
            .join(namespace)
            .join(id);
        fs::create_dir_all(&bundle).unwrap();
        busybox_rootfs(&bundle);
        let root = dir.path().join("runc-root");
        fs::create_dir_all(&root).unwrap();
        let st = Command::new("runc")
            .arg("spec")
            .current_dir(&bundle)
            .status()
            .expect("runc is installed");
        assert!(st.success(), "runc spec failed");
        let cfg_path = bundle.join("config.json");
        let mut cfg: serde_json::Value =
            serde_json::from_slice(&fs::read(&cfg_path).unwrap()).unwrap();
        cfg["process"]["terminal"] = false.into();
        cfg["process"]["args"] = args.iter().map(|a| serde_json::Value::from(*a)).collect();
        cfg["linux"]["cgroupsPath"] = cgroups_path.into();
        cfg["annotations"] = serde_json::to_value(annotations).unwrap();
        fs::write(&cfg_path, serde_json::to_vec_pretty(&cfg).unwrap()).unwrap();

        // Which directories of the cgroup path are new, in every hierarchy (removed on drop).
        let mut created_cgroups = Vec::new();
        for r in cgroup_roots() {
            let mut cur = r.clone();
            for part in cgroups_path.split('/').filter(|p| !p.is_empty()) {
                cur = cur.join(part);
                if !cur.exists() {
                    created_cgroups.push(cur.clone());
                }
            }
        }
        let mut me = Self {
            id: id.to_string(),
            state,
            bundle: bundle.clone(),
            pid: 0,
            cgroups_path: cgroups_path.to_string(),
            root,
            created_cgroups,
            deleted: false,
            dir,
        };
        // Detached, no terminal: the container inherits runc's stdio, so give it files, never
        // pipes (a pipe would be held open by the container).
        let log = fs::File::create(me.dir.path().join("container.log")).unwrap();
        let pid_file = me.dir.path().join("c.pid");
        let st = runc_cmd(&me.root)
            .args(["run", "-d", "--pid-file"])
            .arg(&pid_file)
            .arg(id)
            .current_dir(&bundle)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .status()
            .expect("runc run");
        assert!(
            st.success(),
            "runc run failed: {}",
            fs::read_to_string(me.dir.path().join("container.log")).unwrap_or_default()
        );
        me.pid = fs::read_to_string(&pid_file)
            .expect("runc pid file")
            .trim()
            .parse()
            .expect("pid");
        me
    }

    /// `runc kill ID SIG` (the kernel sees a `runc` process send it).
    pub fn kill(&self, sig: &str) {
        let st = runc_cmd(&self.root)
            .args(["kill", &self.id, sig])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("runc kill");
        assert!(st.success(), "runc kill {} {sig} failed", self.id);
    }

    /// `runc delete -f ID`.
    pub fn delete(&mut self) {
        let _ = runc_cmd(&self.root)
            .args(["delete", "-f", &self.id])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        self.deleted = true;
    }
}

impl Drop for RuncContainer {
    fn drop(&mut self) {
        if !self.deleted {
            let _ = runc_cmd(&self.root)
                .args(["kill", &self.id, "KILL"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            self.delete();
        }
        for d in self.created_cgroups.iter().rev() {
            crate::remove_cgroup_dir(d);
        }
    }
}
