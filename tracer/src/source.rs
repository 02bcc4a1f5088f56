//! The kernel side of the event source: loads the kernel programs with offsets from the
//! running kernel's BTF, attaches them (BTF tracepoints first, raw tracepoints as the
//! fallback), and reads their counters. [`crate::live`] reads their ring buffer. These two are
//! the only modules that depend on aya.
use std::path::{Path, PathBuf};

use aya::{
    maps::{MapData, PerCpuArray, RingBuf},
    programs::{BtfTracePoint, RawTracePoint},
    Ebpf, EbpfLoader, Endianness,
};
use thiserror::Error;
use tracer_common::{stat, Config, COMM_LEN, DEFAULT_SIGNAL_MASK, MAX_RUNTIME_COMMS, NSIG};

use crate::{
    btf::{BtfError, KernelBtf, ResolvedBtf},
    patch::{PatchError, PatchedObject},
};

/// The compiled kernel programs.
static EBPF_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/tracer"));

/// The hooks, by tracepoint name; the last two are optional (a kernel without them still
/// works, without OOM reports or runtime execs).
pub const HOOKS: [&str; 5] = [
    "signal_generate",
    "signal_deliver",
    "sched_process_exit",
    "mark_victim",
    "sched_process_exec",
];

#[derive(Debug, Error)]
pub enum SourceError {
    #[error("preparing the kernel programs for this kernel: {0}")]
    Patch(#[from] PatchError),
    #[error(
        "kernel BTF is not readable at {path}: {source}. sigtrace needs a kernel built with \
         CONFIG_DEBUG_INFO_BTF=y; on a kernel without it, pass a BTF file for this exact kernel \
         with --btf FILE"
    )]
    Btf {
        path: PathBuf,
        #[source]
        source: BtfError,
    },
    #[error(
        "permission denied while {what}: sigtrace must run as root (or with CAP_BPF and \
         CAP_PERFMON; CAP_SYS_ADMIN on kernels before 5.8)"
    )]
    Permission { what: String },
    #[error("the kernel programs are missing from this build (it was built with AYA_BUILD_SKIP)")]
    NoObject,
    #[error("{what}: {detail}")]
    Kernel { what: String, detail: String },
    #[error("cannot attach to tracepoint {hook}: as tp_btf: {btf}; as raw_tp: {raw}")]
    Attach {
        hook: String,
        btf: String,
        raw: String,
    },
}

/// Which programs to attach.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeMode {
    /// The real programs.
    Trace,
    /// Empty programs on the same hooks (overhead floor for benchmarks).
    Floor,
}

#[derive(Clone, Debug)]
pub struct SourceOptions {
    pub btf_path: PathBuf,
    pub signal_mask: u64,
    /// Stop signals (bit `n - 1` for signal `n`): TERM, INT, QUIT, HUP, KILL and extras.
    pub stop_mask: u64,
    pub ring_bytes: u32,
    pub emit_thread_exits: bool,
    pub mode: ProbeMode,
    /// Force raw tracepoints (tests of the fallback path).
    pub force_raw: bool,
    /// Process names of container runtimes besides the built-in ones
    /// ([`crate::engine::RUNTIME_COMMS`]): the signals they send are emitted whatever their
    /// number.
    pub runtime_comms: Vec<String>,
}

impl Default for SourceOptions {
    fn default() -> Self {
        Self {
            btf_path: PathBuf::from(crate::btf::VMLINUX_BTF),
            signal_mask: DEFAULT_SIGNAL_MASK,
            stop_mask: crate::event::Signal::stop_mask(&[]),
            ring_bytes: 4 << 20,
            emit_thread_exits: false,
            mode: ProbeMode::Trace,
            force_raw: false,
            runtime_comms: Vec::new(),
        }
    }
}

/// How one hook got attached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attached {
    pub hook: &'static str,
    /// "tp_btf" or "raw_tp".
    pub how: &'static str,
}

/// Loaded and attached programs.
pub struct Probes {
    ebpf: Ebpf,
    pub attached: Vec<Attached>,
    /// Things that work but not as well as they could (fallbacks, missing optional hooks).
    pub warnings: Vec<String>,
}

/// Counters kept by the kernel side, summed over CPUs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KernelStats {
    pub lost: u64,
    pub lost_by_kind: [u64; 6],
    pub emitted: u64,
    pub counted_only: u64,
    pub self_filtered: u64,
    pub thread_exits_folded: u64,
    /// Execs that are not a runtime's exec into a container, only counted.
    pub execs_counted: u64,
    /// Exits of processes nothing watched (no signal, exec or OOM kill of theirs or their
    /// parent's was emitted) and no signal killed, only counted.
    pub exits_counted: u64,
    /// Watch requests for a PID past the kernel's table (`kernel.pid_max` raised after
    /// start-up); such exits are always emitted.
    pub watch_full: u64,
    /// Signals outside the emit mask, by number.
    pub counted_signals: Vec<(i32, u64)>,
}

fn is_eperm(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(err);
    while let Some(e) = cur {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if matches!(io.raw_os_error(), Some(libc::EPERM) | Some(libc::EACCES)) {
                return true;
            }
        }
        if e.to_string().contains("Operation not permitted") {
            return true;
        }
        cur = e.source();
    }
    false
}

fn kernel_err(what: impl Into<String>, err: impl std::error::Error + 'static) -> SourceError {
    let what = what.into();
    if is_eperm(&err) {
        return SourceError::Permission { what };
    }
    let mut detail = err.to_string();
    let mut src = err.source();
    while let Some(s) = src {
        detail.push_str(": ");
        detail.push_str(&s.to_string());
        src = s.source();
    }
    SourceError::Kernel { what, detail }
}

/// Reads and parses the kernel BTF named by `path`, and keeps what the agent needs of it.
pub fn read_btf(path: &Path) -> Result<ResolvedBtf, SourceError> {
    KernelBtf::from_file(path)
        .map(KernelBtf::into_resolved)
        .map_err(|source| SourceError::Btf {
            path: path.to_path_buf(),
            source,
        })
}

/// Builds the programs' configuration from the running kernel's BTF.
pub fn kernel_config(btf: &ResolvedBtf, opts: &SourceOptions) -> (Config, Vec<String>) {
    let mut config = Config::DEFAULT;
    config.off = btf.offsets;
    config.signal_mask = opts.signal_mask;
    config.stop_mask = opts.stop_mask;
    config.runtime_comms = runtime_comm_table(&opts.runtime_comms);
    config.agent_tgid = std::process::id();
    config.exit_has_group_dead = u32::from(btf.exit_has_group_dead);
    config.emit_thread_exits = u32::from(opts.emit_thread_exits);
    // Wake the reader by the time about an eighth of the ring is used, all CPUs together;
    // its drain timer covers the rest. Every possible CPU counts, not only those the agent
    // may run on (a DaemonSet's CPU limit): any of them can write to the ring.
    let cpus = aya::util::nr_cpus().unwrap_or(1) as u32;
    config.wakeup_bytes = (opts.ring_bytes / 8 / cpus.max(1)).max(4096);
    let warnings = btf
        .missing
        .iter()
        .map(|m| format!("kernel offset unavailable, field left empty: {m}"))
        .collect();
    (config, warnings)
}

/// Words of the kernel's watch bitmap (one bit per PID): `kernel.pid_max` rounded up, or
/// the largest PID a 64-bit kernel allows (512 KiB) when it cannot be read.
fn watch_words() -> u32 {
    const PID_MAX_LIMIT: u32 = 1 << 22;
    let pid_max = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .filter(|&n| n > 0 && n <= PID_MAX_LIMIT)
        .unwrap_or(PID_MAX_LIMIT);
    pid_max.div_ceil(64)
}

impl Probes {
    /// Loads the programs and attaches every hook, with offsets from `btf`.
    pub fn load(opts: &SourceOptions, btf: &ResolvedBtf) -> Result<Self, SourceError> {
        if EBPF_OBJECT.is_empty() {
            return Err(SourceError::NoObject);
        }
        let (config, mut warnings) = kernel_config(btf, opts);
        let aya_btf = aya::Btf::parse(&btf.bytes, Endianness::default())
            .map_err(|e| kernel_err(format!("parsing {}", opts.btf_path.display()), e))?;
        if let Err(e) = rlimit_memlock() {
            tracing::debug!(
                "could not raise RLIMIT_MEMLOCK ({e}); BPF memory is charged to the memory cgroup"
            );
        }
        let object = PatchedObject::new(EBPF_OBJECT, &config.off)?;
        tracing::debug!(
            loads = object.patched.loads,
            zeroed = object.patched.zeroed,
            "kernel field offsets patched into the BTF tracepoint programs"
        );
        let mut ebpf = EbpfLoader::new()
            .btf(Some(&aya_btf))
            .override_global("CONFIG", &config, true)
            .map_max_entries("EVENTS", opts.ring_bytes)
            .map_max_entries("WATCHED", watch_words())
            .load(object.bytes())
            .map_err(|e| kernel_err("loading the eBPF object", e))?;

        let mut attached = Vec::new();
        for hook in HOOKS {
            let optional = matches!(hook, "mark_victim" | "sched_process_exec");
            let (btf_name, raw_name) = match opts.mode {
                ProbeMode::Trace => (hook.to_string(), Some(format!("raw_{hook}"))),
                ProbeMode::Floor => (format!("floor_{hook}"), None),
            };
            let btf_result = if opts.force_raw && raw_name.is_some() {
                Err("skipped (raw tracepoints forced)".to_string())
            } else {
                attach_btf(&mut ebpf, &btf_name, hook, &aya_btf)
            };
            match btf_result {
                Ok(()) => attached.push(Attached {
                    hook,
                    how: "tp_btf",
                }),
                Err(btf_err) => {
                    let raw_result = match &raw_name {
                        Some(raw) => attach_raw(&mut ebpf, raw, hook),
                        None => Err("no raw fallback in this mode".to_string()),
                    };
                    match raw_result {
                        Ok(()) => {
                            if !opts.force_raw {
                                warnings.push(format!(
                                    "{hook}: BTF tracepoint unavailable ({btf_err}); using the raw tracepoint"
                                ));
                            }
                            attached.push(Attached {
                                hook,
                                how: "raw_tp",
                            })
                        }
                        Err(raw_err) if optional => warnings.push(format!(
                            "{hook}: not attached, {} (tp_btf: {btf_err}; raw_tp: {raw_err})",
                            if hook == "mark_victim" {
                                "OOM kills will not be reported"
                            } else {
                                "runtime execs (preStop hooks) will not be reported"
                            }
                        )),
                        Err(raw_err) => {
                            if btf_err.contains("permission denied")
                                || raw_err.contains("permission denied")
                            {
                                return Err(SourceError::Permission {
                                    what: format!("attaching to {hook}"),
                                });
                            }
                            return Err(SourceError::Attach {
                                hook: hook.to_string(),
                                btf: btf_err,
                                raw: raw_err,
                            });
                        }
                    }
                }
            }
        }
        for w in &warnings {
            tracing::warn!("{w}");
        }
        Ok(Self {
            ebpf,
            attached,
            warnings,
        })
    }

    /// Takes the ring buffer out (once).
    pub fn take_ring(&mut self) -> Result<RingBuf<MapData>, SourceError> {
        let map = self
            .ebpf
            .take_map("EVENTS")
            .ok_or_else(|| SourceError::Kernel {
                what: "EVENTS map".into(),
                detail: "missing".into(),
            })?;
        RingBuf::try_from(map).map_err(|e| kernel_err("EVENTS ring buffer", e))
    }

    /// Reads the kernel-side counters; the per-signal ones (64 map reads) only `with_signals`.
    pub fn stats(&self, with_signals: bool) -> Result<KernelStats, SourceError> {
        let sum = |name: &str, index: u32| -> Result<u64, SourceError> {
            let map = self.ebpf.map(name).ok_or_else(|| SourceError::Kernel {
                what: format!("{name} map"),
                detail: "missing".into(),
            })?;
            let arr: PerCpuArray<&MapData, u64> =
                PerCpuArray::try_from(map).map_err(|e| kernel_err(name, e))?;
            let values = arr.get(&index, 0).map_err(|e| kernel_err(name, e))?;
            Ok(values.iter().sum())
        };
        let mut s = KernelStats {
            lost: sum("STATS", stat::LOST)?,
            emitted: sum("STATS", stat::EMITTED)?,
            counted_only: sum("STATS", stat::COUNTED_ONLY)?,
            self_filtered: sum("STATS", stat::SELF_FILTERED)?,
            thread_exits_folded: sum("STATS", stat::THREAD_EXITS_FOLDED)?,
            execs_counted: sum("STATS", stat::EXECS_COUNTED)?,
            exits_counted: sum("STATS", stat::EXITS_COUNTED)?,
            watch_full: sum("STATS", stat::WATCH_FULL)?,
            ..Default::default()
        };
        for k in 1..6u32 {
            s.lost_by_kind[k as usize] = sum("STATS", stat::LOST_BY_KIND + k)?;
        }
        for sig in (1..NSIG as u32).filter(|_| with_signals) {
            let n = sum("SIGNAL_COUNTS", sig)?;
            if n > 0 {
                s.counted_signals.push((sig as i32, n));
            }
        }
        Ok(s)
    }
}

/// The kernel's table of runtime process names: the built-in ones, then `extra`, as the
/// kernel stores a comm (15 bytes and a NUL at most, NUL-padded), at most
/// [`MAX_RUNTIME_COMMS`] (the rest are left out, with a warning).
fn runtime_comm_table(extra: &[String]) -> [[u64; 2]; MAX_RUNTIME_COMMS] {
    let mut table = [[0u64; 2]; MAX_RUNTIME_COMMS];
    let names: Vec<&str> = crate::engine::RUNTIME_COMMS
        .iter()
        .copied()
        .chain(extra.iter().map(String::as_str))
        .filter(|n| !n.is_empty())
        .collect();
    if names.len() > MAX_RUNTIME_COMMS {
        tracing::warn!(
            "only the first {MAX_RUNTIME_COMMS} runtime names reach the kernel: {:?} left out",
            &names[MAX_RUNTIME_COMMS..]
        );
    }
    for (slot, name) in table.iter_mut().zip(names) {
        let mut key = [0u8; COMM_LEN];
        let n = name.len().min(COMM_LEN - 1);
        key[..n].copy_from_slice(&name.as_bytes()[..n]);
        let word = |b: &[u8]| u64::from_ne_bytes(b.try_into().unwrap_or([0; 8]));
        *slot = [word(&key[..8]), word(&key[8..])];
    }
    table
}

fn attach_btf(ebpf: &mut Ebpf, prog: &str, hook: &str, btf: &aya::Btf) -> Result<(), String> {
    let p: &mut BtfTracePoint = ebpf
        .program_mut(prog)
        .ok_or_else(|| format!("program {prog} missing from the object"))?
        .try_into()
        .map_err(|e| format!("{e}"))?;
    p.load(hook, btf).map_err(|e| describe(&e))?;
    p.attach().map_err(|e| describe(&e))?;
    Ok(())
}

fn attach_raw(ebpf: &mut Ebpf, prog: &str, hook: &str) -> Result<(), String> {
    let p: &mut RawTracePoint = ebpf
        .program_mut(prog)
        .ok_or_else(|| format!("program {prog} missing from the object"))?
        .try_into()
        .map_err(|e| format!("{e}"))?;
    p.load().map_err(|e| describe(&e))?;
    p.attach(hook).map_err(|e| describe(&e))?;
    Ok(())
}

fn describe(err: &(dyn std::error::Error + 'static)) -> String {
    if is_eperm(err) {
        return "permission denied".to_string();
    }
    let mut s = err.to_string();
    let mut src = err.source();
    while let Some(e) = src {
        s.push_str(": ");
        s.push_str(&e.to_string());
        src = e.source();
    }
    // The verifier log is long; its first and last lines say what matters.
    if s.len() > 600 {
        let head: String = s.chars().take(300).collect();
        let tail: String = s
            .chars()
            .rev()
            .take(300)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        s = format!("{head} … {tail}");
    }
    s
}

fn rlimit_memlock() -> std::io::Result<()> {
    let lim = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: valid pointer to an rlimit.
    if unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &lim) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_names_are_stored_as_the_kernel_keeps_a_comm() {
        let table = runtime_comm_table(&["my-runtime-with-a-long-name".to_string()]);
        let word = |s: &[u8]| u64::from_ne_bytes(s.try_into().unwrap());
        assert_eq!(table[0], [word(b"runc\0\0\0\0"), 0]);
        // containerd-shim-runc-v2 is "containerd-shim" (15 bytes and the NUL) in the kernel.
        let shim = crate::engine::RUNTIME_COMMS
            .iter()
            .position(|&n| n == "containerd-shim")
            .unwrap();
        assert_eq!(table[shim], [word(b"containe"), word(b"rd-shim\0")]);
        let extra = crate::engine::RUNTIME_COMMS.len();
        assert_eq!(table[extra], [word(b"my-runti"), word(b"me-with\0")]);
        assert_eq!(table[extra + 1], [0, 0]);
    }
}
