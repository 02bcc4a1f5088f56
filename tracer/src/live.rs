//! The live [`Source`]: a thread drains the kernel's ring buffer into batches of records as
//! the kernel wrote them; the source hands them out one by one, with the kernel's lost-record
//! count and a tick twice a second, until a stop is requested (SIGTERM/SIGINT) and the ring
//! has been drained one last time.
//!
//! An idle agent should cost next to nothing: the ring thread drains every
//! [`DRAIN_MIN_MS`] while records come, and backs off (doubling) to [`DRAIN_IDLE_MS`] while
//! the ring stays empty (the kernel still wakes it at once when enough data waits); the
//! per-signal kernel counters, 64 map reads, are read every [`SIGNAL_COUNTS_EVERY`] ticks only.
//!
//! A busy node must not overflow the ring: the ring thread does nothing but copy records out,
//! so it asks for a higher priority than the rest of the agent ([`RingPriority`]), and waits
//! for the kernel's wake-ups edge-triggered (see [`Waiter`]).
use std::{
    os::fd::AsRawFd,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        mpsc::{self, Receiver, RecvTimeoutError, SyncSender},
        Arc,
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use aya::maps::{MapData, RingBuf};

use crate::{
    decode::Clock,
    driver::{Input, LiveStats, Source},
    probes::{ProbeError, Probes},
};

/// How often the consumer gets a tick (timers, flushing, health).
const TICK: Duration = Duration::from_millis(500);
/// The kernel side wakes the reader only when enough data waits: it drains on a timer too,
/// every this many ms while records come...
const DRAIN_MIN_MS: i32 = 25;
/// ...and backing off to this while the ring stays empty.
const DRAIN_IDLE_MS: i32 = 400;
/// Records handed out between two looks at the clock for a due tick (a batch of 256 KiB
/// holds about 1 400).
const CLOCK_EVERY: usize = 64;
/// Ticks between two reads of the per-signal kernel counters.
const SIGNAL_COUNTS_EVERY: u32 = 10;
/// Batches in flight between the ring thread and the consumer: a stalled consumer (a slow disk)
/// is absorbed up to this depth, then the ring fills and the kernel counts what it drops.
const BATCHES_IN_FLIGHT: usize = 64;
/// A batch is sent once it holds this many bytes, so that what waits between the threads stays
/// under `BATCHES_IN_FLIGHT` × this (16 MiB) however full the ring was.
const BATCH_BYTES: usize = 256 << 10;

/// How the ring thread is scheduled (`sigtrace run --ring-priority`).
///
/// Under a storm on every CPU, a ring thread at the default priority can wait milliseconds to
/// run after the kernel wakes it, and the ring fills meanwhile. It only copies records out, so
/// a higher priority costs the node little.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum RingPriority {
    /// `SCHED_FIFO` at the lowest real-time priority; else as `raised`.
    #[default]
    Realtime,
    /// nice -10; else the default.
    Raised,
    /// The agent's own priority.
    Normal,
}

/// The nice value of [`RingPriority::Raised`].
const RAISED_NICE: libc::c_int = -10;

impl RingPriority {
    /// Applies to the calling thread what it can of `self` (both need `CAP_SYS_NICE`, and
    /// real-time also run time in the thread's cgroup where the kernel has
    /// `CONFIG_RT_GROUP_SCHED`), and says what it got, once.
    fn apply_to_this_thread(self) {
        let mut refused = Vec::new();
        if self == Self::Realtime {
            let param = libc::sched_param { sched_priority: 1 };
            let policy = libc::SCHED_FIFO | libc::SCHED_RESET_ON_FORK;
            // SAFETY: plain syscall on the calling thread (pid 0), valid parameter.
            if unsafe { libc::sched_setscheduler(0, policy, &param) } == 0 {
                tracing::info!("ring thread: real-time priority (SCHED_FIFO 1)");
                return;
            }
            let e = std::io::Error::last_os_error();
            refused.push(format!(
                "real time refused: {e}; the cgroup may have no real-time run time"
            ));
        }
        if matches!(self, Self::Realtime | Self::Raised) {
            // SAFETY: plain syscalls on the calling thread.
            let tid = unsafe { libc::gettid() } as libc::id_t;
            if unsafe { libc::setpriority(libc::PRIO_PROCESS, tid, RAISED_NICE) } == 0 {
                let why = refused.first().map_or(String::new(), |r| format!(" ({r})"));
                tracing::info!("ring thread: nice {RAISED_NICE}{why}");
                return;
            }
            refused.push(format!(
                "nice {RAISED_NICE}: {}",
                std::io::Error::last_os_error()
            ));
            tracing::info!(
                "ring thread: default priority ({}; grant CAP_SYS_NICE, or bursts on busy CPUs \
                 may overflow the ring)",
                refused.join(", ")
            );
        }
    }
}

/// Kernel records taken out of the ring in one drain, back to back.
#[derive(Default)]
struct Batch {
    bytes: Vec<u8>,
    /// Where each record ends in `bytes`.
    ends: Vec<u32>,
}

impl Batch {
    /// Room for a record of `len` bytes, growing by doubling but never past what a full batch
    /// needs (the default doubling would leave a full batch holding 512 KiB for 256).
    fn reserve(&mut self, len: usize) {
        let (used, cap) = (self.bytes.len(), self.bytes.capacity());
        if cap - used < len {
            let want = (cap * 2).clamp(4096, BATCH_BYTES + 4096).max(used + len);
            self.bytes.reserve_exact(want - used);
        }
    }
}

/// The live source over loaded probes.
pub struct LiveSource {
    probes: Probes,
    rx: Receiver<Batch>,
    reader: Option<JoinHandle<()>>,
    read: Arc<AtomicU64>,
    batch: Batch,
    next_record: usize,
    next_tick: Instant,
    /// A tick is due: `Lost` (if any) went out, the tick itself is next.
    tick_pending: bool,
    lost_seen: u64,
    stats: LiveStats,
    ended: bool,
    /// Ticks since the per-signal counters were read.
    ticks: u32,
}

impl LiveSource {
    /// Starts draining the ring buffer of `probes` until `stop` is set.
    pub fn start(
        mut probes: Probes,
        stop: Arc<AtomicBool>,
        priority: RingPriority,
    ) -> Result<Self, ProbeError> {
        let ring = probes.take_ring()?;
        let gate = probes.attached_at_ns;
        let read = Arc::new(AtomicU64::new(0));
        let (tx, rx) = mpsc::sync_channel(BATCHES_IN_FLIGHT);
        let counter = read.clone();
        let reader = std::thread::Builder::new()
            .name("sigtrace-ring".into())
            .spawn(move || {
                priority.apply_to_this_thread();
                read_ring(ring, tx, &counter, &stop, gate)
            })
            .map_err(|e| ProbeError::Kernel {
                what: "starting the ring-buffer reader".into(),
                detail: e.to_string(),
            })?;
        Ok(Self {
            probes,
            rx,
            reader: Some(reader),
            read,
            batch: Batch::default(),
            next_record: 0,
            next_tick: Instant::now() + TICK,
            tick_pending: false,
            lost_seen: 0,
            stats: LiveStats::default(),
            ended: false,
            ticks: 0,
        })
    }

    /// What a tick brings: the counters, and the records the kernel lost since the last one.
    fn poll_counters(&mut self) -> Option<u64> {
        let with_signals = self.ticks.is_multiple_of(SIGNAL_COUNTS_EVERY) || self.ended;
        self.ticks = self.ticks.wrapping_add(1);
        match self.probes.stats(with_signals) {
            Ok(mut kernel) => {
                if !with_signals {
                    kernel.counted_signals = std::mem::take(&mut self.stats.kernel.counted_signals);
                }
                self.stats.kernel = kernel;
            }
            Err(e) => tracing::debug!("reading the kernel counters: {e}"),
        }
        self.stats.records_read = self.read.load(Ordering::Relaxed);
        let lost = self.stats.kernel.lost;
        (lost > self.lost_seen).then(|| {
            let new = lost - self.lost_seen;
            tracing::warn!(
                "{new} events lost in the ring buffer (total {lost}); consider a larger --ring-kib"
            );
            self.lost_seen = lost;
            new
        })
    }
}

impl Source for LiveSource {
    fn next(&mut self) -> Option<Result<Input<'_>, anyhow::Error>> {
        loop {
            if self.tick_pending {
                self.tick_pending = false;
                self.next_tick = Instant::now() + TICK;
                return Some(Ok(Input::Tick {
                    now_mono_ns: Clock::monotonic_now_ns(),
                    stats: &self.stats,
                }));
            }
            if self.ended {
                return None;
            }
            // The clock is read once every CLOCK_EVERY records of a batch (a read per record
            // was a seventh of the agent's CPU in a storm), and before waiting for a batch.
            let look = self.next_record.is_multiple_of(CLOCK_EVERY)
                || self.next_record >= self.batch.ends.len();
            if look && Instant::now() >= self.next_tick {
                self.tick_pending = true;
                if let Some(count) = self.poll_counters() {
                    let mono_ns = Clock::monotonic_now_ns();
                    return Some(Ok(Input::Lost { count, mono_ns }));
                }
                continue;
            }
            if self.next_record < self.batch.ends.len() {
                let start = match self.next_record {
                    0 => 0,
                    i => self.batch.ends[i - 1] as usize,
                };
                let end = self.batch.ends[self.next_record] as usize;
                self.next_record += 1;
                return Some(Ok(Input::Kernel(&self.batch.bytes[start..end], None)));
            }
            let wait = self.next_tick.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(wait) {
                Ok(batch) => {
                    self.batch = batch;
                    self.next_record = 0;
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    // The reader drained the ring one last time and stopped: a final tick.
                    if let Some(r) = self.reader.take() {
                        let _ = r.join();
                    }
                    self.ended = true;
                    self.tick_pending = true;
                    if let Some(count) = self.poll_counters() {
                        let mono_ns = Clock::monotonic_now_ns();
                        return Some(Ok(Input::Lost { count, mono_ns }));
                    }
                }
            }
        }
    }
}

/// Waits for the kernel to wake the ring thread, or for a timeout.
///
/// Edge-triggered, not a plain `poll`: the ring's fd reads as ready as long as *any* record
/// waits, so under load a level-triggered wait returns at once after every drain and the
/// thread spins on a few records at a time, uses up its share of the CPU, and then waits
/// milliseconds behind busy threads while the ring fills. tokio's [`AsyncFd`] registers the fd
/// edge-triggered (mio's epoll), and its readiness is cleared at each wake-up: the thread
/// sleeps until a CPU has written its wake-up share since the last wake-up (see the kernel
/// side), or the timer. The ring thread runs its own single-threaded runtime (it keeps its
/// real-time priority; nothing else runs on it).
///
/// [`AsyncFd`]: tokio::io::unix::AsyncFd
struct Waiter {
    /// `None` when the runtime or the registration failed: the timer alone drains.
    wake: Option<(
        tokio::runtime::Runtime,
        tokio::io::unix::AsyncFd<std::os::fd::RawFd>,
    )>,
}

impl Waiter {
    /// `ring` stays open while the ring lives (longer than the waiter).
    fn new(ring: std::os::fd::RawFd) -> Self {
        let wake = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .and_then(|rt| {
                let fd = {
                    let _in = rt.enter();
                    // SAFETY: `ring` stays open while the waiter lives: `read_ring` owns the
                    // ring (a parameter, dropped after the waiter, a local) and never replaces
                    // its fd.
                    unsafe {
                        tokio::io::unix::AsyncFd::register_with_interest(
                            ring,
                            tokio::io::Interest::READABLE,
                        )?
                    }
                };
                Ok((rt, fd))
            });
        match wake {
            Ok(w) => Self { wake: Some(w) },
            Err(e) => {
                tracing::warn!(
                    "edge-triggered wait on the ring buffer unavailable ({e}); draining it on \
                     the timer only"
                );
                Self { wake: None }
            }
        }
    }

    fn wait(&self, timeout_ms: i32) {
        let timeout = Duration::from_millis(timeout_ms.max(0) as u64);
        match &self.wake {
            Some((rt, fd)) => rt.block_on(async {
                if let Ok(Ok(mut ready)) = tokio::time::timeout(timeout, fd.readable()).await {
                    // The next wait sleeps until the next wake-up.
                    ready.clear_ready();
                }
            }),
            None => std::thread::sleep(timeout),
        }
    }
}

/// Whether a record was written before `gate` (its header's `CLOCK_MONOTONIC` time). A
/// cgroup's creation never counts as one: it completes the index of cgroups whatever its time.
fn before(record: &[u8], gate: u64) -> bool {
    let kind = record
        .get(..4)
        .and_then(|b| b.try_into().ok())
        .map(u32::from_ne_bytes);
    kind != Some(tracer_common::kind::CGROUP_MKDIR)
        && record
            .get(8..16)
            .and_then(|b| b.try_into().ok())
            .is_some_and(|b| u64::from_ne_bytes(b) < gate)
}

/// The ring thread: drains on wake-up or on its timer (see the module docs), until `stop` is
/// set; then drains once more, so that it loses nothing, and hangs up. Records written before
/// `gate` (while the hooks were still being attached) are dropped, counted and logged.
fn read_ring(
    mut ring: RingBuf<MapData>,
    tx: SyncSender<Batch>,
    read: &AtomicU64,
    stop: &AtomicBool,
    gate: u64,
) {
    let waiter = Waiter::new(ring.as_raw_fd());
    let mut wait_ms = DRAIN_MIN_MS;
    let (mut gated, mut said) = (0u64, 0u64);
    loop {
        let stopping = stop.load(Ordering::Relaxed);
        if !stopping {
            waiter.wait(wait_ms);
        }
        let mut drained = 0usize;
        loop {
            let mut batch = Batch::default();
            while batch.bytes.len() < BATCH_BYTES {
                let Some(item) = ring.next() else { break };
                // One compare a record (CPUs' records interleave: an old one may come late).
                if before(&item, gate) {
                    gated += 1;
                    continue;
                }
                batch.reserve(item.len());
                batch.bytes.extend_from_slice(&item);
                batch.ends.push(batch.bytes.len() as u32);
            }
            if batch.ends.is_empty() {
                break;
            }
            let full = batch.bytes.len() >= BATCH_BYTES;
            drained += batch.ends.len();
            read.fetch_add(batch.ends.len() as u64, Ordering::Relaxed);
            if tx.send(batch).is_err() {
                return;
            }
            if !full {
                break;
            }
        }
        if gated != said {
            said = gated;
            tracing::info!(
                "{gated} kernel events from before every hook was attached were dropped (their \
                 counterparts may be missing)"
            );
        }
        wait_ms = if drained == 0 {
            (wait_ms * 2).min(DRAIN_IDLE_MS)
        } else {
            DRAIN_MIN_MS
        };
        if stopping {
            return;
        }
    }
}
