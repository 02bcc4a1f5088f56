//! Top-level commands (`run`, `replay`): builds the pipeline each one needs from the flags.
use anyhow::{Context, Result};

use crate::{
    agent::{run_live, RawSink, Sink},
    cli::{ReplayArgs, RunArgs},
};

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// `sigtrace run`.
pub fn run(args: RunArgs) -> Result<()> {
    let sink: Box<dyn Sink> = if args.raw || args.floor {
        Box::new(RawSink::new(std::io::BufWriter::new(
            std::io::stdout().lock(),
        )))
    } else {
        anyhow::bail!("correlated output is not wired yet; use --raw")
    };
    runtime()?.block_on(run_live(&args, sink))
}

/// `sigtrace replay`.
pub fn replay(_args: ReplayArgs) -> Result<()> {
    anyhow::bail!("replay is not wired yet")
}
