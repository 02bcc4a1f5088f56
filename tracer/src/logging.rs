//! sigtrace's own diagnostics: one `tracing` subscriber writing to stderr.
use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Installs the stderr subscriber with `filter` (an `EnvFilter` directive such as "info").
pub fn init(filter: &str) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|e| {
        eprintln!("sigtrace: invalid --log filter {filter:?} ({e}); using \"info\"");
        EnvFilter::new("info")
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
        .with_target(false)
        .try_init();
}
