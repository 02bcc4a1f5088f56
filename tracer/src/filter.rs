//! Which records a person asked for: `--namespace`, `--pod`, `--workload`, `--container` (a
//! name, or an id prefix), `--diagnosis` and the `--since`/`--until` window, applied to the
//! outputs on their way to a sink ([`Selected`]), so that `replay`, `report` and `summary`
//! select alike.
use crate::container::ContainerInfo;
use crate::engine::{Diagnosis, Output};
use crate::output::OutputSink;
use crate::pipeline::Window;

/// The selection; an empty field selects everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecordFilter {
    pub namespaces: Vec<String>,
    pub pods: Vec<String>,
    pub workloads: Vec<String>,
    /// Container names, or prefixes of container ids.
    pub containers: Vec<String>,
    pub diagnoses: Vec<Diagnosis>,
}

impl RecordFilter {
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }

    fn container_matches(&self, c: Option<&ContainerInfo>) -> bool {
        let any = |list: &[String], v: Option<&str>| {
            list.is_empty() || v.is_some_and(|v| list.iter().any(|x| x == v))
        };
        any(&self.namespaces, c.and_then(|c| c.namespace.as_deref()))
            && any(&self.pods, c.and_then(|c| c.pod.as_deref()))
            && any(
                &self.workloads,
                c.and_then(|c| c.workload.as_ref().map(|w| w.name.as_str())),
            )
            && (self.containers.is_empty()
                || c.is_some_and(|c| {
                    self.containers.iter().any(|x| {
                        c.name.as_deref() == Some(x.as_str()) || c.id.starts_with(x.as_str())
                    })
                }))
    }

    fn diagnosis_matches(&self, d: Diagnosis) -> bool {
        self.diagnoses.is_empty() || self.diagnoses.contains(&d)
    }

    /// Whether `o` is selected. Timeline lines follow their container; a diagnosis filter
    /// selects records only.
    pub fn keeps(&self, o: &Output) -> bool {
        match o {
            Output::ProcessStop(p) => {
                self.container_matches(p.container.as_deref())
                    && self.diagnosis_matches(p.diagnosis)
            }
            Output::ContainerStop(c) => {
                self.container_matches(Some(&c.container)) && self.diagnosis_matches(c.diagnosis)
            }
            Output::Timeline(t) => {
                self.diagnoses.is_empty() && self.container_matches(t.container.as_deref())
            }
            // A pod is kept when one of its containers is.
            Output::PodStop(p) => {
                self.diagnosis_matches(p.diagnosis)
                    && p.containers
                        .iter()
                        .any(|c| self.container_matches(Some(&c.container)))
            }
        }
    }
}

/// A sink that gets only what the filter keeps, within the window (on a record's start, a
/// timeline line's time): the one selection of `replay`, `report` and `summary`.
pub struct Selected<S> {
    filter: RecordFilter,
    window: Window,
    pub sink: S,
}

impl<S> Selected<S> {
    pub fn new(filter: RecordFilter, window: Window, sink: S) -> Self {
        Self {
            filter,
            window,
            sink,
        }
    }
}

/// When a record starts (a timeline line: its time), in wall-clock nanoseconds.
fn start_ns(o: &Output) -> i64 {
    let t = match o {
        Output::ProcessStop(p) => p.time,
        Output::ContainerStop(c) => c.started,
        Output::PodStop(p) => p.started,
        Output::Timeline(t) => t.time,
    };
    t.micros().saturating_mul(1000)
}

impl<S: OutputSink> OutputSink for Selected<S> {
    fn output(&mut self, o: &Output) -> std::io::Result<()> {
        if self.filter.keeps(o) && self.window.contains(start_ns(o)) {
            self.sink.output(o)?;
        }
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.sink.flush()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::engine::tests::{handled_runtime_term, run, task};

    fn web() -> ContainerInfo {
        ContainerInfo {
            id: "0123456789abcdef".into(),
            name: Some("web".into()),
            pod: Some("web-7d4b9c8f6d-x2k9p".into()),
            namespace: Some("shop".into()),
            workload: Some(crate::container::workload::from_pod_name(
                "web-7d4b9c8f6d-x2k9p",
            )),
            ..Default::default()
        }
    }

    /// The S1 outputs (3 timeline lines and a graceful record), in `container`.
    fn outputs(container: Option<ContainerInfo>) -> Vec<Output> {
        let mut out = run(handled_runtime_term(&task(100, "app"), 1.0, 200.0));
        let c = container.map(Arc::new);
        for o in &mut out {
            match o {
                Output::Timeline(t) => t.container = c.clone(),
                Output::ProcessStop(p) => p.container = c.clone(),
                Output::ContainerStop(_) | Output::PodStop(_) => {}
            }
        }
        out
    }

    fn kept(f: &RecordFilter, out: &[Output]) -> usize {
        out.iter().filter(|o| f.keeps(o)).count()
    }

    #[test]
    fn every_filter_selects_what_it_names() {
        let ours = outputs(Some(web()));
        let host = outputs(None);
        let all = RecordFilter::default();
        assert!(all.is_empty());
        assert_eq!((kept(&all, &ours), kept(&all, &host)), (4, 4));
        let by = |f: RecordFilter| (kept(&f, &ours), kept(&f, &host));
        let ns = |v: &str| RecordFilter {
            namespaces: vec![v.into()],
            ..Default::default()
        };
        assert_eq!(by(ns("shop")), (4, 0));
        assert_eq!(by(ns("other")), (0, 0));
        let pod = RecordFilter {
            pods: vec!["web-7d4b9c8f6d-x2k9p".into()],
            ..Default::default()
        };
        assert_eq!(by(pod), (4, 0));
        let wl = |w: &str| RecordFilter {
            workloads: vec![w.into()],
            ..Default::default()
        };
        // The container's workload was derived from its pod name: Deployment `web`.
        assert_eq!(by(wl("web")), (4, 0));
        assert_eq!(by(wl("web-7d4b9c")), (0, 0));
        for c in ["web", "0123456789ab", "0123"] {
            let f = RecordFilter {
                containers: vec![c.into()],
                ..Default::default()
            };
            assert_eq!(by(f), (4, 0), "{c}");
        }
        let nope = RecordFilter {
            containers: vec!["123".into()],
            ..Default::default()
        };
        assert_eq!(by(nope), (0, 0));
        // A diagnosis selects records, not timeline lines.
        let graceful = RecordFilter {
            diagnoses: vec![Diagnosis::Graceful],
            ..Default::default()
        };
        assert_eq!(by(graceful), (1, 1));
        let slow = RecordFilter {
            diagnoses: vec![Diagnosis::SlowHandler],
            ..Default::default()
        };
        assert_eq!(by(slow), (0, 0));
    }
}
