#!/usr/bin/env python3
"""Checks of sigtrace's manifests that the Kubernetes schemas cannot make (used by validate.sh).

usage: check_manifests.py FILE... (each a YAML file, possibly multi-document: a kustomize
rendering or the base files themselves)

- Selection: every object that selects pods (PodMonitor, Service, the workloads' own
  spec.selector) must select at least one pod template of the files given, in its namespace
  (PodMonitor: its namespaceSelector); a Service needs a selector. Selectors use matchLabels
  and matchExpressions (In, NotIn, Exists, DoesNotExist) as the API server does.
- PodMonitor (a CRD, no schema in kubernetes-validate): apiVersion/kind, required fields,
  no unknown fields in the parts we use (selector included), relabel actions, durations; its
  port must be a named container port of every pod it selects (portNumber / targetPort: a
  declared containerPort).
- DaemonSet policy: hostPID, not privileged, capabilities drop ALL and add only known ones,
  SYS_ADMIN never with allowPrivilegeEscalation: false (the API server refuses that),
  read-only root, read-only host mounts except the journal, probes on the `metrics` port,
  NODE_NAME from the downward API, grace period, priority, tolerations, update strategy.
- Service: targetPort (default: port) is a container port of every pod it selects, by name or
  by number; a named targetPort of a Service that selects nothing cannot be resolved: a problem.
- The files hold at least one DaemonSet, Service and PodMonitor (an empty or partial input is
  a problem, not a pass).
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
ALLOWED_CAPS = {"BPF", "PERFMON", "SYS_PTRACE", "DAC_READ_SEARCH", "SYS_NICE", "SYS_ADMIN", "SYS_RESOURCE"}
JOURNAL = "/var/lib/sigtrace"


SELECTOR_FIELDS = {"matchLabels", "matchExpressions"}
SELECTOR_OPERATORS = {"In", "NotIn", "Exists", "DoesNotExist"}
REQUIRED_KINDS = ("DaemonSet", "Service", "PodMonitor")


def check_selector(where, selector):
    """A LabelSelector's shape (for the PodMonitor: no schema checks it). True when usable."""
    if not isinstance(selector, dict):
        err(where, "selector must be a map")
        return False
    ok = True
    for k in set(selector) - SELECTOR_FIELDS:
        err(where, f"unknown selector field {k!r}")
        ok = False
    if not isinstance(selector.get("matchLabels") or {}, dict):
        err(where, "matchLabels must be a map")
        ok = False
    for i, e in enumerate(selector.get("matchExpressions") or []):
        if not isinstance(e, dict) or not e.get("key"):
            err(where, f"matchExpressions[{i}]: needs a key")
            ok = False
            continue
        op = e.get("operator")
        if op not in SELECTOR_OPERATORS:
            err(where, f"matchExpressions[{i}]: unknown operator {op!r}")
            ok = False
        elif (op in ("In", "NotIn")) != bool(e.get("values")):
            err(where, f"matchExpressions[{i}]: {op} {'needs' if op in ('In', 'NotIn') else 'takes no'} values")
            ok = False
    return ok


def matches(selector, labels):
    """LabelSelector semantics (matchLabels AND every matchExpression)."""
    selector = selector or {}
    if not all(labels.get(k) == v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for e in selector.get("matchExpressions") or []:
        k, op, values = e.get("key"), e.get("operator"), e.get("values") or []
        if op == "In":
            ok = k in labels and labels[k] in values
        elif op == "NotIn":
            ok = labels.get(k) not in values
        elif op == "Exists":
            ok = k in labels
        elif op == "DoesNotExist":
            ok = k not in labels
        else:
            ok = False
        if not ok:
            return False
    return True


def namespace(doc):
    return (doc.get("metadata") or {}).get("namespace")


def selected_pods(pods, selector, namespaces):
    """Pod templates in one of namespaces (None: any) whose labels the selector matches."""
    return [p for p in pods
            if (namespaces is None or p["namespace"] in namespaces) and matches(selector, p["labels"])]


def check_port(where, what, port, selected):
    """port: a container port name (str) or number (int) every selected pod must declare."""
    if not selected:
        if isinstance(port, str):
            err(where, f"{what} {port!r} cannot be resolved: the selector matches no pod template")
        return
    for p in selected:
        if isinstance(port, str):
            if port not in p["ports"]:
                err(where, f"{what} {port!r} is not a named container port of {p['name']}")
        elif port not in p["numbers"]:
            err(where, f"{what} {port!r} is not a containerPort of {p['name']}")


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
    selected = []
    if "selector" not in spec:
        err(w, "spec.selector is required")
    elif check_selector(f"{w} spec.selector", spec["selector"]):
        nss = spec.get("namespaceSelector") or {}
        if nss.get("any"):
            allowed = None
        else:
            allowed = set(nss.get("matchNames") or [namespace(doc)])
        selected = selected_pods(pods, spec["selector"], allowed)
        if not selected:
            err(w, "selector matches no pod template (in the namespaces it watches)")
    eps = spec.get("podMetricsEndpoints")
    if not eps:
        err(w, "spec.podMetricsEndpoints is empty")
        return
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
        if "port" in ep:
            if not isinstance(ep["port"], str):
                err(we, f"port {ep['port']!r} must be a container port name (portNumber is the number)")
            else:
                check_port(we, "port", ep["port"], selected)
        for k in ("portNumber", "targetPort"):
            if k in ep:
                check_port(we, k, ep[k], selected)
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


def check_service(doc, pods):
    w = f"Service/{doc['metadata']['name']}"
    spec = doc.get("spec") or {}
    # a Service's selector is a plain label map; none (or empty) selects no pod at all
    selector = spec.get("selector") or {}
    selected = []
    if not selector:
        err(w, "no selector: it selects no pod")
    else:
        selected = selected_pods(pods, {"matchLabels": selector}, {namespace(doc)})
        if not selected:
            err(w, "selector matches no pod template (in its namespace)")
    for i, p in enumerate(spec.get("ports") or []):
        check_port(f"{w} ports[{i}]", "targetPort", p.get("targetPort", p.get("port")), selected)


def main(paths):
    docs = []
    for p in paths:
        with open(p) as f:
            docs += [(p, d) for d in yaml.safe_load_all(f) if d]
    pods = []
    for _, d in docs:
        if d.get("kind") in ("DaemonSet", "Deployment", "StatefulSet"):
            t = d["spec"]["template"]
            name = f"{d['kind']}/{d['metadata']['name']}"
            labels = (t.get("metadata") or {}).get("labels") or {}
            cports = [p for c in t["spec"]["containers"] for p in c.get("ports", [])]
            pods.append({
                "name": name,
                "namespace": namespace(d),
                "labels": labels,
                "ports": {p.get("name") for p in cports if p.get("name")},
                "numbers": {p.get("containerPort") for p in cports},
            })
            # the API server refuses a workload whose selector does not match its template
            sel = d["spec"].get("selector")
            if not sel or not (sel.get("matchLabels") or sel.get("matchExpressions")):
                err(name, "spec.selector is empty")
            elif not matches(sel, labels):
                err(name, "spec.selector does not match the pod template's labels")
    kinds = set()
    for path, d in docs:
        kind = d.get("kind")
        kinds.add(kind)
        if kind == "PodMonitor":
            check_podmonitor(d, pods)
        elif kind == "DaemonSet":
            check_daemonset(d)
        elif kind == "Service":
            check_service(d, pods)
    for kind in REQUIRED_KINDS:
        if kind not in kinds:
            err(", ".join(paths) or "(no files)", f"no {kind} found")
    for e in errors:
        print(f"ERROR {e}")
    print(f"checked {len(docs)} objects ({', '.join(sorted(k for k in kinds if k))}): {len(errors)} problems")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
