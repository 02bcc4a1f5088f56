//! `cargo xtask bench engine` (= `cargo bench -p tracer --bench engine`): the replay hot path
//! and the engine's memory per tracked process. Single-threaded, pinned to one CPU.
//!
//! 1. Replay throughput: writes a synthetic journal (default 10 M events, override with
//!    `SIGTRACE_BENCH_EVENTS`) whose events look like a busy node: many processes each getting
//!    SIGTERM (generate + deliver + exit; with a handler, or killed by the default action),
//!    SIGKILL escalations after a grace period, container stops (runtime SIGTERM to a PID-1,
//!    kernel SIGKILL to the rest of the namespace), non-stop terminating signals, and plenty
//!    of unrelated exits, interleaved in time order. Then times, from the (page-cached) files:
//!    read + frame check + decode (`JournalReader::next_item`, `Item::event`), and read + decode + engine
//!    (`Engine::push`, `finish`, counting the records out), the same loop as
//!    `sigtrace replay` minus printing.
//! 2. Memory: a counting global allocator measures the net heap the engine holds for 100 k
//!    tracked processes without an episode, and for 100 k open shutdown episodes.
//!
//! Prints a markdown summary.
use std::alloc::{GlobalAlloc, Layout, System};
use std::cmp::Ordering as CmpOrdering;
use std::collections::BinaryHeap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use tracer::container::ContainerInfo;
use tracer::decode::{encode, Clock, KernelRecord};
use tracer::driver::{drive, OnBadInput};
use tracer::engine::{Engine, EngineConfig, Output};
use tracer::event::{Disposition, Event, EventKind, SigResult, Signal, StopDispositions, Task};
use tracer::journal::{JournalOptions, JournalReader, JournalWriter, ReaderOptions, SessionInfo};
use tracer::output::OutputSink;
use tracer::pipeline::Pipeline;
use tracer_common::{
    kind, task_flags, Header, ProcessExit, SignalDeliver, SignalGenerate, TaskInfo,
};

// ---- counting allocator ------------------------------------------------------------------------

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
/// The peak is tracked only while this is set (a compare-and-swap loop per allocation would
/// weigh on the timed runs, which the real binary does not pay).
static TRACK_PEAK: AtomicBool = AtomicBool::new(false);

fn add(n: usize) {
    let now = CURRENT.fetch_add(n, Ordering::Relaxed) + n;
    if TRACK_PEAK.load(Ordering::Relaxed) {
        PEAK.fetch_max(now, Ordering::Relaxed);
    }
}

fn sub(n: usize) {
    CURRENT.fetch_sub(n, Ordering::Relaxed);
}

// SAFETY: forwards to the system allocator, only counting sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            add(l.size());
        }
        p
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(l) };
        if !p.is_null() {
            add(l.size());
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) };
        sub(l.size());
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        let q = unsafe { System.realloc(p, l, new) };
        if !q.is_null() {
            sub(l.size());
            add(new);
        }
        q
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn heap_now() -> usize {
    CURRENT.load(Ordering::Relaxed)
}

fn reset_peak() {
    PEAK.store(heap_now(), Ordering::Relaxed);
}

fn heap_peak() -> usize {
    PEAK.load(Ordering::Relaxed)
}

// ---- synthetic journal -------------------------------------------------------------------------

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn task(pid: u32, ppid: u32, comm: &str, parent: &str, cgroup_id: u64, start_ns: u64) -> TaskInfo {
    let mut t = TaskInfo {
        tgid: pid,
        tid: pid,
        ppid,
        ns_pid: pid,
        cgroup_id,
        start_ns,
        ..Default::default()
    };
    t.comm[..comm.len()].copy_from_slice(comm.as_bytes());
    t.parent_comm[..parent.len()].copy_from_slice(parent.as_bytes());
    t
}

fn hdr(k: u32, ts: u64, cpu: u32) -> Header {
    Header {
        kind: k,
        cpu,
        ts_ns: ts,
    }
}

const HANDLER: u8 = tracer_common::disp::HANDLER;
const DEFAULT: u8 = tracer_common::disp::DEFAULT;
const SI_KERNEL: i32 = 0x80;

fn generate(
    ts: u64,
    sig: i32,
    code: i32,
    sender: TaskInfo,
    target: TaskInfo,
    disp: u8,
) -> KernelRecord {
    KernelRecord::Generate(SignalGenerate {
        header: hdr(kind::SIGNAL_GENERATE, ts, sender.tgid % 2),
        sig,
        code,
        group: 1,
        result: 0,
        sender,
        target,
        disp: [disp, disp, DEFAULT, DEFAULT, DEFAULT, 0, 0, 0],
        target_blocked: 0,
    })
}

fn deliver(
    ts: u64,
    sig: i32,
    receiver: TaskInfo,
    handler: bool,
    group_exit_code: i32,
) -> KernelRecord {
    KernelRecord::Deliver(SignalDeliver {
        header: hdr(kind::SIGNAL_DELIVER, ts, receiver.tgid % 2),
        sig,
        code: 0,
        receiver,
        sa_handler: if handler { 0x5555_0000 } else { 0 },
        sa_flags: 0,
        group_exit_code,
        _pad: 0,
    })
}

/// `status`: exit code `c` is `c << 8`, a signal `s` is `s`.
fn exit(ts: u64, t: TaskInfo, status: i32) -> KernelRecord {
    KernelRecord::Exit(ProcessExit {
        header: hdr(kind::PROCESS_EXIT, ts, t.tgid % 2),
        task: t,
        exit_code: status,
        group_dead: 1,
    })
}

struct Pend {
    ts: u64,
    seq: u64,
    rec: KernelRecord,
}
impl PartialEq for Pend {
    fn eq(&self, o: &Self) -> bool {
        (self.ts, self.seq) == (o.ts, o.seq)
    }
}
impl Eq for Pend {}
impl PartialOrd for Pend {
    fn partial_cmp(&self, o: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(o))
    }
}
impl Ord for Pend {
    fn cmp(&self, o: &Self) -> CmpOrdering {
        (o.ts, o.seq).cmp(&(self.ts, self.seq))
    }
}

#[derive(Default, Debug)]
struct Mix {
    scenarios: [u64; 6],
    events: u64,
    containers: u64,
}

const MIX_NAMES: [&str; 6] = [
    "unrelated exit (1 event)",
    "non-stop terminating signal to an untracked process, handled (2 events)",
    "SIGTERM handled, exit 0 (3 events)",
    "SIGTERM, default action kills it (3 events)",
    "SIGTERM handled but too slow, SIGKILL after the grace period (5 events)",
    "container stop: runtime SIGTERM to PID 1, exit 0, kernel SIGKILL to its child (6 events)",
];

/// Writes about `events` events (a few more: scenarios are not cut) in time order.
fn write_realistic_journal(dir: &Path, events: u64) -> (Vec<PathBuf>, Mix) {
    let session = SessionInfo {
        version: "bench".into(),
        hostname: "bench".into(),
        clock_offset_ns: 1_700_000_000_000_000_000,
        started_wall_ns: 1_700_000_000_000_000_000,
        boot_id: String::new(),
        shaping: None,
    };
    let mut w = JournalWriter::open(
        dir,
        JournalOptions {
            max_file_bytes: 64 << 20,
            max_total_bytes: u64::MAX,
            ..JournalOptions::default()
        },
        session,
    )
    .expect("journal");
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut heap: BinaryHeap<Pend> = BinaryHeap::new();
    let mut seq = 0u64;
    let mut mix = Mix::default();
    let mut now: u64 = 10_000_000_000;
    let mut next_pid: u32 = 10_000;
    let mut pid = || {
        next_pid += 1;
        if next_pid > 4_000_000 {
            next_pid = 10_000;
        }
        next_pid
    };
    let shell = task(700, 650, "bash", "sshd", 1, 1_000);
    let kubelet = task(800, 1, "kubelet", "systemd", 2, 1_000);
    let mut written = 0u64;
    let mut containers_known = vec![false; 2000];
    let mut push = |heap: &mut BinaryHeap<Pend>, ts: u64, rec: KernelRecord| {
        seq += 1;
        heap.push(Pend { ts, seq, rec });
    };
    while written < events {
        now += 1 + rng.below(50_000); // a scenario starts every 25 µs on average
        let scenario = match rng.below(100) {
            0..45 => 0,
            45..50 => 1,
            50..75 => 2,
            75..85 => 3,
            85..92 => 4,
            _ => 5,
        };
        mix.scenarios[scenario] += 1;
        let p = pid();
        let start = now.saturating_sub(1_000_000_000 + rng.below(1_000_000_000));
        let cgroup = 100 + rng.below(200);
        let comm = ["nginx", "java", "python3", "postgres", "node"][rng.below(5) as usize];
        let t = task(p, 1, comm, "systemd", cgroup, start);
        let sender = if rng.below(2) == 0 { shell } else { kubelet };
        match scenario {
            0 => {
                let code = if rng.below(4) == 0 { 1 << 8 } else { 0 };
                push(&mut heap, now, exit(now, t, code));
            }
            1 => {
                push(&mut heap, now, generate(now, 14, 0, sender, t, HANDLER));
                push(&mut heap, now + 3_000, deliver(now + 3_000, 14, t, true, 0));
            }
            2 => {
                let d = 1_000_000 + rng.below(200_000_000);
                push(&mut heap, now, generate(now, 15, 0, sender, t, HANDLER));
                push(&mut heap, now + 4_000, deliver(now + 4_000, 15, t, true, 0));
                push(&mut heap, now + d, exit(now + d, t, 0));
            }
            3 => {
                push(&mut heap, now, generate(now, 15, 0, sender, t, DEFAULT));
                push(
                    &mut heap,
                    now + 4_000,
                    deliver(now + 4_000, 9, t, false, 15),
                );
                push(&mut heap, now + 60_000, exit(now + 60_000, t, 15));
            }
            4 => {
                let grace = 2_000_000_000;
                push(&mut heap, now, generate(now, 15, 0, sender, t, HANDLER));
                push(&mut heap, now + 4_000, deliver(now + 4_000, 15, t, true, 0));
                push(
                    &mut heap,
                    now + grace,
                    generate(now + grace, 9, 0, sender, t, HANDLER),
                );
                push(
                    &mut heap,
                    now + grace + 5_000,
                    deliver(now + grace + 5_000, 9, t, false, 9),
                );
                push(
                    &mut heap,
                    now + grace + 80_000,
                    exit(now + grace + 80_000, t, 9),
                );
            }
            _ => {
                let slot = rng.below(containers_known.len() as u64) as usize;
                let cg = 1_000_000 + slot as u64;
                if !containers_known[slot] {
                    containers_known[slot] = true;
                    mix.containers += 1;
                    let info = ContainerInfo {
                        id: format!("{slot:064x}"),
                        runtime: "containerd".into(),
                        name: Some(format!("app-{slot}")),
                        pod: Some(format!("app-{slot}-7d9f8c-x2x{}", slot % 10)),
                        namespace: Some(format!("team-{}", slot % 20)),
                        container_type: Some("container".into()),
                        cgroup_id: cg,
                        cgroup_path: format!(
                            "/kubepods.slice/pod-{slot}/cri-containerd-{slot:064x}.scope"
                        ),
                        ..Default::default()
                    };
                    w.append_container(cg, &info).expect("container record");
                }
                let runc = task(pid(), p, "runc", "containerd-shim", 3, now);
                let mut init = task(pid(), p, comm, "containerd-shim", cg, start);
                init.ns_pid = 1;
                init.flags = task_flags::NS_INIT;
                let mut child = task(pid(), init.tgid, "worker", comm, cg, start + 1_000);
                child.ns_pid = 2;
                let d = 1_000_000 + rng.below(100_000_000);
                push(&mut heap, now, generate(now, 15, 0, runc, init, HANDLER));
                push(
                    &mut heap,
                    now + 4_000,
                    deliver(now + 4_000, 15, init, true, 0),
                );
                push(&mut heap, now + d, exit(now + d, init, 0));
                let mut dying = init;
                dying.flags |= task_flags::GROUP_EXITING;
                let k = now + d + 10_000;
                push(
                    &mut heap,
                    k,
                    generate(k, 9, SI_KERNEL, dying, child, DEFAULT),
                );
                push(&mut heap, k + 3_000, deliver(k + 3_000, 9, child, false, 9));
                push(&mut heap, k + 40_000, exit(k + 40_000, child, 9));
            }
        }
        while heap.peek().is_some_and(|e| e.ts <= now) {
            let e = heap.pop().expect("peeked");
            w.append_kernel(&encode(&e.rec)).expect("append");
            written += 1;
        }
    }
    while let Some(e) = heap.pop() {
        w.append_kernel(&encode(&e.rec)).expect("append");
        written += 1;
    }
    w.flush().expect("flush");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "journal"))
        .collect();
    files.sort();
    mix.events = written;
    (files, mix)
}

// ---- replay ------------------------------------------------------------------------------------

#[derive(Default, Debug, Clone, Copy)]
struct ReplayCounts {
    events: u64,
    process_stops: u64,
    container_stops: u64,
    timeline: u64,
    pod_stops: u64,
}

/// The engine's output, counted instead of printed.
#[derive(Default)]
struct Count(ReplayCounts);

impl OutputSink for Count {
    fn output(&mut self, o: &Output) -> std::io::Result<()> {
        match o {
            Output::ProcessStop(_) => self.0.process_stops += 1,
            Output::ContainerStop(_) => self.0.container_stops += 1,
            Output::PodStop(_) => self.0.pod_stops += 1,
            Output::Timeline(_) => self.0.timeline += 1,
        }
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `sigtrace replay` (the driver and the pipeline), counting the records instead of printing
/// them; `timeline` as for the terminal format (JSON output runs the engine without timeline
/// lines).
fn replay(dir: &Path, timeline: bool) -> ReplayCounts {
    let mut reader = JournalReader::new([dir], ReaderOptions { strict: true });
    let engine = Engine::new(EngineConfig {
        timeline,
        ..EngineConfig::default()
    });
    let mut pipeline = Pipeline::new(engine, Count::default());
    drive(&mut reader, &mut pipeline, OnBadInput::Fail).expect("replay");
    let mut c = pipeline.into_sink().0;
    c.events = reader.stats().events;
    c
}

/// Reads (strictly) and decodes every kernel record of a journal: the replay's input side.
fn decode_all(dir: &Path) -> u64 {
    let mut reader = JournalReader::new([dir], ReaderOptions { strict: true });
    let (mut events, mut wall_ns_sum) = (0u64, 0u64);
    while let Some(item) = reader.next_item() {
        let ev = item.expect("journal item").event();
        if let Some(ev) = ev {
            events += 1;
            wall_ns_sum = wall_ns_sum.wrapping_add(ev.expect("decodes").wall_ns as u64);
        }
    }
    std::hint::black_box(wall_ns_sum);
    events
}

// ---- memory ------------------------------------------------------------------------------------

fn ev_task(pid: u32, comm: &str, cgroup_id: u64, ns_init: bool) -> Task {
    Task {
        pid,
        tid: pid,
        ppid: 1,
        ns_pid: if ns_init { 1 } else { pid },
        comm: comm.into(),
        parent_comm: "containerd-shim".into(),
        cgroup_id,
        ns_init,
        group_exiting: false,
        kthread: false,
        start_ns: 5_000 + pid as u64,
    }
}

fn gen_event(
    ts: u64,
    signal: Signal,
    sender: Task,
    target: Task,
    disposition: Disposition,
) -> Event {
    Event {
        mono_ns: ts,
        wall_ns: ts as i64 + 1_700_000_000_000_000_000,
        cpu: 0,
        kind: EventKind::SignalGenerate {
            signal,
            si_code: 0,
            group: true,
            result: SigResult::Delivered,
            sender,
            target,
            disposition,
            stop_dispositions: StopDispositions {
                term: disposition,
                ..Default::default()
            },
            blocked: false,
        },
    }
}

fn del_event(ts: u64, signal: Signal, receiver: Task) -> Event {
    Event {
        mono_ns: ts,
        wall_ns: ts as i64 + 1_700_000_000_000_000_000,
        cpu: 0,
        kind: EventKind::SignalDeliver {
            signal,
            si_code: 0,
            receiver,
            disposition: Disposition::Handler,
            sa_flags: 0,
            converted_from: None,
        },
    }
}

struct MemResult {
    n: usize,
    bytes: usize,
    tracked: usize,
    episodes: usize,
}

/// Net heap held by an engine after `n` processes got `signal` (generated and delivered to a
/// handler) and did not exit. `ns_init`: the targets are PID-namespace inits (the engine keeps
/// an entry for an init whatever the signal).
fn measure(n: usize, signal: Signal, ns_init: bool) -> MemResult {
    let cfg = EngineConfig {
        max_processes: 2 * n,
        max_episodes: 2 * n,
        ..EngineConfig::default()
    };
    let mut engine = Engine::new(cfg);
    let mut out: Vec<Output> = Vec::with_capacity(4096);
    let before = heap_now();
    let mut ts = 1_000_000_000u64;
    for i in 0..n {
        let pid = 100_000 + i as u32;
        // A few hundred cgroups, as on a node with many containers.
        let cg = 1_000 + (i % 300) as u64;
        let sender = Task {
            pid: 900,
            tid: 900,
            ppid: 1,
            ns_pid: 900,
            comm: "kubelet".into(),
            parent_comm: "systemd".into(),
            cgroup_id: 2,
            ..Default::default()
        };
        let target = ev_task(pid, "java", cg, ns_init);
        engine.push(
            gen_event(ts, signal, sender, target.clone(), Disposition::Handler),
            &mut out,
        );
        engine.push(del_event(ts + 2_000, signal, target), &mut out);
        out.clear();
        ts += 10_000;
    }
    // Release the reorder window: nothing buffered, nothing due (no exit, no timeout).
    engine.advance(ts + 100_000_000, &mut out);
    out.clear();
    let after = heap_now();
    let s = engine.stats();
    assert_eq!(s.buffered_events, 0);
    let r = MemResult {
        n,
        bytes: after.saturating_sub(before),
        tracked: s.tracked_processes,
        episodes: s.open_episodes,
    };
    drop(engine);
    r
}

// ---- main --------------------------------------------------------------------------------------

fn pin_to_one_cpu() -> Option<usize> {
    let n = std::thread::available_parallelism().map_or(1, |n| n.get());
    let cpu = n - 1;
    // SAFETY: a zeroed cpu_set_t is valid; CPU_SET writes inside it; sched_setaffinity(0)
    // applies to this thread (the only one).
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        (libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0)
            .then_some(cpu)
    }
}

fn mib(b: u64) -> f64 {
    b as f64 / (1 << 20) as f64
}

fn main() {
    let events: u64 = std::env::var("SIGTRACE_BENCH_EVENTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000_000);
    let runs: usize = std::env::var("SIGTRACE_BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let cpu = pin_to_one_cpu();
    let _ = Clock::now();

    let dir = tempfile::Builder::new()
        .prefix("sigtrace-bench-engine-")
        .tempdir()
        .expect("temp dir");
    let t = Instant::now();
    let (files, mix) = write_realistic_journal(dir.path(), events);
    let bytes: u64 = files
        .iter()
        .map(|f| std::fs::metadata(f).map_or(0, |m| m.len()))
        .sum();
    eprintln!(
        "wrote {} events, {} files, {:.0} MiB in {:.1} s",
        mix.events,
        files.len(),
        mib(bytes),
        t.elapsed().as_secs_f64()
    );

    // Warm the page cache (and check the journal) once.
    assert_eq!(decode_all(dir.path()), mix.events);

    let mut decode_rates = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let n = decode_all(dir.path());
        let s = t.elapsed().as_secs_f64();
        assert_eq!(n, mix.events);
        decode_rates.push(n as f64 / s);
        eprintln!("read+decode: {:.2} M events/s", n as f64 / s / 1e6);
    }
    // Peak heap of a replay: one untimed run with peak tracking on.
    let base = heap_now();
    reset_peak();
    TRACK_PEAK.store(true, Ordering::Relaxed);
    let peak_run = replay(dir.path(), true);
    TRACK_PEAK.store(false, Ordering::Relaxed);
    let replay_peak = heap_peak().saturating_sub(base);
    assert_eq!(peak_run.events, mix.events);

    let mut replay_rates = Vec::new();
    let mut last = ReplayCounts::default();
    for _ in 0..runs {
        let t = Instant::now();
        let c = replay(dir.path(), true);
        let s = t.elapsed().as_secs_f64();
        assert_eq!(c.events, mix.events);
        replay_rates.push(c.events as f64 / s);
        eprintln!(
            "read+decode+engine: {:.2} M events/s ({c:?})",
            c.events as f64 / s / 1e6
        );
        last = c;
    }
    let mut json_rates = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let c = replay(dir.path(), false);
        let s = t.elapsed().as_secs_f64();
        assert_eq!(c.timeline, 0);
        assert_eq!(
            (c.process_stops, c.container_stops),
            (last.process_stops, last.container_stops)
        );
        json_rates.push(c.events as f64 / s);
        eprintln!(
            "read+decode+engine, no timeline (--json): {:.2} M events/s",
            c.events as f64 / s / 1e6
        );
    }
    drop(dir);
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    let decode_med = median(&mut decode_rates);
    let replay_med = median(&mut replay_rates);
    let replay_best = *replay_rates.last().unwrap_or(&0.0);
    let json_med = median(&mut json_rates);

    let n = 100_000;
    let tracked = measure(n, Signal::USR1, true);
    let episodes = measure(n, Signal::TERM, false);
    assert_eq!(tracked.tracked, n);
    assert_eq!(tracked.episodes, 0);
    assert_eq!(episodes.episodes, n);

    let total: u64 = mix.scenarios.iter().sum();
    println!("## Engine (`cargo xtask bench engine`)\n");
    println!(
        "Single thread{}, release build, journal in the page cache. {} events ({:.0} MiB in {} files), {} runs, median (best).\n",
        cpu.map_or(String::new(), |c| format!(" pinned to CPU {c}")),
        mix.events,
        mib(bytes),
        files.len(),
        runs
    );
    println!("| measurement | result |\n|---|---|");
    println!(
        "| read + frame check + decode (`JournalReader::next_item`, `Item::event`) | {:.2} M events/s |",
        decode_med / 1e6
    );
    println!(
        "| read + decode + engine (`sigtrace replay`'s driver and pipeline, output counted) | **{:.2} M events/s** ({:.2} best) |",
        replay_med / 1e6,
        replay_best / 1e6
    );
    println!(
        "| read + decode + engine without timeline lines (`replay --json`) | **{:.2} M events/s** |",
        json_med / 1e6
    );
    println!(
        "| records out per replay | {} process stops, {} container stops, {} timeline lines |",
        last.process_stops, last.container_stops, last.timeline
    );
    println!(
        "| peak heap during a replay (reader buffer of one 64 MiB file included) | {:.1} MiB |",
        mib(replay_peak as u64)
    );
    println!(
        "| heap per tracked process, no episode ({} PID-1s that got SIGUSR1) | **{:.0} bytes** ({:.1} MiB total) |",
        tracked.n,
        tracked.bytes as f64 / tracked.n as f64,
        mib(tracked.bytes as u64)
    );
    println!(
        "| heap per open shutdown episode ({} processes that got SIGTERM, handler running) | **{:.0} bytes** ({:.1} MiB total) |",
        episodes.n,
        episodes.bytes as f64 / episodes.n as f64,
        mib(episodes.bytes as u64)
    );
    println!(
        "\nEvent mix ({total} scenarios, {} containers):\n",
        mix.containers
    );
    println!("| scenario | share |\n|---|---|");
    for (name, k) in MIX_NAMES.iter().zip(mix.scenarios) {
        println!("| {name} | {:.0} % |", 100.0 * k as f64 / total as f64);
    }
}
