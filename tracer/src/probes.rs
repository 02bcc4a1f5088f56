//! The kernel side of the event source: loads the kernel programs with offsets from the
//! running kernel's BTF, attaches them (BTF tracepoints first, raw tracepoints as the
//! fallback), and reads their counters. [`crate::live`] reads their ring buffer. These two are
//! the only modules that depend on aya.
use std::path::{Path, PathBuf};

use aya::{
    maps::{Array, MapData, PerCpuArray, RingBuf},
    programs::{BtfTracePoint, RawTracePoint},
    Ebpf, EbpfLoader, Endianness,
};
use thiserror::Error;
use tracer_common::{
    stat, Config, Hook, COMM_LEN, DEFAULT_SIGNAL_MASK, HOOKS, MAX_RUNTIME_COMMS, NSIG,
};

use crate::{
    btf::{BtfError, KernelBtf, ResolvedBtf},
    patch::{PatchError, PatchedObject},
    refusal::{chain, is_eperm, Refusal},
};

/// The compiled kernel programs.
static EBPF_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/tracer"));

#[derive(Debug, Error)]
pub enum ProbeError {
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
pub struct ProbeOptions {
    pub btf_path: PathBuf,
    pub signal_mask: u64,
    /// Stop signals (bit `n - 1` for signal `n`): TERM, INT, QUIT, HUP, KILL and extras.
    pub stop_mask: u64,
    pub ring_bytes: u32,
    pub mode: ProbeMode,
    /// Force raw tracepoints (tests of the fallback path).
    pub force_raw: bool,
    /// Process names of container runtimes besides the built-in ones
    /// ([`crate::engine::RUNTIME_COMMS`]): the signals they send are emitted whatever their
    /// number.
    pub runtime_comms: Vec<String>,
}

impl Default for ProbeOptions {
    fn default() -> Self {
        Self {
            btf_path: PathBuf::from(crate::btf::VMLINUX_BTF),
            signal_mask: DEFAULT_SIGNAL_MASK,
            stop_mask: crate::event::Signal::stop_mask(&[]),
            ring_bytes: 4 << 20,
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
    /// Things that work but not as well as they could (missing optional hooks, fields).
    pub warnings: Vec<String>,
    /// Hooks whose BTF tracepoint program this kernel should have loaded and did not: they
    /// run on the raw tracepoint at several times the cost. Never empty without a reason.
    pub degraded: Vec<String>,
    /// This kernel has no BTF tracepoint path (no `bpf_get_current_task_btf`, before 5.11):
    /// the raw tracepoints are its normal path.
    pub raw_is_native: bool,
    /// `CLOCK_MONOTONIC` once every hook was attached. The hooks attach one at a time, so an
    /// event before it may have a missing counterpart (a signal whose exit fell in the gap):
    /// the reader drops them, and an episode never opens on half the picture.
    pub attached_at_ns: u64,
}

/// Counters kept by the kernel side, summed over CPUs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KernelStats {
    pub lost: u64,
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

fn kernel_err(what: impl Into<String>, err: impl std::error::Error + 'static) -> ProbeError {
    let what = what.into();
    if is_eperm(&err) {
        return ProbeError::Permission { what };
    }
    ProbeError::Kernel {
        what,
        detail: chain(&err),
    }
}

/// Reads and parses the kernel BTF named by `path`, and keeps what the agent needs of it.
pub fn read_btf(path: &Path) -> Result<ResolvedBtf, ProbeError> {
    KernelBtf::from_file(path)
        .map(KernelBtf::into_resolved)
        .map_err(|source| ProbeError::Btf {
            path: path.to_path_buf(),
            source,
        })
}

/// Builds the programs' configuration from the running kernel's BTF.
pub fn kernel_config(btf: &ResolvedBtf, opts: &ProbeOptions) -> (Config, Vec<String>) {
    let mut config = Config::DEFAULT;
    config.off = btf.offsets;
    config.signal_mask = opts.signal_mask;
    config.stop_mask = opts.stop_mask;
    config.runtime_comms = runtime_comm_table(&opts.runtime_comms);
    config.agent_tgid = std::process::id();
    config.exit_has_group_dead = u32::from(btf.exit_has_group_dead);
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

/// Elements of the kernel's watch table (one byte per PID, eight PIDs per element):
/// `kernel.pid_max` rounded up, or the largest PID a 64-bit kernel allows (4 MiB) when it
/// cannot be read.
fn watch_elements() -> u32 {
    const PID_MAX_LIMIT: u32 = 1 << 22;
    let pid_max = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .filter(|&n| n > 0 && n <= PID_MAX_LIMIT)
        .unwrap_or(PID_MAX_LIMIT);
    pid_max.div_ceil(8)
}

impl Probes {
    /// Loads the programs and attaches every hook, with offsets from `btf`.
    pub fn load(opts: &ProbeOptions, btf: &ResolvedBtf) -> Result<Self, ProbeError> {
        if EBPF_OBJECT.is_empty() {
            return Err(ProbeError::NoObject);
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
            .map_max_entries("WATCHED", watch_elements())
            .load(object.bytes())
            .map_err(|e| kernel_err("loading the eBPF object", e))?;

        // The BTF tracepoint programs need bpf_get_current_task_btf (5.11+); on an older
        // kernel the raw tracepoints are the path, not a fallback.
        let btf_skip = if opts.force_raw {
            Some("skipped (raw tracepoints forced)")
        } else if !btf.has_current_task_btf {
            Some(NO_TASK_BTF)
        } else {
            None
        };
        let mut attached = Vec::new();
        let mut degraded = Vec::new();
        for h in &HOOKS {
            match attach_hook(&mut ebpf, h, opts.mode, btf_skip, &aya_btf)? {
                Outcome::Attached(a, refused) => {
                    attached.push(a);
                    degraded.extend(refused);
                }
                Outcome::Missing(why) => warnings.push(why),
            }
        }
        for w in &warnings {
            tracing::warn!("{w}");
        }
        for d in &degraded {
            tracing::error!("{d}");
        }
        Ok(Self {
            ebpf,
            attached,
            warnings,
            degraded,
            raw_is_native: !btf.has_current_task_btf,
            attached_at_ns: crate::decode::Clock::monotonic_now_ns(),
        })
    }

    /// How many hooks are attached, and how: "6 hooks attached: signal_generate (tp_btf), …".
    /// Watches the thread groups `tgids` (their exits are emitted): the processes whose stop
    /// a previous agent saw begin ([`crate::resume`]). Returns how many could be marked.
    pub fn watch(&mut self, tgids: &[u32]) -> usize {
        let Some(map) = self.ebpf.map_mut("WATCHED") else {
            return 0;
        };
        let Ok(mut table) = Array::<&mut MapData, u64>::try_from(map) else {
            return 0;
        };
        let mut marked = 0;
        for &tgid in tgids {
            let (index, byte) = (tgid / 8, (tgid % 8) * 8);
            let Ok(word) = table.get(&index, 0) else {
                continue;
            };
            if table.set(index, word | (1u64 << byte), 0).is_ok() {
                marked += 1;
            }
        }
        marked
    }

    pub fn describe(&self) -> String {
        let list: Vec<String> = self
            .attached
            .iter()
            .map(|a| format!("{} ({})", a.hook, a.how))
            .collect();
        format!("{} hooks attached: {}", list.len(), list.join(", "))
    }

    /// Takes the ring buffer out (once).
    pub fn take_ring(&mut self) -> Result<RingBuf<MapData>, ProbeError> {
        let map = self
            .ebpf
            .take_map("EVENTS")
            .ok_or_else(|| ProbeError::Kernel {
                what: "EVENTS map".into(),
                detail: "missing".into(),
            })?;
        RingBuf::try_from(map).map_err(|e| kernel_err("EVENTS ring buffer", e))
    }

    /// Reads the kernel-side counters; the per-signal ones (64 map reads) only `with_signals`.
    pub fn stats(&self, with_signals: bool) -> Result<KernelStats, ProbeError> {
        let sum = |name: &str, index: u32| -> Result<u64, ProbeError> {
            let map = self.ebpf.map(name).ok_or_else(|| ProbeError::Kernel {
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

/// What became of one hook.
enum Outcome {
    /// Attached; with the reason when it runs on the raw tracepoint although this kernel
    /// should have taken its BTF program.
    Attached(Attached, Option<String>),
    /// An optional hook that could not be attached, and what that loses.
    Missing(String),
}

/// Attaches one hook: its BTF tracepoint program unless `btf_skip` says why not, else its raw
/// tracepoint program. A required hook that attaches neither way is an error.
fn attach_hook(
    ebpf: &mut Ebpf,
    h: &Hook,
    mode: ProbeMode,
    btf_skip: Option<&str>,
    btf: &aya::Btf,
) -> Result<Outcome, ProbeError> {
    let hook = h.tracepoint;
    let (btf_name, raw_name) = match mode {
        ProbeMode::Trace => (h.btf, Some(h.raw)),
        ProbeMode::Floor => (h.floor, None),
    };
    let btf_err = match btf_skip.filter(|_| raw_name.is_some()) {
        Some(why) => Refusal::Skipped(why.to_string()),
        None => match attach_btf(ebpf, btf_name, hook, btf) {
            Ok(()) => {
                return Ok(Outcome::Attached(
                    Attached {
                        hook,
                        how: "tp_btf",
                    },
                    None,
                ))
            }
            Err(e) => e,
        },
    };
    let raw_result = match raw_name {
        Some(raw) => attach_raw(ebpf, raw, hook),
        None => Err(Refusal::Other("no raw fallback in this mode".to_string())),
    };
    match raw_result {
        Ok(()) => {
            let refused = (!matches!(btf_err, Refusal::Skipped(_))).then(|| {
                format!(
                    "{hook}: the BTF tracepoint program {btf_name} was not loaded ({btf_err}); \
                     tracing goes on with the raw tracepoint, which costs about 4x more per event"
                )
            });
            Ok(Outcome::Attached(
                Attached {
                    hook,
                    how: "raw_tp",
                },
                refused,
            ))
        }
        Err(raw_err) => match h.without {
            Some(loses) => Ok(Outcome::Missing(format!(
                "{hook}: not attached, {loses} (tp_btf: {btf_err}; raw_tp: {raw_err})"
            ))),
            None if matches!(btf_err, Refusal::Permission(_))
                || matches!(raw_err, Refusal::Permission(_)) =>
            {
                Err(ProbeError::Permission {
                    what: format!("attaching to {hook}"),
                })
            }
            None => Err(ProbeError::Attach {
                hook: hook.to_string(),
                btf: btf_err.to_string(),
                raw: raw_err.to_string(),
            }),
        },
    }
}

/// Why the BTF tracepoint programs are not tried on a kernel without their helper.
const NO_TASK_BTF: &str = "not tried: this kernel has no bpf_get_current_task_btf (Linux 5.11+); \
                           raw tracepoints are its path";

fn attach_btf(ebpf: &mut Ebpf, prog: &str, hook: &str, btf: &aya::Btf) -> Result<(), Refusal> {
    let p: &mut BtfTracePoint = ebpf
        .program_mut(prog)
        .ok_or_else(|| Refusal::Other(format!("program {prog} missing from the object")))?
        .try_into()
        .map_err(|e| Refusal::classify(&e))?;
    p.load(hook, btf).map_err(|e| Refusal::classify(&e))?;
    p.attach().map_err(|e| Refusal::classify(&e))?;
    Ok(())
}

fn attach_raw(ebpf: &mut Ebpf, prog: &str, hook: &str) -> Result<(), Refusal> {
    let p: &mut RawTracePoint = ebpf
        .program_mut(prog)
        .ok_or_else(|| Refusal::Other(format!("program {prog} missing from the object")))?
        .try_into()
        .map_err(|e| Refusal::classify(&e))?;
    p.load().map_err(|e| Refusal::classify(&e))?;
    p.attach(hook).map_err(|e| Refusal::classify(&e))?;
    Ok(())
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

    /// Every program the hook table names is in the compiled object (the `probe!` entry
    /// points of tracer-ebpf), and nothing else is.
    #[test]
    fn every_hook_program_is_in_the_object() {
        use object::{Object, ObjectSection, ObjectSymbol};
        if EBPF_OBJECT.is_empty() {
            assert!(
                std::env::var_os("SIGTRACE_NO_SKIP").is_none(),
                "built without the kernel programs"
            );
            return;
        }
        let obj = object::File::parse(EBPF_OBJECT).expect("the eBPF object");
        let mut programs: Vec<String> = obj
            .symbols()
            .filter(|s| s.kind() == object::SymbolKind::Text && s.is_global())
            // Programs live in their hook's section (`tp_btf/…`, `raw_tp/…`), helpers in .text.
            .filter(|s| {
                s.section_index()
                    .and_then(|i| obj.section_by_index(i).ok())
                    .and_then(|sec| sec.name().ok().map(|n| !n.starts_with(".text")))
                    .unwrap_or(false)
            })
            .filter_map(|s| s.name().ok().map(str::to_string))
            .collect();
        programs.sort();
        let mut named: Vec<String> = HOOKS
            .iter()
            .flat_map(|h| [h.btf, h.raw, h.floor])
            .map(str::to_string)
            .collect();
        named.sort();
        assert_eq!(programs, named);
    }
}
