//! Top-level commands (`run`, `replay`): builds the pipeline each one needs from the flags.
use std::{
    io::Write,
    path::PathBuf,
    sync::{atomic::AtomicBool, Arc},
};

use anyhow::{Context, Result};

use crate::{
    agent::{run_live, RawSink},
    cli::{OutputArgs, ReplayArgs, RunArgs},
    container::{metadata::MetadataDirs, ContainerResolver, ResolverOptions},
    decode::Clock,
    engine::{Engine, EngineConfig},
    event::Signal,
    journal::{
        ItemKindRef, JournalOptions, JournalReader, JournalWriter, ReaderOptions, RecordRef,
        SessionInfo,
    },
    metrics::{Metrics, MetricsOptions},
    output::{Format, Printer},
    pipeline::Pipeline,
};

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// The engine configuration the output flags ask for.
pub fn engine_config(o: &OutputArgs) -> EngineConfig {
    EngineConfig {
        grace_s: o.grace,
        extra_stop_signals: o.stop_signals.iter().map(|&s| Signal(s)).collect(),
        max_processes: o.max_processes,
        max_episodes: o.max_episodes,
        episode_timeout_ns: o.episode_timeout.saturating_mul(1_000_000_000),
        runtime_comms: o.runtime_comms.clone(),
        // Only the terminal format prints timeline lines.
        timeline: !o.json,
        ..EngineConfig::default()
    }
}

fn printer(o: &OutputArgs) -> Printer<std::io::BufWriter<std::io::Stdout>> {
    Printer::new(
        std::io::BufWriter::new(std::io::stdout()),
        Format::detect(o.json),
        o.containers_only,
    )
}

fn resolver(args: &RunArgs) -> Result<ContainerResolver> {
    let mut dirs = MetadataDirs::default();
    if !args.containerd_state.is_empty() {
        dirs.containerd_state = args.containerd_state.clone();
    }
    if !args.crio_state.is_empty() {
        dirs.crio_storage = args.crio_state.clone();
    }
    if !args.docker_data_root.is_empty() {
        dirs.docker_data_root = args.docker_data_root.clone();
    }
    let mut r = ContainerResolver::new(ResolverOptions {
        metadata_dirs: dirs,
        ..Default::default()
    })
    .context("setting up container attribution (reading /proc/self/mountinfo)")?;
    if r.attribution_may_be_missing() {
        tracing::warn!("no cgroup v2 hierarchy: container attribution comes from /proc/<pid>/cgroup and may be missing for processes that exit before they are seen");
    }
    // Runtimes delete bundles when containers go: read what exists now.
    let n = r.warm_up();
    tracing::debug!("{n} running containers resolved at start-up");
    Ok(r)
}

fn node_name(args: &RunArgs) -> String {
    args.node_name.clone().unwrap_or_else(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    })
}

/// `sigtrace run`.
pub fn run(args: RunArgs) -> Result<()> {
    let clock = Clock::now();
    if args.raw || args.floor {
        let sink = RawSink::new(std::io::BufWriter::new(std::io::stdout().lock()), clock);
        return runtime()?.block_on(run_live(&args, Box::new(sink), None));
    }
    let mut pipeline = Pipeline::new(
        Engine::new(engine_config(&args.output)),
        printer(&args.output),
        clock,
    )
    .with_resolver(resolver(&args)?);
    if !args.no_record {
        let opts = JournalOptions {
            max_file_bytes: args.journal_file_mib.saturating_mul(1 << 20),
            max_total_bytes: args.journal_total_mib.saturating_mul(1 << 20),
        };
        let journal = JournalWriter::open(&args.data_dir, opts, SessionInfo::current(clock))
            .with_context(|| {
                format!(
                    "opening the journal in {} (use --data-dir DIR or --no-record)",
                    args.data_dir.display()
                )
            })?;
        tracing::info!("recording to {}", journal.path().display());
        pipeline = pipeline.with_journal(journal);
    }
    let rt = runtime()?;
    let mut metrics_server = None;
    if let Some(addr) = args.metrics {
        let metrics = Arc::new(Metrics::new(MetricsOptions {
            drop_pod: args.metrics_no_pod_label,
            max_series: args.metrics_max_series,
            version: env!("CARGO_PKG_VERSION").to_string(),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|s| s.trim().to_string())
                .unwrap_or_default(),
            node: node_name(&args),
        })?);
        pipeline = pipeline.with_metrics(metrics.clone());
        metrics_server = Some((addr, metrics));
    }
    rt.block_on(async move {
        let ready = Arc::new(AtomicBool::new(false));
        let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
        let server = match metrics_server {
            Some((addr, metrics)) => {
                let stop = async move {
                    let _ = stop_rx.changed().await;
                };
                tracing::info!("serving metrics on http://{addr}/metrics");
                Some(crate::metrics::serve(addr, metrics, ready.clone(), stop).await?)
            }
            None => None,
        };
        let result = run_live(&args, Box::new(pipeline), Some(ready)).await;
        let _ = stop_tx.send(true);
        if let Some(s) = server {
            let _ = s.await;
        }
        result
    })
}

/// `sigtrace replay`: the same engine over recorded journal files.
pub fn replay(args: ReplayArgs) -> Result<()> {
    let paths: Vec<PathBuf> = if args.paths.is_empty() {
        vec![PathBuf::from("/var/lib/sigtrace")]
    } else {
        args.paths.clone()
    };
    let mut reader = JournalReader::new(
        paths.iter(),
        ReaderOptions {
            strict: args.strict,
        },
    );
    let mut pipeline: Option<Pipeline<std::io::BufWriter<std::io::Stdout>>> = None;
    let mut errors = 0u64;
    let in_window =
        |wall: i64| args.since.is_none_or(|s| wall >= s) && args.until.is_none_or(|u| wall < u);
    while let Some(item) = reader.next_ref() {
        let item = match item {
            Ok(i) => i,
            Err(e) => {
                errors += 1;
                if args.strict {
                    return Err(e).context("replay stopped (--strict)");
                }
                eprintln!("sigtrace: {e}; skipping it");
                continue;
            }
        };
        let p = pipeline.get_or_insert_with(|| {
            let clock = item.clock.unwrap_or(Clock { offset_ns: 0 });
            Pipeline::new(
                Engine::new(engine_config(&args.output)),
                printer(&args.output),
                clock,
            )
        });
        match item.kind {
            ItemKindRef::Warning(w) => eprintln!("sigtrace: warning: {w}"),
            ItemKindRef::Record(RecordRef::Container { cgroup_id, info }) => {
                p.set_container(cgroup_id, Arc::new(info.clone()))
            }
            ItemKindRef::Record(RecordRef::Lost { count, mono_ns }) => p.lost(count, mono_ns)?,
            ItemKindRef::Record(RecordRef::Event(_)) => match item.event() {
                Some(Ok(ev)) if in_window(ev.wall_ns) => p.event(ev)?,
                Some(Ok(_)) | None => {}
                Some(Err(e)) => {
                    errors += 1;
                    if args.strict {
                        return Err(e).context("replay stopped (--strict)");
                    }
                    eprintln!("sigtrace: {e}; skipping it");
                }
            },
            ItemKindRef::Record(RecordRef::Session(_) | RecordRef::Note(_)) => {}
        }
    }
    if let Some(p) = pipeline.as_mut() {
        p.finish()?;
    }
    std::io::stdout().flush()?;
    let stats = reader.stats();
    tracing::debug!("replayed {stats:?}");
    if errors > 0 {
        eprintln!("sigtrace: {errors} corrupt or unreadable record(s) skipped");
    }
    if pipeline.is_none() {
        anyhow::bail!(
            "no journal records found in {}",
            paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(())
}
