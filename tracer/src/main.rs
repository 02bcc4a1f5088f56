//! The `sigtrace` binary: parses the command line and hands over to the library.
use std::process::ExitCode;

use clap::Parser;
use tracer::cli::{Cli, Command};

fn run(args: &tracer::cli::RunArgs) -> anyhow::Result<bool> {
    tracer::app::run(tracer::app::RunOptions::from_args(args)?).map(|()| true)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracer::logging::init(&cli.log);
    let result = match cli.command {
        Some(Command::Doctor(args)) => Ok(tracer::doctor::print(&tracer::doctor::run_checks(
            &args.btf,
            args.cri_socket.as_deref(),
        ))),
        Some(Command::Replay(args)) => tracer::app::ReplayOptions::from_args(&args)
            .and_then(tracer::app::replay)
            .map(|()| true),
        Some(Command::Run(args)) => run(&args),
        Some(Command::Report(args)) => tracer::app::report(&args).map(|()| true),
        Some(Command::Summary(args)) => tracer::app::summary(&args).map(|()| true),
        None => run(&cli.run),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("sigtrace: {e:#}");
            ExitCode::FAILURE
        }
    }
}
