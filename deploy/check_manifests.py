#!/usr/bin/env python3
"""Checks of sigtrace's manifests that the Kubernetes schemas cannot make (used by validate.sh).

usage: check_manifests.py FILE... (each a YAML file, possibly multi-document: a kustomize
rendering or the base files themselves)

- PodMonitor (a CRD, no schema in kubernetes-validate): apiVersion/kind, required fields,
  no unknown fields in the parts we use, relabel actions, durations; its port must be a named
  container port of the pods it selects.
- DaemonSet policy: hostPID, not privileged, capabilities drop ALL and add only known ones,
  SYS_ADMIN never with allowPrivilegeEscalation: false (the API server refuses that),
  read-only root, read-only host mounts except the journal, probes on the `metrics` port,
  NODE_NAME from the downward API, grace period, priority, tolerations, update strategy.
- Service targetPort names a container port.
Exits 1 listing every problem.
"""
import re
import sys

import yaml

errors = []


def err(where, msg):
    errors.append(f"{where}: {msg}")


DURATION = re.compile(r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$")
RELABEL_ACTIONS = {"replace", "keep", "drop", "hashmod", "labelmap", "labeldrop", "labelkeep",
                   "lowercase", "uppercase", "keepequal", "dropequal"}
RELABEL_FIELDS = {"sourceLabels", "separator", "targetLabel", "regex", "modulus", "replacement", "action"}
PODMONITOR_SPEC_FIELDS = {
    "jobLabel", "podTargetLabels", "podMetricsEndpoints", "selector", "selectorMechanism",
    "namespaceSelector", "sampleLimit", "targetLimit", "labelLimit", "labelNameLengthLimit",
    "labelValueLengthLimit", "keepDroppedTargets", "attachMetadata", "scrapeProtocols",
    "fallbackScrapeProtocol", "scrapeClass", "bodySizeLimit", "scrapeClassicHistograms",
    "convertClassicHistogramsToNHCB", "nativeHistogramBucketLimit", "nativeHistogramMinBucketFactor",
}
ENDPOINT_FIELDS = {
    "port", "portNumber", "targetPort", "path", "scheme", "params", "interval", "scrapeTimeout",
    "honorLabels", "honorTimestamps", "trackTimestampsStaleness", "metricRelabelings",
    "relabelings", "proxyUrl", "followRedirects", "enableHttp2", "filterRunning",
    "authorization", "basicAuth", "oauth2", "tlsConfig", "bearerTokenSecret", "noProxy",
    "proxyFromEnvironment", "proxyConnectHeader",
}
ALLOWED_CAPS = {"BPF", "PERFMON", "SYS_PTRACE", "DAC_READ_SEARCH", "SYS_ADMIN", "SYS_RESOURCE"}
JOURNAL = "/var/lib/sigtrace"


def matches(selector, labels):
    return all(labels.get(k) == v for k, v in (selector or {}).get("matchLabels", {}).items())


def check_relabelings(where, rules):
    if not isinstance(rules, list):
        err(where, "must be a list")
        return
    for i, r in enumerate(rules):
        w = f"{where}[{i}]"
        for k in set(r) - RELABEL_FIELDS:
            err(w, f"unknown field {k!r}")
        action = str(r.get("action", "replace")).lower()
        if action not in RELABEL_ACTIONS:
            err(w, f"unknown action {r.get('action')!r}")
        if action == "replace" and "targetLabel" not in r:
            err(w, "replace needs targetLabel")
        if "sourceLabels" in r and not all(isinstance(s, str) for s in r["sourceLabels"]):
            err(w, "sourceLabels must be strings")


def check_podmonitor(doc, pods):
    w = f"PodMonitor/{doc.get('metadata', {}).get('name')}"
    if doc.get("apiVersion") != "monitoring.coreos.com/v1":
        err(w, f"apiVersion {doc.get('apiVersion')!r}, expected monitoring.coreos.com/v1")
    if not doc.get("metadata", {}).get("name"):
        err(w, "metadata.name missing")
    spec = doc.get("spec")
    if not isinstance(spec, dict):
        err(w, "spec missing")
        return
    for k in set(spec) - PODMONITOR_SPEC_FIELDS:
        err(w, f"unknown spec field {k!r}")
    if "selector" not in spec:
        err(w, "spec.selector is required")
    eps = spec.get("podMetricsEndpoints")
    if not eps:
        err(w, "spec.podMetricsEndpoints is empty")
        return
    selected = [p for p in pods if matches(spec.get("selector"), p["labels"])]
    if pods and not selected:
        err(w, "selector matches no pod template")
    for i, ep in enumerate(eps):
        we = f"{w} podMetricsEndpoints[{i}]"
        for k in set(ep) - ENDPOINT_FIELDS:
            err(we, f"unknown field {k!r}")
        for k in ("interval", "scrapeTimeout"):
            if k in ep and not DURATION.match(str(ep[k])):
                err(we, f"{k} {ep[k]!r} is not a duration")
        if "path" in ep and not str(ep["path"]).startswith("/"):
            err(we, "path must start with /")
        for k in ("relabelings", "metricRelabelings"):
            if k in ep:
                check_relabelings(f"{we}.{k}", ep[k])
        port = ep.get("port")
        if port is not None:
            for p in selected:
                if port not in p["ports"]:
                    err(we, f"port {port!r} is not a named container port of {p['name']}")
    # the dashboard needs the node label
    rel = [r for ep in eps for r in ep.get("relabelings", [])]
    if not any(r.get("targetLabel") == "node" and "__meta_kubernetes_pod_node_name" in r.get("sourceLabels", [])
               for r in rel):
        err(w, "no relabeling of __meta_kubernetes_pod_node_name into node")


def check_daemonset(doc):
    w = f"DaemonSet/{doc['metadata']['name']}"
    spec = doc["spec"]
    pod = spec["template"]["spec"]
    if pod.get("hostPID") is not True:
        err(w, "hostPID must be true")
    if pod.get("terminationGracePeriodSeconds") != 10:
        err(w, "terminationGracePeriodSeconds must be 10")
    if pod.get("priorityClassName") != "system-node-critical":
        err(w, "priorityClassName must be system-node-critical")
    if not any(t.get("operator") == "Exists" and "key" not in t for t in pod.get("tolerations", [])):
        err(w, "needs a toleration {operator: Exists} to run on every node")
    us = spec.get("updateStrategy", {})
    if us.get("type") != "RollingUpdate" or us.get("rollingUpdate", {}).get("maxUnavailable") != "10%":
        err(w, "updateStrategy must be RollingUpdate with maxUnavailable 10%")
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    for c in pod["containers"]:
        wc = f"{w} container {c['name']}"
        sc = c.get("securityContext", {})
        if sc.get("privileged"):
            err(wc, "must not be privileged")
        if not sc.get("readOnlyRootFilesystem"):
            err(wc, "readOnlyRootFilesystem must be true")
        caps = sc.get("capabilities", {})
        if caps.get("drop") != ["ALL"]:
            err(wc, "capabilities.drop must be [ALL]")
        add = set(caps.get("add", []))
        for cap in add - ALLOWED_CAPS:
            err(wc, f"capability {cap} is not one sigtrace needs")
        for cap in ("BPF", "PERFMON"):
            if cap not in add:
                err(wc, f"capability {cap} missing")
        if "SYS_ADMIN" in add and sc.get("allowPrivilegeEscalation") is False:
            err(wc, "SYS_ADMIN with allowPrivilegeEscalation: false is refused by the API server")
        ports = {p.get("name"): p for p in c.get("ports", [])}
        if ports.get("metrics", {}).get("containerPort") != 9477:
            err(wc, "needs containerPort 9477 named metrics")
        for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
            g = c.get(probe, {}).get("httpGet", {})
            if g.get("path") != path or g.get("port") != "metrics":
                err(wc, f"{probe} must be httpGet {path} on port metrics")
        env = {e["name"]: e for e in c.get("env", [])}
        if env.get("NODE_NAME", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") != "spec.nodeName":
            err(wc, "NODE_NAME must come from the downward API (spec.nodeName)")
        args = c.get("args", [])
        for a, b in (("--node-name", "$(NODE_NAME)"), ("--data-dir", JOURNAL), ("--metrics", "0.0.0.0:9477")):
            if a not in args or args.index(a) + 1 >= len(args) or args[args.index(a) + 1] != b:
                err(wc, f"args must contain {a} {b}")
        if args[:1] != ["run"]:
            err(wc, "args must start with the run subcommand")
        res = c.get("resources", {})
        if not res.get("requests", {}).get("cpu") or not res.get("limits", {}).get("memory"):
            err(wc, "needs a cpu request and a memory limit")
        for m in c.get("volumeMounts", []):
            v = volumes.get(m["name"])
            if v is None:
                err(wc, f"volumeMount {m['name']} has no volume")
                continue
            if "hostPath" in v:
                if m["mountPath"] == JOURNAL:
                    if m.get("readOnly"):
                        err(wc, "the journal mount must be read-write")
                    if v["hostPath"].get("type") != "DirectoryOrCreate":
                        err(wc, "the journal hostPath must be DirectoryOrCreate")
                elif not m.get("readOnly"):
                    err(wc, f"host mount {m['mountPath']} must be readOnly")
        if JOURNAL not in [m["mountPath"] for m in c.get("volumeMounts", [])]:
            err(wc, f"no journal mount at {JOURNAL}")


def main(paths):
    docs = []
    for p in paths:
        with open(p) as f:
            docs += [(p, d) for d in yaml.safe_load_all(f) if d]
    pods = []
    for _, d in docs:
        if d.get("kind") in ("DaemonSet", "Deployment", "StatefulSet"):
            t = d["spec"]["template"]
            pods.append({
                "name": f"{d['kind']}/{d['metadata']['name']}",
                "labels": t.get("metadata", {}).get("labels", {}),
                "ports": {p.get("name") for c in t["spec"]["containers"] for p in c.get("ports", [])},
            })
    kinds = set()
    for path, d in docs:
        kind = d.get("kind")
        kinds.add(kind)
        if kind == "PodMonitor":
            check_podmonitor(d, pods)
        elif kind == "DaemonSet":
            check_daemonset(d)
        elif kind == "Service":
            for p in d["spec"].get("ports", []):
                tp = p.get("targetPort")
                if isinstance(tp, str):
                    sel = [q for q in pods if matches({"matchLabels": d["spec"].get("selector", {})}, q["labels"])]
                    for q in sel:
                        if tp not in q["ports"]:
                            err(f"Service/{d['metadata']['name']}", f"targetPort {tp!r} not a port of {q['name']}")
    for e in errors:
        print(f"ERROR {e}")
    print(f"checked {len(docs)} objects ({', '.join(sorted(k for k in kinds if k))}): {len(errors)} problems")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
