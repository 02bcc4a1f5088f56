//! Real container runtimes for the end-to-end tests: a busybox root filesystem (with the
//! `victim` helper and its libraries), a private containerd, a private dockerd on top of it, and
//! runc bundles. Each lives in its own temporary directory and is torn down on drop (containers
//! removed, daemons stopped by PID, mounts under the directory lazily unmounted, directories
//! removed) — also when the test fails.
use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Duration,
};

use crate::{helper_bin, kill, victim_bin, wait_until, Proc, TempDir};

fn run(cmd: &mut Command) -> String {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Lazily unmounts every mount point under `dir`, deepest first.
fn unmount_under(dir: &Path) {
    let Ok(mi) = fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let prefix = dir.to_string_lossy().to_string();
    let mut points: Vec<String> = mi
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(|m| m.replace("\\040", " ")))
        .filter(|m| m.starts_with(&prefix))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in points {
        let _ = Command::new("umount")
            .args(["-l", &p])
            .stderr(Stdio::null())
            .status();
    }
}

/// A busybox root filesystem with the test helpers `/bin/victim` and `/bin/pause` (and the
/// libraries they link against).
pub fn busybox_rootfs(dir: &Path) -> PathBuf {
    let rootfs = dir.join("rootfs");
    fs::create_dir_all(rootfs.join("bin")).unwrap();
    fs::copy("/bin/busybox", rootfs.join("bin/busybox")).expect("busybox-static is installed");
    run(Command::new("chroot")
        .arg(&rootfs)
        .args(["/bin/busybox", "--install", "-s", "/bin"]));
    for d in ["proc", "sys", "dev", "tmp", "etc"] {
        fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    copy_binary(&rootfs, &victim_bin(), "bin/victim");
    copy_binary(&rootfs, &helper_bin("pause"), "bin/pause");
    rootfs
}

/// Copies the program `bin` to `dest` (relative) in `rootfs`, with the dynamic libraries it
/// links against at the same paths.
pub fn copy_binary(rootfs: &Path, bin: &Path, dest: &str) {
    let dst = rootfs.join(dest);
    fs::create_dir_all(dst.parent().unwrap()).unwrap();
    fs::copy(bin, &dst).unwrap_or_else(|e| panic!("copying {}: {e}", bin.display()));
    let ldd = Command::new("ldd").arg(bin).output().expect("ldd");
    for lib in String::from_utf8_lossy(&ldd.stdout)
        .split_whitespace()
        .filter(|w| w.starts_with('/'))
    {
        let dst = rootfs.join(lib.trim_start_matches('/'));
        if dst.exists() {
            continue;
        }
        fs::create_dir_all(dst.parent().unwrap()).unwrap();
        fs::copy(lib, &dst).unwrap_or_else(|e| panic!("copying {lib}: {e}"));
    }
}

/// A private containerd daemon.
pub struct Containerd {
    pub dir: TempDir,
    pub socket: PathBuf,
    pub state: PathBuf,
    daemon: Option<Proc>,
}

/// The sandbox (pause) image name the private containerd's CRI plugin is configured with.
pub const SANDBOX_IMAGE: &str = "localhost/sigtrace-test/pause:1";

impl Containerd {
    pub fn start() -> Self {
        Self::start_with_cri(false)
    }

    /// With `cri`, its CRI plugin is set up the way this machine needs for pods (everything
    /// under the temporary directory, `restrict_oom_score_adj`, our sandbox image name, empty
    /// CNI dirs: the tests' pods use the host network).
    pub fn start_with_cri(cri: bool) -> Self {
        let dir = TempDir::new("containerd");
        let (root, state, socket) = (
            dir.path().join("root"),
            dir.path().join("state"),
            // In its state directory, as /run/containerd/containerd.sock is on a node.
            dir.path().join("state").join("containerd.sock"),
        );
        let config = dir.path().join("config.toml");
        let d = |p: &str| dir.path().join(p).display().to_string();
        let mut text = format!(
            "version = 2\nroot = \"{}\"\nstate = \"{}\"\n[grpc]\n  address = \"{}\"\n",
            root.display(),
            state.display(),
            socket.display()
        );
        if cri {
            for sub in ["cni-bin", "cni-conf", "opt"] {
                fs::create_dir_all(dir.path().join(sub)).unwrap();
            }
            text += &format!(
                "[ttrpc]\n  address = \"{}\"\n\
                 [plugins.\"io.containerd.internal.v1.opt\"]\n  path = \"{}\"\n\
                 [plugins.\"io.containerd.grpc.v1.cri\"]\n  disable_cgroup = false\n  \
                 restrict_oom_score_adj = true\n  sandbox_image = \"{SANDBOX_IMAGE}\"\n\
                 [plugins.\"io.containerd.grpc.v1.cri\".cni]\n  bin_dir = \"{}\"\n  conf_dir = \"{}\"\n",
                d("containerd-ttrpc.sock"),
                d("opt"),
                d("cni-bin"),
                d("cni-conf"),
            );
        } else {
            text += "[plugins.\"io.containerd.grpc.v1.cri\"]\n  disable_cgroup = false\n";
        }
        fs::write(&config, text).unwrap();
        let log = fs::File::create(dir.path().join("containerd.log")).unwrap();
        let daemon = Proc::spawn(
            Command::new("containerd")
                .arg("--config")
                .arg(&config)
                .stdout(log.try_clone().unwrap())
                .stderr(log),
        );
        let me = Self {
            dir,
            socket,
            state,
            daemon: Some(daemon),
        };
        let ready = wait_until(Duration::from_secs(30), || {
            me.socket.exists()
                && Command::new("ctr")
                    .arg("-a")
                    .arg(&me.socket)
                    .arg("version")
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
        });
        assert!(
            ready,
            "containerd did not start: {}",
            fs::read_to_string(me.dir.path().join("containerd.log")).unwrap_or_default()
        );
        me
    }

    pub fn ctr(&self, ns: &str) -> Command {
        let mut c = Command::new("ctr");
        c.arg("-a").arg(&self.socket).arg("-n").arg(ns);
        c
    }
}

/// Kills the shims (and their containers) that serve `socket`.
fn kill_shims(socket: &Path) {
    let needle = socket.to_string_lossy().to_string();
    if let Ok(procs) = fs::read_dir("/proc") {
        for p in procs.flatten() {
            let Ok(pid) = p.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let cmdline = fs::read(p.path().join("cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains("containerd-shim") && cmdline.contains(&needle) {
                for child in crate::children_of(pid) {
                    kill(child, libc::SIGKILL);
                }
                kill(pid, libc::SIGKILL);
            }
        }
    }
}

/// runc keeps each container's state in `/run/containerd/runc/<namespace>/<id>` whatever
/// containerd's config says, and leaves it behind when its shim is killed. Removes the ones
/// whose bundle lives under `dir`, then whichever of their parents are left empty.
fn remove_runc_state(dir: &Path) {
    let root = Path::new("/run/containerd/runc");
    let needle = dir.to_string_lossy().to_string();
    let Ok(namespaces) = fs::read_dir(root) else {
        return;
    };
    for ns in namespaces.flatten() {
        for c in fs::read_dir(ns.path()).into_iter().flatten().flatten() {
            let state = fs::read_to_string(c.path().join("state.json")).unwrap_or_default();
            if state.contains(&needle) {
                let _ = fs::remove_dir_all(c.path());
            }
        }
        let _ = fs::remove_dir(ns.path());
    }
    for empty in [
        root,
        Path::new("/run/containerd/s"),
        Path::new("/run/containerd"),
    ] {
        let _ = fs::remove_dir(empty);
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        kill_shims(&self.socket);
        remove_runc_state(self.dir.path());
        if let Some(mut d) = self.daemon.take() {
            kill(d.pid, libc::SIGTERM);
            if d.wait_exit(Duration::from_secs(10)).is_none() {
                kill(d.pid, libc::SIGKILL);
            }
        }
        unmount_under(self.dir.path());
    }
}

/// A private dockerd using a private containerd.
pub struct Docker {
    pub containerd: Containerd,
    pub dir: TempDir,
    pub socket: PathBuf,
    /// The cgroup parent (under the v2 mount) containers land in.
    pub cgroup_parent: String,
    pub data_root: PathBuf,
    daemon: Option<Proc>,
}

pub const IMAGE: &str = "local/busybox-victim:1";

impl Docker {
    pub fn start() -> Self {
        let containerd = Containerd::start();
        let dir = TempDir::new("docker");
        let socket = dir.path().join("docker.sock");
        let data_root = dir.path().join("data");
        let cgroup_parent = format!("sigtrace-docker-{}", std::process::id());
        let config = serde_json::json!({
            "data-root": data_root,
            "exec-root": dir.path().join("exec"),
            "pidfile": dir.path().join("docker.pid"),
            "hosts": [format!("unix://{}", socket.display())],
            "containerd": containerd.socket,
            "bridge": "none",
            "iptables": false,
            "ip6tables": false,
            "ip-forward": false,
            "ip-masq": false,
            "exec-opts": ["native.cgroupdriver=cgroupfs"],
            "cgroup-parent": format!("/{cgroup_parent}"),
        });
        let cfg_path = dir.path().join("daemon.json");
        fs::write(&cfg_path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
        let log = fs::File::create(dir.path().join("dockerd.log")).unwrap();
        let daemon = Proc::spawn(
            Command::new("dockerd")
                .arg("--config-file")
                .arg(&cfg_path)
                .stdout(log.try_clone().unwrap())
                .stderr(log),
        );
        let me = Self {
            containerd,
            dir,
            socket,
            cgroup_parent,
            data_root,
            daemon: Some(daemon),
        };
        let ready = wait_until(Duration::from_secs(60), || {
            me.socket.exists()
                && me
                    .docker()
                    .arg("info")
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
        });
        assert!(
            ready,
            "dockerd did not start: {}",
            fs::read_to_string(me.dir.path().join("dockerd.log")).unwrap_or_default()
        );
        // Import the busybox + victim image.
        let img = TempDir::new("image");
        let rootfs = busybox_rootfs(img.path());
        let tar = img.path().join("rootfs.tar");
        run(Command::new("tar")
            .arg("-C")
            .arg(&rootfs)
            .arg("-cf")
            .arg(&tar)
            .arg("."));
        run(me
            .docker()
            .args(["import", "-c", "CMD [\"/bin/sh\"]"])
            .arg(&tar)
            .arg(IMAGE));
        me
    }

    /// The Debian docker client (matching the daemon's API version) on our socket.
    pub fn docker(&self) -> Command {
        let bin = if Path::new("/usr/bin/docker").exists() {
            "/usr/bin/docker"
        } else {
            "docker"
        };
        let mut c = Command::new(bin);
        c.arg("-H").arg(format!("unix://{}", self.socket.display()));
        c
    }

    /// `docker run -d --network none EXTRA... IMAGE CMD...`; returns the full container id.
    pub fn run(&self, name: &str, extra: &[&str], cmd: &[&str]) -> String {
        let out = run(self
            .docker()
            .args(["run", "-d", "--network", "none", "--name", name])
            .args(extra)
            .arg(IMAGE)
            .args(cmd));
        out.trim().to_string()
    }

    /// Host PID of a container's init.
    pub fn init_pid(&self, id: &str) -> u32 {
        run(self.docker().args(["inspect", "-f", "{{.State.Pid}}", id]))
            .trim()
            .parse()
            .expect("container pid")
    }

    /// The containerd state dir docker's tasks live under (for OCI bundles).
    pub fn containerd_state(&self) -> PathBuf {
        self.containerd.state.clone()
    }

    pub fn output(&self, args: &[&str]) -> String {
        run(self.docker().args(args))
    }
}

impl Drop for Docker {
    fn drop(&mut self) {
        if let Ok(out) = self.docker().args(["ps", "-aq"]).output() {
            for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = self
                    .docker()
                    .args(["rm", "-f", id])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
        }
        if let Some(mut d) = self.daemon.take() {
            kill(d.pid, libc::SIGTERM);
            if d.wait_exit(Duration::from_secs(15)).is_none() {
                kill(d.pid, libc::SIGKILL);
            }
        }
        unmount_under(self.dir.path());
        remove_cgroup_tree(&self.cgroup_parent);
    }
}

/// Removes `/<rel>` in every cgroup hierarchy (v2 and the v1 controllers), deepest first.
pub fn remove_cgroup_tree(rel: &str) {
    let Ok(hier) = fs::read_dir("/sys/fs/cgroup") else {
        return;
    };
    let mut roots: Vec<PathBuf> = hier.flatten().map(|e| e.path()).collect();
    roots.push(PathBuf::from("/sys/fs/cgroup"));
    for root in roots {
        let top = root.join(rel.trim_start_matches('/'));
        if !top.is_dir() {
            continue;
        }
        let mut dirs = Vec::new();
        collect_dirs(&top, &mut dirs);
        dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
        for d in dirs {
            crate::remove_cgroup_dir(&d);
        }
    }
}

fn collect_dirs(dir: &Path, out: &mut Vec<PathBuf>) {
    out.push(dir.to_path_buf());
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                collect_dirs(&e.path(), out);
            }
        }
    }
}
