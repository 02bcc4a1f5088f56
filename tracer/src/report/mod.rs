//! `sigtrace report`: a self-contained HTML post-mortem of the stops [`crate::input::read`]
//! gives (journals and record lines of any number of nodes), merged and deduplicated by node
//! and identity ([`records::Collector`]) and rendered by [`html`].
pub mod data;
pub mod html;
pub mod records;

use std::path::Path;

use anyhow::{Context, Result};

use crate::event::WallTime;
use crate::input::{read, Inputs};
use crate::pipeline::Window;

/// `sigtrace report`: writes the HTML file; returns how many stops it shows.
pub fn report(inputs: &Inputs, title: &str, out: &Path) -> Result<usize> {
    let (collector, reading) = read(inputs, records::Collector::new("unknown"))?;
    let collector = collector.finish();
    let mut notes = reading.notes.clone();
    notes.extend(reading.empty_journals(inputs));
    if collector.duplicates > 0 {
        notes.push(format!(
            "{} record(s) seen more than once (overlapping inputs) were merged",
            collector.duplicates
        ));
    }
    for n in &notes {
        eprintln!("sigtrace: {n}");
    }
    let page = html::Page {
        title,
        stops: &collector.stops,
        notes: &notes,
    };
    std::fs::write(out, page.render()).with_context(|| format!("writing {}", out.display()))?;
    Ok(collector.stops.len())
}

/// A default title: the window the report covers.
pub fn default_title(window: &Window) -> String {
    let t = |ns: i64| WallTime::from_ns(ns).to_string();
    match (window.since, window.until) {
        (Some(a), Some(b)) => format!("sigtrace: stops from {} to {}", t(a), t(b)),
        (Some(a), None) => format!("sigtrace: stops since {}", t(a)),
        (None, Some(b)) => format!("sigtrace: stops until {}", t(b)),
        (None, None) => "sigtrace: stops".to_string(),
    }
}

#[cfg(test)]
mod tests;
