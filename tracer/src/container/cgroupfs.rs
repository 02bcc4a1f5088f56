//! cgroup filesystem access: finding the cgroup v2 mount in `/proc/self/mountinfo`, and the
//! [`CgroupResolver`] that maps a cgroup v2 id (the inode of its directory) to its path.
//!
//! The resolver keeps a bounded id → path index built by walking the v2 hierarchy. An unknown id
//! triggers a re-walk at most once per `rewalk_interval`; between walks, a caller-supplied pid is
//! used instead (its `/proc/<pid>/cgroup` path, accepted only if the directory's inode is the id).
//! The kernel's record of each cgroup's creation ([`CgroupResolver::created`]) fills the index
//! as cgroups appear, so a container gone before any lookup still resolves.
//! Entries outlive their cgroups (a container's cgroup is usually gone when its stop finishes)
//! until evicted by the count cap.
//!
//! Without a cgroup v2 hierarchy (v1 only) every task reports the root cgroup id, so ids are
//! useless: [`CgroupResolver::path_for_pid`] reads the v1 paths of `/proc/<pid>/cgroup`, and
//! [`CgroupResolver::attribution_may_be_missing`] says that a process which exits before it is
//! first seen cannot be attributed.
use std::ffi::OsString;
use std::fs;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::{DirEntryExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::cache::BoundedMap;
use super::path::{is_root, parse_cgroup_path, parse_pod_cgroup};

/// Errors setting up cgroup access.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("malformed mountinfo line: {0:?}")]
    MountInfo(String),
}

/// One line of `/proc/<pid>/mountinfo` (see proc(5)); paths are unescaped (`\040` → ' ').
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountInfo {
    pub mount_id: u32,
    pub parent_id: u32,
    pub major_minor: String,
    /// Root of the mount within its filesystem (for cgroup2: within the cgroup namespace).
    pub root: PathBuf,
    pub mount_point: PathBuf,
    pub mount_options: String,
    /// Zero or more `tag[:value]` fields (`shared:1`, `master:2`, ...).
    pub optional_fields: Vec<String>,
    pub fstype: String,
    pub source: String,
    pub super_options: String,
}

/// Parses one mountinfo line.
pub fn parse_mountinfo_line(line: &str) -> Result<MountInfo, CgroupError> {
    let bad = || CgroupError::MountInfo(line.to_owned());
    let fields: Vec<&str> = line.split(' ').collect();
    let sep = fields.iter().position(|f| *f == "-").ok_or_else(bad)?;
    if sep < 6 || fields.len() < sep + 3 {
        return Err(bad());
    }
    Ok(MountInfo {
        mount_id: fields[0].parse().map_err(|_| bad())?,
        parent_id: fields[1].parse().map_err(|_| bad())?,
        major_minor: fields[2].to_owned(),
        root: unescape(fields[3]),
        mount_point: unescape(fields[4]),
        mount_options: fields[5].to_owned(),
        optional_fields: fields[6..sep].iter().map(|s| (*s).to_owned()).collect(),
        fstype: fields[sep + 1].to_owned(),
        source: unescape(fields[sep + 2]).to_string_lossy().into_owned(),
        super_options: fields.get(sep + 3).copied().unwrap_or("").to_owned(),
    })
}

/// Parses a whole mountinfo text, skipping (and logging) malformed lines.
pub fn parse_mountinfo(text: &str) -> Vec<MountInfo> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .filter_map(|l| match parse_mountinfo_line(l) {
            Ok(m) => Some(m),
            Err(e) => {
                tracing::debug!("{e}");
                None
            }
        })
        .collect()
}

/// The cgroup v2 mount to use: the first `cgroup2` mount whose root is `/`, else the first one.
pub fn find_cgroup2(mounts: &[MountInfo]) -> Option<&MountInfo> {
    let mut v2 = mounts.iter().filter(|m| m.fstype == "cgroup2");
    let first = v2.clone().next();
    v2.find(|m| m.root == Path::new("/")).or(first)
}

/// Undoes the octal escapes the kernel applies to mountinfo paths (space, tab, newline, '\\').
fn unescape(s: &str) -> PathBuf {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = b[i + 1..i + 4]
                .iter()
                .fold(0u32, |acc, c| acc * 8 + u32::from(c - b'0'));
            if let Ok(byte) = u8::try_from(v) {
                out.push(byte);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    PathBuf::from(OsString::from_vec(out))
}

/// Where cgroup paths come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CgroupMode {
    /// cgroup v2 mounted at `mount`; `root` is the mount's root within the hierarchy ("/" unless
    /// the mount shows a subtree), prefixed to every path.
    V2 { mount: PathBuf, root: String },
    /// No cgroup v2 hierarchy: paths come from `/proc/<pid>/cgroup` v1 lines.
    V1Only,
}

/// Tuning for [`CgroupResolver`].
#[derive(Clone, Debug)]
pub struct CgroupConfig {
    /// `/proc` (tests point it elsewhere).
    pub proc_root: PathBuf,
    /// Minimum time between two full walks triggered by unknown ids.
    pub rewalk_interval: Duration,
    /// Count cap of the id → path index (and of the v1 pid → path cache).
    pub max_paths: usize,
    /// Safety bound on directories visited per walk.
    pub max_walk_dirs: usize,
}

impl Default for CgroupConfig {
    fn default() -> Self {
        Self {
            proc_root: PathBuf::from("/proc"),
            rewalk_interval: Duration::from_millis(200),
            max_paths: 65_536,
            max_walk_dirs: 262_144,
        }
    }
}

/// Maps cgroup ids (or, v1-only, pids) to cgroup paths. See the module docs.
#[derive(Debug)]
pub struct CgroupResolver {
    mode: CgroupMode,
    cfg: CgroupConfig,
    index: BoundedMap<u64, Arc<str>>,
    pids: BoundedMap<u32, Arc<str>>,
    last_walk: Option<Instant>,
    walks: u64,
}

impl CgroupResolver {
    /// Detects the mode from `<proc_root>/self/mountinfo`, or uses `mount_override` as the v2
    /// mount (root "/") when given. No v2 mount found → [`CgroupMode::V1Only`].
    pub fn new(mount_override: Option<PathBuf>, cfg: CgroupConfig) -> Result<Self, CgroupError> {
        let mode = match mount_override {
            Some(mount) => CgroupMode::V2 {
                mount,
                root: "/".into(),
            },
            None => {
                let path = cfg.proc_root.join("self/mountinfo");
                let text = fs::read_to_string(&path).map_err(|source| CgroupError::Io {
                    path: path.clone(),
                    source,
                })?;
                mode_from_mountinfo(&text)
            }
        };
        Ok(Self::with_mode(mode, cfg))
    }

    pub fn with_mode(mode: CgroupMode, cfg: CgroupConfig) -> Self {
        if mode == CgroupMode::V1Only {
            tracing::warn!(
                "no cgroup v2 hierarchy: container attribution falls back to /proc/<pid>/cgroup \
                 and may be missing for processes that exit before they are first seen"
            );
        }
        Self {
            index: BoundedMap::new(cfg.max_paths),
            pids: BoundedMap::new(cfg.max_paths),
            mode,
            cfg,
            last_walk: None,
            walks: 0,
        }
    }

    pub fn mode(&self) -> &CgroupMode {
        &self.mode
    }

    /// True without a cgroup v2 hierarchy: attribution is pid-based and may be missing for
    /// processes that exit before they are first seen.
    pub fn attribution_may_be_missing(&self) -> bool {
        self.mode == CgroupMode::V1Only
    }

    /// Number of walks of the v2 hierarchy so far.
    pub fn walks(&self) -> u64 {
        self.walks
    }

    /// Entries evicted from the id index and the pid cache by the count cap.
    pub fn evictions(&self) -> u64 {
        self.index.evictions() + self.pids.evictions()
    }

    /// Ids currently in the index (live or remembered).
    pub fn known_ids(&self) -> Vec<u64> {
        self.index.keys().copied().collect()
    }

    /// Path of cgroup `id`, relative to the hierarchy root and starting with '/'. Looks in the
    /// index, then re-walks the hierarchy if the last walk is older than `rewalk_interval`.
    /// Always `None` in v1-only mode.
    pub fn path_for_id(&mut self, id: u64) -> Option<Arc<str>> {
        if !matches!(self.mode, CgroupMode::V2 { .. }) {
            return None;
        }
        if id == 1 {
            return Some(Arc::from("/"));
        }
        if let Some(p) = self.index.get(&id) {
            return Some(p.clone());
        }
        // The cgroup itself, by its id, while it exists: no walk, no wait for one.
        if let Some(p) = self.path_by_handle(id) {
            let p: Arc<str> = Arc::from(p);
            self.index.insert(id, p.clone());
            return Some(p);
        }
        let due = self
            .last_walk
            .is_none_or(|t| t.elapsed() >= self.cfg.rewalk_interval);
        if due {
            if let Err(e) = self.refresh() {
                tracing::debug!("cgroup walk failed: {e}");
            }
            return self.index.get(&id).cloned();
        }
        None
    }

    /// A cgroup created now (the kernel's `cgroup_mkdir` record): its path is known before any
    /// lookup, and stays known after the directory is removed. No-op in v1-only mode.
    pub fn created(&mut self, id: u64, path: &str) {
        if matches!(self.mode, CgroupMode::V2 { .. }) && id > 1 {
            self.index.insert(id, Arc::from(path));
        }
    }

    /// [`Self::path_for_id`], then (v2) the path `pid` reports, if its directory has inode `id`.
    pub fn path_for_id_or_pid(&mut self, id: u64, pid: Option<u32>) -> Option<Arc<str>> {
        if let Some(p) = self.path_for_id(id) {
            return Some(p);
        }
        let CgroupMode::V2 { mount, root } = &self.mode else {
            return None;
        };
        let pid = pid?;
        let text = fs::read_to_string(self.cfg.proc_root.join(format!("{pid}/cgroup"))).ok()?;
        let path = text.lines().find_map(|l| l.strip_prefix("0::"))?;
        let rel = strip_root(path, root)?;
        let ino = fs::metadata(mount.join(rel)).ok()?.ino();
        if ino != id {
            return None;
        }
        let path: Arc<str> = Arc::from(path);
        self.index.insert(id, path.clone());
        Some(path)
    }

    /// The cgroup path of a process from `/proc/<pid>/cgroup`: the `0::` line in v2 mode; in
    /// v1-only mode the v1 line that looks most like a container (memory, pids, cpu, then
    /// name=systemd). Remembered per pid so a process that has exited still resolves.
    pub fn path_for_pid(&mut self, pid: u32) -> Option<Arc<str>> {
        let file = self.cfg.proc_root.join(format!("{pid}/cgroup"));
        let fresh = fs::read_to_string(&file)
            .ok()
            .and_then(|text| match self.mode {
                CgroupMode::V2 { .. } => text
                    .lines()
                    .find_map(|l| l.strip_prefix("0::"))
                    .map(str::to_owned),
                CgroupMode::V1Only => best_v1_path(&text),
            });
        match fresh {
            Some(p) => {
                let p: Arc<str> = Arc::from(p);
                self.pids.insert(pid, p.clone());
                Some(p)
            }
            None => self.pids.get(&pid).cloned(),
        }
    }

    /// The path of cgroup `id` from the cgroup itself: `open_by_handle_at` with the id as a
    /// kernfs file handle (needs `CAP_DAC_READ_SEARCH`), then the link of the descriptor. `None`
    /// when the cgroup is gone, or the kernel or the capabilities do not allow it.
    fn path_by_handle(&self, id: u64) -> Option<String> {
        use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
        /// `FILEID_KERNFS`: a kernfs node id as an 8-byte handle.
        const FILEID_KERNFS: i32 = 0xfe;
        let CgroupMode::V2 { mount, root } = &self.mode else {
            return None;
        };
        let dir = fs::File::open(mount).ok()?;
        // struct file_handle { u32 handle_bytes; i32 handle_type; u8 f_handle[8]; }
        let mut handle = [0u8; 16];
        handle[..4].copy_from_slice(&8u32.to_ne_bytes());
        handle[4..8].copy_from_slice(&FILEID_KERNFS.to_ne_bytes());
        handle[8..].copy_from_slice(&id.to_ne_bytes());
        // SAFETY: `handle` is a valid struct file_handle of 8 handle bytes and outlives the
        // call; the kernel only reads it. A returned descriptor is owned by us at once.
        let fd = unsafe {
            libc::open_by_handle_at(
                dir.as_raw_fd(),
                handle.as_mut_ptr().cast::<libc::file_handle>(),
                libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return None;
        }
        // SAFETY: `fd` was just returned by the kernel and is not owned elsewhere.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let link = fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).ok()?;
        let rel = link.strip_prefix(mount).ok()?.to_str()?.to_owned();
        let root = root.trim_end_matches('/');
        Some(match (root.is_empty(), rel.is_empty()) {
            (true, true) => "/".to_owned(),
            (_, true) => root.to_owned(),
            _ => format!("{root}/{rel}"),
        })
    }

    /// Walks the whole v2 hierarchy now, adding every directory's inode → path to the index.
    /// Returns the number of directories seen.
    pub fn refresh(&mut self) -> Result<usize, CgroupError> {
        let CgroupMode::V2 { mount, root } = &self.mode else {
            return Ok(0);
        };
        self.last_walk = Some(Instant::now());
        self.walks += 1;
        let meta = fs::metadata(mount).map_err(|source| CgroupError::Io {
            path: mount.clone(),
            source,
        })?;
        let root = root.trim_end_matches('/').to_owned();
        let mut found = vec![(meta.ino(), root.clone())];
        let mut stack = vec![(mount.clone(), root)];
        while let Some((dir, path)) = stack.pop() {
            // A cgroup removed during the walk is not an error.
            let Ok(entries) = fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                if found.len() >= self.cfg.max_walk_dirs {
                    tracing::warn!(
                        "cgroup walk stopped after {} directories",
                        self.cfg.max_walk_dirs
                    );
                    stack.clear();
                    break;
                }
                if !entry.file_type().is_ok_and(|t| t.is_dir()) {
                    continue;
                }
                let name = entry.file_name();
                let child = format!("{path}/{}", name.to_string_lossy());
                found.push((entry.ino(), child.clone()));
                stack.push((entry.path(), child));
            }
        }
        let n = found.len();
        for (ino, path) in found {
            let path = if path.is_empty() {
                "/".to_owned()
            } else {
                path
            };
            // Keep the existing Arc when unchanged: fewer allocations, same answer.
            if self.index.peek(&ino).is_some_and(|p| **p == *path) {
                self.index.get(&ino);
            } else {
                self.index.insert(ino, Arc::from(path));
            }
        }
        Ok(n)
    }
}

/// The mode a mountinfo text implies.
pub fn mode_from_mountinfo(text: &str) -> CgroupMode {
    let mounts = parse_mountinfo(text);
    match find_cgroup2(&mounts) {
        Some(m) => CgroupMode::V2 {
            mount: m.mount_point.clone(),
            root: m.root.to_string_lossy().into_owned(),
        },
        None => CgroupMode::V1Only,
    }
}

/// `path` relative to the mount whose root is `root`, without the leading '/'.
fn strip_root<'a>(path: &'a str, root: &str) -> Option<&'a str> {
    let root = root.trim_end_matches('/');
    let rest = path.strip_prefix(root)?;
    if !rest.is_empty() && !rest.starts_with('/') {
        return None;
    }
    Some(rest.trim_start_matches('/'))
}

/// Picks the v1 path of a `/proc/<pid>/cgroup` text: the first (by controller preference) that
/// parses as a container or pod cgroup, else the first non-root one, else "/".
pub fn best_v1_path(text: &str) -> Option<String> {
    let rank = |ctrls: &str| {
        let has = |c: &str| ctrls.split(',').any(|x| x == c);
        if has("memory") {
            0
        } else if has("pids") {
            1
        } else if has("cpu") || has("cpuacct") {
            2
        } else if has("name=systemd") {
            3
        } else if ctrls.is_empty() {
            5
        } else {
            4
        }
    };
    let mut lines: Vec<(u8, &str)> = text
        .lines()
        .filter_map(|l| {
            let mut it = l.splitn(3, ':');
            let (_, ctrls, path) = (it.next()?, it.next()?, it.next()?);
            Some((rank(ctrls), path))
        })
        .collect();
    if lines.is_empty() {
        return None;
    }
    lines.sort_by_key(|(r, _)| *r);
    let pick = lines
        .iter()
        .find(|(_, p)| parse_cgroup_path(p).is_some() || parse_pod_cgroup(p).is_some())
        .or_else(|| lines.iter().find(|(_, p)| !is_root(p)))
        .map_or("/", |(_, p)| *p);
    Some(pick.to_owned())
}

#[cfg(test)]
mod tests;
