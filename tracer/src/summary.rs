//! `sigtrace summary`: the stops of a journal as a table, one row per container (a Kubernetes
//! container is `namespace/workload/container`, so the pods of one workload share a row) or host
//! process name, with the number of stops, the median and longest duration, how many needed
//! SIGKILL, the diagnoses and the hint of the most frequent one that is not `graceful`.
use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::engine::{Diagnosis, Output};
use crate::output::{diagnosis_color, OutputSink, BOLD, RESET};

#[derive(Clone, Debug, Default, PartialEq)]
struct Row {
    durations: Vec<f64>,
    killed: usize,
    diagnoses: BTreeMap<&'static str, (usize, Diagnosis, Option<String>)>,
}

/// The rows of a summary, filled by the engine's output.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Summary {
    rows: BTreeMap<String, Row>,
}

impl OutputSink for Summary {
    fn output(&mut self, o: &Output) -> std::io::Result<()> {
        let (key, duration, killed, diagnosis, hint) = match o {
            Output::ContainerStop(c) => {
                let c_ = &c.container;
                let key = match (&c_.namespace, &c_.workload) {
                    (Some(ns), Some(w)) => format!("{ns}/{}/{}", w.name, c_.label()),
                    (Some(ns), None) => format!("{ns}/{}", c_.label()),
                    _ => c_.label().to_string(),
                };
                (key, c.duration_s, c.killed, c.diagnosis, c.hint.as_deref())
            }
            // A container's processes are in its record; host processes by name.
            Output::ProcessStop(p) if p.container.is_none() => (
                format!("host: {}", p.comm),
                p.duration_s,
                p.killed,
                p.diagnosis,
                p.hint.as_deref(),
            ),
            _ => return Ok(()),
        };
        let row = self.rows.entry(key).or_default();
        row.durations.push(duration);
        row.killed += usize::from(killed);
        let e = row.diagnoses.entry(diagnosis.as_str()).or_insert((
            0,
            diagnosis,
            hint.map(str::to_string),
        ));
        e.0 += 1;
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

impl Summary {
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The table: rows with the most SIGKILLs first, then the most stops.
    pub fn render(&self, color: bool) -> String {
        let paint = |c: &str, t: &str| {
            if color {
                format!("{c}{t}{RESET}")
            } else {
                t.to_string()
            }
        };
        let mut rows: Vec<(&String, &Row)> = self.rows.iter().collect();
        rows.sort_by(|a, b| {
            (b.1.killed, b.1.durations.len())
                .cmp(&(a.1.killed, a.1.durations.len()))
                .then(a.0.cmp(b.0))
        });
        let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0).max(9);
        let mut out = String::new();
        let head = format!(
            "{:<width$}  {:>5}  {:>8}  {:>8}  {:>6}  diagnoses",
            "container", "stops", "median", "max", "killed"
        );
        let _ = writeln!(out, "{}", paint(BOLD, &head));
        let mut hints = Vec::new();
        for (key, row) in rows {
            let mut d = row.durations.clone();
            let max = d.iter().copied().fold(0.0, f64::max);
            let diagnoses: Vec<String> = row
                .diagnoses
                .iter()
                .map(|(name, (n, diag, _))| paint(diagnosis_color(*diag), &format!("{name} {n}")))
                .collect();
            let _ = writeln!(
                out,
                "{key:<width$}  {:>5}  {:>7.3}s  {:>7.3}s  {:>6}  {}",
                row.durations.len(),
                median(&mut d),
                max,
                row.killed,
                diagnoses.join(", ")
            );
            let top = row
                .diagnoses
                .values()
                .filter(|(_, diag, _)| *diag != Diagnosis::Graceful)
                .max_by_key(|(n, _, _)| *n);
            if let Some((_, diag, Some(hint))) = top {
                hints.push(format!("{key}: {diag}: {hint}"));
            }
        }
        if !hints.is_empty() {
            let _ = writeln!(out, "\n{}", paint(BOLD, "what to change"));
            for h in hints {
                let _ = writeln!(out, "  {h}");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::container::ContainerInfo;
    use crate::engine::tests::{handled_runtime_term, run, task};
    use crate::engine::ProcessStop;

    fn stop(comm: &str, container: Option<&str>, d: Diagnosis, secs: f64, killed: bool) -> Output {
        let out = run(handled_runtime_term(&task(100, comm), 1.0, 200.0));
        let Some(Output::ProcessStop(p)) = out
            .into_iter()
            .find(|o| matches!(o, Output::ProcessStop(_)))
        else {
            panic!("no record")
        };
        Output::ProcessStop(ProcessStop {
            container: container.map(|n| {
                Arc::new(ContainerInfo {
                    name: Some(n.into()),
                    ..Default::default()
                })
            }),
            diagnosis: d,
            hint: d.hint().map(Into::into),
            duration_s: secs,
            killed,
            ..p
        })
    }

    #[test]
    fn rows_count_stops_durations_kills_and_diagnoses() {
        let mut s = Summary::default();
        for o in [
            stop("app", None, Diagnosis::SlowHandler, 30.0, true),
            stop("app", None, Diagnosis::SlowHandler, 30.5, true),
            stop("app", None, Diagnosis::Graceful, 0.2, false),
            stop("app", None, Diagnosis::Graceful, 0.4, false),
            stop("db", None, Diagnosis::Graceful, 1.0, false),
            // A process of a container is in its container's record, not here.
            stop("web", Some("web"), Diagnosis::SlowHandler, 9.0, true),
        ] {
            s.output(&o).unwrap();
        }
        let text = s.render(false);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("container"), "{text}");
        // host: app first (2 SIGKILLs): 4 stops, median of 0.2 0.4 30 30.5 = 15.2 s, max 30.5.
        assert_eq!(
            lines[1].split_whitespace().collect::<Vec<_>>(),
            [
                "host:",
                "app",
                "4",
                "15.200s",
                "30.500s",
                "2",
                "graceful",
                "2,",
                "slow_handler",
                "2"
            ],
            "{text}"
        );
        assert_eq!(
            lines[2].split_whitespace().collect::<Vec<_>>(),
            ["host:", "db", "1", "1.000s", "1.000s", "0", "graceful", "1"],
            "{text}"
        );
        assert_eq!(lines.len(), 6, "{text}");
        assert_eq!(
            lines[5],
            format!(
                "  host: app: slow_handler: {}",
                Diagnosis::SlowHandler.hint().unwrap()
            )
        );
        assert!(!text.contains('\x1b'));
        assert!(s
            .render(true)
            .contains(&format!("\x1b[32mgraceful 2{RESET}")));
    }

    #[test]
    fn medians_of_even_and_odd_counts() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&mut []), 0.0);
    }
}
