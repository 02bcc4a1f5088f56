//! A pod's owning workload (name and kind), derived without the API server: from the pod's labels
//! when the runtime exposes them (e.g. CRI-O's `io.kubernetes.cri-o.Labels` annotation), else from
//! Kubernetes' pod naming rules. Pure logic, no I/O.
//!
//! Vocabulary: a *random suffix* is 5 chars from the alphabet `bcdfghjklmnpqrstvwxz2456789`
//! (k8s.io/apimachinery `util/rand`: no vowels, no `0`, `1`, `3`), appended by `generateName`
//! (`<owner>-`); a *template hash* is 6..=10 chars from the same alphabet (`rand.SafeEncodeString`
//! of a decimal `uint32`); *minutes* are exactly 8 decimal digits (a CronJob's scheduled time in
//! minutes since the Unix epoch); an *ordinal* is a decimal number without leading zeros, at most
//! 10 digits. Matching is case-sensitive: uppercase or `.` in a segment disqualifies it. The owner
//! `<x>` is everything before, and must be non-empty and neither start nor end with `-`.
//!
//! Name rules ([`from_pod_name`], source [`WorkloadSource::Name`]), first match wins, segments
//! split at the last `-`:
//!
//! | pod name                          | kind          | name      | example                  |
//! |-----------------------------------|---------------|-----------|--------------------------|
//! | `<x>-<minutes>-<suffix>`          | `CronJob`     | `<x>`     | `backup-28847520-7cxzt`  |
//! | `<x>-<hash>-<suffix>`             | `Deployment`  | `<x>`     | `web-7d4b9c8f6d-x2k9p`   |
//! | `<x>-<suffix>`                    | `Unknown`     | `<x>`     | `kube-proxy-x8vfl`       |
//! | `<x>-<ordinal>`                   | `StatefulSet` | `<x>`     | `redis-0`                |
//! | anything else                     | `Pod`         | pod name  | `nginx`, `etcd-node1`    |
//!
//! Ambiguities, resolved deliberately (labels, when present, settle all of them):
//! - An 8-digit segment made only of alphabet digits (`24567892`) is also a valid hash: decimal
//!   digits win, so `job-24567892-x2k9p` is CronJob `job`.
//! - `<x>-<suffix>` is owned by a DaemonSet, a Job or a bare ReplicaSet; the name cannot tell
//!   which, so the kind is `Unknown` (never a guess).
//! - A 5-digit ordinal made only of alphabet digits (`foo-24567`) is read as a random suffix
//!   (`Unknown` `foo`), not as StatefulSet `foo`.
//! - A DaemonSet or Job whose own name ends in a hash-like segment (`ds-bcdfgh`) is read as a
//!   Deployment; an Indexed Job's pod `<job>-<index>-<suffix>` as `Unknown` `<job>-<index>`.
//! - A `generateName` longer than 58 chars is truncated to 58, losing the `-` before the suffix:
//!   such pods (long owner names) usually come out as `Pod`.
//!
//! Label rules ([`from_labels`], source [`WorkloadSource::Labels`]), tried in order; a rule whose
//! labels are present but whose name check fails falls through to the next:
//!
//! 1. `pod-template-hash` = H: pod `<x>-H-<any>` → `Deployment` `<x>`; else pod `<rs>-<suffix>`
//!    → `ReplicaSet` `<rs>` (a ReplicaSet not created by a Deployment).
//! 2. `statefulset.kubernetes.io/pod-name`, or `apps.kubernetes.io/pod-index` together with
//!    `controller-revision-hash`: pod `<x>-<ordinal>` → `StatefulSet` `<x>`.
//! 3. `controller-revision-hash` and `pod-template-generation`: pod `<x>-<suffix>` →
//!    `DaemonSet` `<x>`.
//! 4. J = the first non-empty of `batch.kubernetes.io/job-name`, `job-name`: J is
//!    `<x>-<minutes>` → `CronJob` `<x>`; else `Job` J.
//!
//! Nothing else settles it: [`from_labels`] returns `None` and [`derive`] uses the name rules.
use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// The kind of a pod's owning workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkloadKind {
    Deployment,
    ReplicaSet,
    StatefulSet,
    DaemonSet,
    Job,
    CronJob,
    /// A bare pod: no controller.
    Pod,
    /// Owned by a controller the name cannot identify (DaemonSet, Job or bare ReplicaSet).
    Unknown,
}

impl WorkloadKind {
    /// The lowercase name, as serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deployment => "deployment",
            Self::ReplicaSet => "replicaset",
            Self::StatefulSet => "statefulset",
            Self::DaemonSet => "daemonset",
            Self::Job => "job",
            Self::CronJob => "cronjob",
            Self::Pod => "pod",
            Self::Unknown => "unknown",
        }
    }
}

/// What a [`Workload`] was derived from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkloadSource {
    Labels,
    Name,
}

/// A pod's owning workload. In JSON its fields are `workload`, `workload_type` and
/// `workload_source`, the label names of the kubernetes-mixin recording rules (flattened into
/// the container object that carries them).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Workload {
    #[serde(rename = "workload")]
    pub name: String,
    #[serde(rename = "workload_type")]
    pub kind: WorkloadKind,
    /// How it was derived: "labels" or "name".
    #[serde(rename = "workload_source")]
    pub source: WorkloadSource,
}

const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

fn is_alphabet(s: &str, len: std::ops::RangeInclusive<usize>) -> bool {
    len.contains(&s.len()) && s.bytes().all(|b| ALPHABET.contains(&b))
}

fn is_suffix(s: &str) -> bool {
    is_alphabet(s, 5..=5)
}

fn is_hash(s: &str) -> bool {
    is_alphabet(s, 6..=10)
}

fn is_minutes(s: &str) -> bool {
    s.len() == 8 && s.bytes().all(|b| b.is_ascii_digit())
}

fn is_ordinal(s: &str) -> bool {
    (1..=10).contains(&s.len())
        && s.bytes().all(|b| b.is_ascii_digit())
        && (s == "0" || !s.starts_with('0'))
}

fn is_owner(s: &str) -> bool {
    !s.is_empty() && !s.starts_with('-') && !s.ends_with('-')
}

/// `<owner>-<last>` split at the last `-`, if the owner is valid.
fn split_last(s: &str) -> Option<(&str, &str)> {
    s.rsplit_once('-').filter(|(owner, _)| is_owner(owner))
}

/// The owner before a trailing `-<last>` for which `pred(last)` holds.
fn strip(s: &str, pred: fn(&str) -> bool) -> Option<&str> {
    split_last(s)
        .filter(|(_, last)| pred(last))
        .map(|(owner, _)| owner)
}

fn workload(name: &str, kind: WorkloadKind, source: WorkloadSource) -> Workload {
    Workload {
        name: name.to_owned(),
        kind,
        source,
    }
}

/// From the pod name alone.
pub fn from_pod_name(pod: &str) -> Workload {
    let named = |name, kind| workload(name, kind, WorkloadSource::Name);
    if let Some(rest) = strip(pod, is_suffix) {
        if let Some(owner) = strip(rest, is_minutes) {
            return named(owner, WorkloadKind::CronJob);
        }
        if let Some(owner) = strip(rest, is_hash) {
            return named(owner, WorkloadKind::Deployment);
        }
        return named(rest, WorkloadKind::Unknown);
    }
    match strip(pod, is_ordinal) {
        Some(owner) => named(owner, WorkloadKind::StatefulSet),
        None => named(pod, WorkloadKind::Pod),
    }
}

/// From pod labels (a map of label key -> value) if they settle it, else None.
pub fn from_labels(pod: &str, labels: &HashMap<String, String>) -> Option<Workload> {
    let has = |key: &str| labels.contains_key(key);
    let labelled = |name: &str, kind| Some(workload(name, kind, WorkloadSource::Labels));

    let replica_set = || {
        let hash = labels.get("pod-template-hash")?;
        let (rs, _) = split_last(pod)?;
        match rs
            .strip_suffix(hash.as_str())
            .and_then(|x| x.strip_suffix('-'))
        {
            Some(owner) if is_owner(owner) => labelled(owner, WorkloadKind::Deployment),
            _ => labelled(strip(pod, is_suffix)?, WorkloadKind::ReplicaSet),
        }
    };
    let stateful_set = || {
        let sts = has("statefulset.kubernetes.io/pod-name")
            || (has("apps.kubernetes.io/pod-index") && has("controller-revision-hash"));
        if !sts {
            return None;
        }
        labelled(strip(pod, is_ordinal)?, WorkloadKind::StatefulSet)
    };
    let daemon_set = || {
        if !(has("controller-revision-hash") && has("pod-template-generation")) {
            return None;
        }
        labelled(strip(pod, is_suffix)?, WorkloadKind::DaemonSet)
    };
    let job = || {
        let job = ["batch.kubernetes.io/job-name", "job-name"]
            .into_iter()
            .find_map(|key| labels.get(key).filter(|j| !j.is_empty()))?;
        match strip(job, is_minutes) {
            Some(cron) => labelled(cron, WorkloadKind::CronJob),
            None => labelled(job, WorkloadKind::Job),
        }
    };
    replica_set()
        .or_else(stateful_set)
        .or_else(daemon_set)
        .or_else(job)
}

/// Labels first, then the name.
pub fn derive(pod: &str, labels: Option<&HashMap<String, String>>) -> Workload {
    labels
        .and_then(|l| from_labels(pod, l))
        .unwrap_or_else(|| from_pod_name(pod))
}

#[cfg(test)]
mod tests {
    use super::WorkloadKind::*;
    use super::*;

    fn parse<T: serde::de::DeserializeOwned>(word: &str) -> T {
        serde_json::from_str(&format!("{word:?}")).unwrap()
    }

    #[test]
    fn name_rules() {
        let cases = [
            ("web-7d4b9c8f6d-x2k9p", Deployment, "web"),
            ("coredns-5d78c9869d-4w9bx", Deployment, "coredns"),
            ("api-v2-6f7b8c9d4-zq5wp", Deployment, "api-v2"),
            ("web-bcdfgh-x2k9p", Deployment, "web"), // 6-char hash, the minimum
            ("backup-28847520-7cxzt", CronJob, "backup"),
            ("job-24567892-x2k9p", CronJob, "job"), // decimal digits beat hash
            ("kube-proxy-x8vfl", Unknown, "kube-proxy"),
            ("my-job-x7fzt", Unknown, "my-job"),
            ("foo-24567", Unknown, "foo"), // 5 alphabet digits: suffix, not ordinal
            ("foo-bcd-x2k9p", Unknown, "foo-bcd"), // hash too short
            ("foo-bcdfg-x2k9p", Unknown, "foo-bcdfg"), // 5 chars: not a hash
            ("foo-bcdfghjklmn-x2k9p", Unknown, "foo-bcdfghjklmn"), // 11 chars: too long
            ("foo-2884752-x2k9p", Deployment, "foo"), // 7 digits: not minutes, but a hash
            ("foo-28847520-x2k9p", CronJob, "foo"),
            ("redis-0", StatefulSet, "redis"),
            ("redis-12", StatefulSet, "redis"),
            ("postgres-cluster-2", StatefulSet, "postgres-cluster"),
            ("foo-10234", StatefulSet, "foo"), // has '0', '1', '3': not a suffix
            ("web-01", Pod, "web-01"),         // leading zero
            ("etcd-node1", Pod, "etcd-node1"), // vowel and '1'
            ("nginx", Pod, "nginx"),
            ("a-b-c", Pod, "a-b-c"),
            ("-x2k9p", Pod, "-x2k9p"),     // empty owner
            ("-7", Pod, "-7"),             // empty owner
            ("a--x2k9p", Pod, "a--x2k9p"), // owner ends with '-'
            ("web-", Pod, "web-"),         // empty last segment
            ("web-7d4b9c8f6d-X2K9P", Pod, "web-7d4b9c8f6d-X2K9P"), // uppercase: not a suffix
            ("web-7D4B9C8F6D-x2k9p", Unknown, "web-7D4B9C8F6D"), // uppercase: not a hash
            ("web.v1-x2k9p", Unknown, "web.v1"),
            ("foo-x2k9.", Pod, "foo-x2k9."),
            ("", Pod, ""),
        ];
        for (pod, kind, name) in cases {
            let want = workload(name, kind, WorkloadSource::Name);
            assert_eq!(from_pod_name(pod), want, "pod {pod:?}");
        }
    }

    /// `pod | labels (k=v ...) | source kind name`. Source `labels`: the labels settle it.
    /// Source `name`: they do not, and [`derive`] falls back to the name rules.
    const LABEL_CASES: &str = "
        web-7d4b9c8f6d-x2k9p | pod-template-hash=7d4b9c8f6d | labels deployment web
        web-x2k9p | pod-template-hash=7d4b9c8f6d | labels replicaset web
        web-abc-x2k9p | pod-template-hash= | labels replicaset web-abc
        redis-24567 | statefulset.kubernetes.io/pod-name=redis-24567 | labels statefulset redis
        pg-x2k9p-3 | apps.kubernetes.io/pod-index=3 controller-revision-hash=pg-5b8 \
            | labels statefulset pg-x2k9p
        kube-proxy-x8vfl | controller-revision-hash=6c8 pod-template-generation=1 \
            | labels daemonset kube-proxy
        my-job-x7fzt | job-name=my-job | labels job my-job
        my-job-x7fzt | batch.kubernetes.io/job-name=my-job job-name=other | labels job my-job
        backup-28847520-7cxzt | job-name=backup-28847520 | labels cronjob backup
        backup-28847520-7cxzt | batch.kubernetes.io/job-name=backup-28847520 \
            | labels cronjob backup
        odd | pod-template-hash=abc job-name=odd | labels job odd
        kube-proxy-x8vfl | | name unknown kube-proxy
        web-7d4b9c8f6d-x2k9p | app=web | name deployment web
        redis-0 | controller-revision-hash=r-5 | name statefulset redis
        redis-0 | apps.kubernetes.io/pod-index=0 | name statefulset redis
        ds-x8vfl | pod-template-generation=1 | name unknown ds
        web-01 | statefulset.kubernetes.io/pod-name=web-01 | name pod web-01
        nginx | job-name= | name pod nginx
        my-job-x7fzt | batch.kubernetes.io/job-name= job-name=my-job | labels job my-job
    ";

    #[test]
    fn label_rules() {
        for line in LABEL_CASES.lines().filter(|l| !l.trim().is_empty()) {
            let cols: Vec<&str> = line.split('|').map(str::trim).collect();
            let [pod, pairs, result] = cols[..] else {
                panic!("bad case {line:?}")
            };
            let labels: HashMap<String, String> = pairs
                .split_whitespace()
                .map(|kv| kv.split_once('=').unwrap())
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
            let [source, kind, name] = result.split(' ').collect::<Vec<_>>()[..] else {
                panic!("bad case {line:?}")
            };
            let want = workload(name, parse(kind), parse(source));
            let settled = (want.source == WorkloadSource::Labels).then(|| want.clone());
            assert_eq!(from_labels(pod, &labels), settled, "pod {pod:?}");
            assert_eq!(derive(pod, Some(&labels)), want, "pod {pod:?}");
        }
        let by_name = workload("redis", StatefulSet, WorkloadSource::Name);
        assert_eq!(derive("redis-0", None), by_name);
    }

    #[test]
    fn serde_uses_lowercase_names() {
        for word in "deployment replicaset statefulset daemonset job cronjob pod unknown".split(' ')
        {
            let kind: WorkloadKind = parse(word);
            assert_eq!(kind.as_str(), word);
            assert_eq!(serde_json::to_string(&kind).unwrap(), format!("{word:?}"));
        }
        let w = from_pod_name("backup-28847520-7cxzt");
        let json = serde_json::to_string(&w).unwrap();
        assert_eq!(
            json,
            r#"{"workload":"backup","workload_type":"cronjob","workload_source":"name"}"#
        );
        assert_eq!(serde_json::from_str::<Workload>(&json).unwrap(), w);
    }
}
