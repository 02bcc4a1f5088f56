//! The live agent: wires the event source to the sinks, handles SIGTERM/SIGINT (stop reading,
//! drain, flush, exit 0) and the periodic polling of kernel-side counters.
use std::{
    io::Write,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

use anyhow::{Context, Result};
use tokio::{
    signal::unix::{signal, SignalKind},
    sync::{mpsc, watch},
};

use crate::{
    cli::RunArgs,
    decode::Clock,
    source::{read_ring, Input, KernelStats, ProbeMode, Probes, ReaderStats, SourceOptions},
};

/// Builds the source options from the command line.
pub fn source_options(args: &RunArgs) -> Result<SourceOptions> {
    let ring_bytes = args
        .ring_kib
        .checked_mul(1024)
        .filter(|b| b.is_power_of_two() && *b >= 4096)
        .with_context(|| {
            format!(
                "--ring-kib {} must be a power of two, at least 4",
                args.ring_kib
            )
        })?;
    let signal_mask = if args.signals.is_empty() {
        tracer_common::DEFAULT_SIGNAL_MASK
    } else {
        args.signals.iter().fold(0u64, |m, s| m | 1u64 << (s - 1))
    };
    Ok(SourceOptions {
        btf_path: args.btf.clone(),
        signal_mask,
        ring_bytes,
        emit_thread_exits: false,
        mode: if args.floor {
            ProbeMode::Floor
        } else {
            ProbeMode::Trace
        },
        force_raw: args.force_raw_tracepoints,
    })
}

/// Resolves when SIGTERM or SIGINT arrives.
async fn stop_requested() -> Result<&'static str> {
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    Ok(tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    })
}

/// Counters of the live source, handed to sinks on every tick.
#[derive(Clone, Debug, Default)]
pub struct LiveStats {
    pub kernel: KernelStats,
    pub records_read: u64,
    pub decode_errors: u64,
}

/// Something that consumes the live stream.
pub trait Sink {
    fn input(&mut self, input: Input) -> Result<()>;
    /// Called twice a second with the current monotonic time (for timers and flushing).
    fn tick(&mut self, now_mono_ns: u64, stats: &LiveStats) -> Result<()>;
    /// End of stream: flush everything.
    fn finish(&mut self) -> Result<()>;
}

/// `--raw`: every decoded event as one JSON line.
pub struct RawSink<W: Write> {
    out: W,
    clock: Clock,
}

impl<W: Write> RawSink<W> {
    pub fn new(out: W, clock: Clock) -> Self {
        Self { out, clock }
    }
}

impl<W: Write> Sink for RawSink<W> {
    fn input(&mut self, input: Input) -> Result<()> {
        match input {
            Input::Record(rec) => {
                serde_json::to_writer(&mut self.out, &rec.into_event(&self.clock))?
            }
            Input::Lost { count, mono_ns } => serde_json::to_writer(
                &mut self.out,
                &serde_json::json!({"event": "lost", "mono_ns": mono_ns, "count": count}),
            )?,
        }
        self.out.write_all(b"\n")?;
        Ok(())
    }

    fn tick(&mut self, _now: u64, _stats: &LiveStats) -> Result<()> {
        self.out.flush()?;
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        self.out.flush()?;
        Ok(())
    }
}

/// Loads the probes and runs `sink` until SIGTERM/SIGINT (or stdout closes).
pub async fn run_live(
    args: &RunArgs,
    mut sink: Box<dyn Sink>,
    ready: Option<Arc<AtomicBool>>,
) -> Result<()> {
    let opts = source_options(args)?;
    let mut probes = Probes::load(&opts).context("starting the kernel probes")?;
    for a in &probes.attached {
        tracing::debug!(hook = a.hook, how = a.how, "attached");
    }
    let stop = stop_requested();
    tokio::pin!(stop);

    if opts.mode == ProbeMode::Floor {
        mark_ready(args)?;
        let why = stop.await?;
        tracing::info!("{why}: detaching the floor programs");
        return Ok(());
    }

    let ring = probes.take_ring()?;
    let reader_stats = Arc::new(ReaderStats::default());
    let (tx, mut rx) = mpsc::channel::<Input>(16 * 1024);
    let (stop_tx, stop_rx) = watch::channel(false);
    let reader = tokio::spawn(read_ring(ring, tx, reader_stats.clone(), stop_rx));
    mark_ready(args)?;
    if let Some(r) = &ready {
        r.store(true, Ordering::Relaxed);
    }
    tracing::info!("tracing: {} hooks attached", probes.attached.len());

    let mut ticker = tokio::time::interval(Duration::from_millis(500));
    let mut lost_seen = 0u64;
    let mut stopping = false;
    loop {
        tokio::select! {
            why = &mut stop, if !stopping => {
                tracing::info!("{}: stopping, draining the ring buffer", why?);
                stopping = true;
                let _ = stop_tx.send(true);
            }
            input = rx.recv() => match input {
                Some(input) => {
                    if let Err(e) = sink.input(input) {
                        if is_broken_pipe(&e) { break; }
                        return Err(e);
                    }
                }
                None => break,
            },
            _ = ticker.tick() => {
                let kernel = probes.stats()?;
                if kernel.lost > lost_seen {
                    sink.input(Input::Lost { count: kernel.lost - lost_seen, mono_ns: Clock::monotonic_now_ns() })?;
                    tracing::warn!("{} events lost in the ring buffer (total {}); consider a larger --ring-kib", kernel.lost - lost_seen, kernel.lost);
                    lost_seen = kernel.lost;
                }
                let stats = LiveStats {
                    kernel,
                    records_read: reader_stats.read.load(Ordering::Relaxed),
                    decode_errors: reader_stats.decode_errors.load(Ordering::Relaxed),
                };
                if let Err(e) = sink.tick(Clock::monotonic_now_ns(), &stats) {
                    if is_broken_pipe(&e) { break; }
                    return Err(e);
                }
            }
        }
    }
    let _ = stop_tx.send(true);
    let _ = reader.await;
    sink.finish()?;
    let errors = reader_stats.decode_errors.load(Ordering::Relaxed);
    if errors > 0 {
        tracing::warn!("{errors} kernel records could not be decoded");
    }
    Ok(())
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            || c.downcast_ref::<serde_json::Error>()
                .is_some_and(|j| j.io_error_kind() == Some(std::io::ErrorKind::BrokenPipe))
    })
}

fn mark_ready(args: &RunArgs) -> Result<()> {
    if let Some(path) = &args.ready_file {
        std::fs::write(path, format!("{}\n", std::process::id()))
            .with_context(|| format!("writing the ready file {}", path.display()))?;
    }
    Ok(())
}
