//! What the node's CRI says about one container ([`CriFacts`]), parsed from the answers of
//! `ContainerStatus`, `ListPodSandbox` and `ImageStatus`, and merged into a
//! [`ContainerInfo`]. Pure: no I/O.
use std::collections::HashMap;

use super::super::hook::DeclaredHook;
use super::super::workload;
use super::super::ContainerInfo;

/// kubelet's container annotation with the pod's terminationGracePeriodSeconds.
pub const GRACE_ANNOTATION: &str = "io.kubernetes.pod.terminationGracePeriod";
/// kubelet's container annotation with the JSON of `lifecycle.preStop`.
pub const PRESTOP_ANNOTATION: &str = "io.kubernetes.container.preStopHandler";

/// The Kubernetes facts of one container, as the CRI returned them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CriFacts {
    pub name: Option<String>,
    pub pod: Option<String>,
    pub namespace: Option<String>,
    pub pod_uid: Option<String>,
    pub image: Option<String>,
    /// The pod's terminationGracePeriodSeconds (kubelet's annotation).
    pub termination_grace_s: Option<u32>,
    /// The declared preStop hook; [`DeclaredHook::None`] when the container declares none.
    pub prestop: Option<DeclaredHook>,
    /// The pod's labels (on its sandbox).
    pub pod_labels: Option<HashMap<String, String>>,
    /// The image config's `StopSignal` ("SIGQUIT").
    pub stop_signal: Option<String>,
    /// The id is a pod sandbox's, not a container's.
    pub sandbox: bool,
}

fn non_empty(map: &HashMap<String, String>, key: &str) -> Option<String> {
    map.get(key).filter(|v| !v.is_empty()).cloned()
}

impl CriFacts {
    /// From a container's labels and annotations (kubelet's keys) and image name.
    pub fn of_container(
        labels: &HashMap<String, String>,
        annotations: &HashMap<String, String>,
        image: &str,
    ) -> Self {
        let prestop = match annotations.get(PRESTOP_ANNOTATION) {
            Some(json) => DeclaredHook::parse(json),
            // kubelet writes the annotation only for a declared hook: none declared.
            None if labels.contains_key("io.kubernetes.pod.uid") => Some(DeclaredHook::None),
            None => None,
        };
        Self {
            name: non_empty(labels, "io.kubernetes.container.name"),
            pod: non_empty(labels, "io.kubernetes.pod.name"),
            namespace: non_empty(labels, "io.kubernetes.pod.namespace"),
            pod_uid: non_empty(labels, "io.kubernetes.pod.uid"),
            image: (!image.is_empty()).then(|| image.to_owned()),
            termination_grace_s: annotations
                .get(GRACE_ANNOTATION)
                .and_then(|v| v.trim().parse().ok()),
            prestop,
            ..Self::default()
        }
    }

    /// From a pod sandbox's labels (its id answered `PodSandboxStatus`).
    pub fn of_sandbox(labels: &HashMap<String, String>) -> Self {
        Self {
            pod: non_empty(labels, "io.kubernetes.pod.name"),
            namespace: non_empty(labels, "io.kubernetes.pod.namespace"),
            pod_uid: non_empty(labels, "io.kubernetes.pod.uid"),
            pod_labels: Some(labels.clone()),
            sandbox: true,
            ..Self::default()
        }
    }

    /// Fills `info` with these facts: the CRI's declared grace and hook win over what the
    /// runtime's files said; names fill what the files did not have; the pod's labels decide
    /// the workload.
    pub fn merge_into(&self, info: &mut ContainerInfo) {
        let fill = |slot: &mut Option<String>, v: &Option<String>| {
            if slot.is_none() {
                slot.clone_from(v);
            }
        };
        fill(&mut info.name, &self.name);
        fill(&mut info.pod, &self.pod);
        fill(&mut info.namespace, &self.namespace);
        fill(&mut info.pod_uid, &self.pod_uid);
        fill(&mut info.image, &self.image);
        fill(&mut info.stop_signal, &self.stop_signal);
        if self.sandbox && info.container_type.is_none() {
            info.container_type = Some("sandbox".to_owned());
        }
        if let Some(t) = self.termination_grace_s {
            info.termination_grace_s = Some(t);
        }
        if self.prestop.is_some() {
            info.prestop_hook.clone_from(&self.prestop);
        }
        if let Some(pod) = info.pod.as_deref() {
            let labelled = self
                .pod_labels
                .as_ref()
                .map(|l| workload::derive(pod, Some(l)));
            if let Some(w) = labelled {
                info.workload = Some(w);
            } else if info.workload.is_none() {
                info.workload = Some(workload::derive(pod, None));
            }
        }
        info.facts_source = Some("cri".to_owned());
    }
}

/// The image config's `StopSignal` from `ImageStatus`'s verbose `info` (containerd and CRI-O
/// put the image spec under `imageSpec`).
pub fn image_stop_signal(info: &HashMap<String, String>) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(info.get("info")?).ok()?;
    let s = v["imageSpec"]["config"]["StopSignal"].as_str()?;
    (!s.is_empty()).then(|| s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn kubelet_annotations_give_grace_and_hook() {
        let labels = map(&[
            ("io.kubernetes.container.name", "app"),
            ("io.kubernetes.pod.name", "agent-x7k2p"),
            ("io.kubernetes.pod.namespace", "ops"),
            ("io.kubernetes.pod.uid", "u-1"),
        ]);
        let ann = map(&[
            (GRACE_ANNOTATION, "45"),
            (PRESTOP_ANNOTATION, r#"{"sleep":{"seconds":5}}"#),
        ]);
        let f = CriFacts::of_container(&labels, &ann, "registry/app:1");
        assert_eq!(f.termination_grace_s, Some(45));
        assert_eq!(f.prestop, Some(DeclaredHook::Sleep { seconds: 5 }));
        assert_eq!(f.name.as_deref(), Some("app"));
        // No annotation on a kubelet container: no hook declared.
        let f = CriFacts::of_container(&labels, &HashMap::new(), "");
        assert_eq!(f.prestop, Some(DeclaredHook::None));
        assert_eq!(f.termination_grace_s, None);
        assert_eq!(f.image, None);
    }

    #[test]
    fn sandbox_labels_decide_the_workload_and_cri_wins_the_grace() {
        let mut info = ContainerInfo {
            id: "c".into(),
            pod: Some("agent-x7k2p".into()),
            termination_grace_s: Some(30),
            ..ContainerInfo::default()
        };
        let mut f =
            CriFacts::of_container(&HashMap::new(), &map(&[(GRACE_ANNOTATION, "4")]), "img");
        f.pod_labels = Some(map(&[
            ("controller-revision-hash", "5d8f7c9b6"),
            ("pod-template-generation", "3"),
        ]));
        f.stop_signal = Some("SIGQUIT".into());
        f.merge_into(&mut info);
        assert_eq!(info.termination_grace_s, Some(4));
        assert_eq!(info.facts_source.as_deref(), Some("cri"));
        assert_eq!(info.stop_signal.as_deref(), Some("SIGQUIT"));
        assert_eq!(info.image.as_deref(), Some("img"));
        let w = info.workload.expect("a workload");
        assert_eq!(w.kind.as_str(), "daemonset");
        assert_eq!(w.name, "agent");
    }

    #[test]
    fn image_stop_signal_from_verbose_info() {
        let info = map(&[(
            "info",
            r#"{"chainID":"sha256:x","imageSpec":{"config":{"StopSignal":"SIGWINCH"}}}"#,
        )]);
        assert_eq!(image_stop_signal(&info).as_deref(), Some("SIGWINCH"));
        assert_eq!(image_stop_signal(&map(&[("info", "{}")])), None);
        assert_eq!(image_stop_signal(&map(&[("info", "not json")])), None);
        assert_eq!(image_stop_signal(&HashMap::new()), None);
    }
}
