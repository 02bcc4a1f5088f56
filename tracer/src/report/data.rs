//! The page's data: every stop's lane and details in a compact JSON the page's script renders
//! from (lanes in view and details on demand), so that a report of 100 000 stops stays a few
//! bytes a stop and opens at once. Strings are interned in one table; times are integer
//! microseconds from the first stop; diagnoses are indexes into [`Diagnosis::ALL`].
use std::collections::HashMap;

use serde::Serialize;

use super::html::color;
use super::records::{Stop, StopKind};
use crate::engine::{Diagnosis, ProcessStop};

/// Pixel heights of the layout (the script draws with them).
pub const ROW_H: f64 = 18.0;
pub const PART_H: f64 = 11.0;
pub const GROUP_H: f64 = 22.0;
/// Where the first group starts, below the axis labels.
pub const TOP: f64 = 24.0;

/// Interned strings.
#[derive(Default)]
struct Strings {
    table: Vec<String>,
    index: HashMap<String, u32>,
}

impl Strings {
    fn id(&mut self, s: &str) -> u32 {
        if let Some(&i) = self.index.get(s) {
            return i;
        }
        let i = self.table.len() as u32;
        self.table.push(s.to_owned());
        self.index.insert(s.to_owned(), i);
        i
    }
}

/// One signal row of a process in the details: signal, sender, sender class, what the kernel
/// did, the disposition, when (µs).
type SignalRow = (u32, u32, u32, u32, u32, i64);

/// One process in the details: who, its signal rows, how it ended, signals forwarded, its
/// dispositions.
type ProcessRow = (u32, Vec<SignalRow>, u32, usize, u32);

/// One stop: [y, kind, node, label, group, diagnosis, duration (ms), bar start, end, hint,
/// preStop (start, end), marks (at, signal, sender, result), deadline, parts (label,
/// diagnosis, start, end), processes, preStop exec (comm, path, start, duration ms or -1)].
type Lane = (
    f64,
    u8,
    u32,
    u32,
    u32,
    usize,
    i64,
    i64,
    i64,
    Option<u32>,
    Option<(i64, i64)>,
    Vec<(i64, u32, u32, u32)>,
    Option<i64>,
    Vec<(u32, usize, i64, i64)>,
    Vec<ProcessRow>,
    Option<(u32, u32, i64, i64)>,
);

/// Everything the script needs.
#[derive(Serialize)]
pub struct Data {
    /// Wall time of t = 0, µs since the epoch.
    first_us: i64,
    /// Diagnosis names and colours, by index.
    diagnoses: Vec<(&'static str, &'static str)>,
    strings: Vec<String>,
    /// Group headers: (y, name).
    groups: Vec<(f64, u32)>,
    lanes: Vec<Lane>,
    /// The SVG's height.
    pub height: f64,
}

fn diag(d: Diagnosis) -> usize {
    Diagnosis::ALL.iter().position(|&x| x == d).unwrap_or(0)
}

impl Data {
    /// Lays out `stops` (sorted as shown) from `first_us`.
    pub fn new(stops: &[&Stop], first_us: i64) -> Self {
        let mut s = Strings::default();
        let mut groups = Vec::new();
        let mut lanes = Vec::with_capacity(stops.len());
        let mut y = TOP;
        let mut group: Option<&str> = None;
        let t = |us: i64| us - first_us;
        for st in stops {
            if group != Some(st.group.as_str()) {
                group = Some(st.group.as_str());
                groups.push((y, s.id(&st.group)));
                y += GROUP_H;
            }
            let end = st.ended_us.unwrap_or(st.started_us).max(st.started_us);
            let bar_start = st.ended_us.map_or(st.started_us, |e| {
                st.started_us.max(e - (st.duration_s * 1e6) as i64)
            });
            let kind = match st.kind {
                StopKind::Pod => 0,
                StopKind::Container => 1,
                StopKind::Process => 2,
            };
            let marks = st
                .marks
                .iter()
                .map(|m| {
                    (
                        t(m.at_us),
                        s.id(&m.signal.name()),
                        s.id(&m.sender),
                        s.id(m.result.as_str()),
                    )
                })
                .collect();
            let parts = st
                .parts
                .iter()
                .map(|p| {
                    let pe = p.ended_us.unwrap_or(p.started_us).max(p.started_us);
                    (s.id(&p.label), diag(p.diagnosis), t(p.started_us), t(pe))
                })
                .collect();
            let processes = st
                .record
                .processes()
                .into_iter()
                .map(|p| process_row(&mut s, p, first_us))
                .collect();
            let prestop = st.record.prestop().map(|p| {
                (
                    s.id(&p.comm.as_str()),
                    s.id(&p.path),
                    t(p.start.micros()),
                    p.duration_s.map_or(-1, |d| (d * 1000.0).round() as i64),
                )
            });
            lanes.push((
                y,
                kind,
                s.id(&st.node),
                s.id(&st.label),
                s.id(&st.group),
                diag(st.diagnosis),
                (st.duration_s * 1000.0).round() as i64,
                t(bar_start),
                t(end),
                st.hint.as_deref().map(|h| s.id(h)),
                st.prestop_us.map(|(a, b)| (t(a), t(b.max(a)))),
                marks,
                st.deadline_us.map(t),
                parts,
                processes,
                prestop,
            ));
            y += ROW_H + PART_H * st.parts.len() as f64;
        }
        Self {
            first_us,
            diagnoses: Diagnosis::ALL
                .iter()
                .map(|&d| (d.as_str(), color(d)))
                .collect(),
            strings: s.table,
            groups,
            lanes,
            height: y + 8.0,
        }
    }

    /// The JSON, safe inside a `<script>` element.
    pub fn to_script_json(&self) -> String {
        serde_json::to_string(self)
            .unwrap_or_else(|_| "{}".into())
            .replace("</", "<\\/")
    }
}

fn process_row(s: &mut Strings, p: &ProcessStop, first_us: i64) -> ProcessRow {
    let who = s.id(&format!("{}[{}] {}", p.comm.as_str(), p.pid, p.diagnosis));
    let signals = p
        .signals
        .iter()
        .map(|e| {
            let sender = e
                .sender
                .map_or_else(|| "?".into(), |x| x.comm.as_str().into_owned());
            (
                s.id(&e.signal.name()),
                s.id(&sender),
                s.id(e.sender_class.map_or("?", |c| c.as_str())),
                s.id(e.result.as_str()),
                s.id(e.disposition.as_str()),
                e.at.micros() - first_us,
            )
        })
        .collect();
    let exit = match &p.exit {
        Some(x) => match (x.code, x.signal) {
            (Some(c), _) => format!("exited {c}"),
            (None, Some(sig)) => format!("killed by {}", sig.name()),
            (None, None) => "ended".into(),
        },
        None => "still running".into(),
    };
    let dispositions = p.dispositions.as_ref().map_or_else(
        || "unknown".to_string(),
        |d| {
            d.entries()
                .map(|(sig, disp)| format!("{} {}", sig.name(), disp.as_str()))
                .collect::<Vec<_>>()
                .join(", ")
        },
    );
    (
        who,
        signals,
        s.id(&exit),
        p.forwarded.len(),
        s.id(&dispositions),
    )
}
