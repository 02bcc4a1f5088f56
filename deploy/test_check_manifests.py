#!/usr/bin/env python3
"""Checks that check_manifests.py can fail: each case breaks one thing in a copy of the base
manifests and expects that problem reported (exit 1 and the message); the unbroken copy must
pass. Run by validate.sh (needs PyYAML).

usage: test_check_manifests.py
"""
import copy
import os
import subprocess
import sys
import tempfile

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
BASE = os.path.join(HERE, "kustomize", "base")
CHECK = os.path.join(HERE, "check_manifests.py")


def load_base():
    with open(os.path.join(BASE, "kustomization.yaml")) as f:
        resources = yaml.safe_load(f)["resources"]
    docs = []
    for r in resources:
        with open(os.path.join(BASE, r)) as f:
            docs += [d for d in yaml.safe_load_all(f) if d]
    return docs


def kind(docs, k):
    return next(d for d in docs if d["kind"] == k)


def container(docs):
    return kind(docs, "DaemonSet")["spec"]["template"]["spec"]["containers"][0]


def svc_selector_typo(docs):
    s = kind(docs, "Service")["spec"]
    s["selector"] = {"app.kubernetes.io/name": "sigtrac"}
    s["ports"][0]["targetPort"] = "nope"


def svc_target_port(value):
    def f(docs):
        kind(docs, "Service")["spec"]["ports"][0]["targetPort"] = value
    return f


def svc_no_selector(docs):
    del kind(docs, "Service")["spec"]["selector"]


def svc_other_namespace(docs):
    kind(docs, "Service")["metadata"]["namespace"] = "elsewhere"


def pm_selector_typo(docs):
    kind(docs, "PodMonitor")["spec"]["selector"]["matchLabels"] = {"app.kubernetes.io/name": "sigtrac"}


def pm_selector_field_typo(docs):
    s = kind(docs, "PodMonitor")["spec"]
    s["selector"] = {"matchLabel": s["selector"]["matchLabels"]}


def pm_expression(op, values):
    def f(docs):
        kind(docs, "PodMonitor")["spec"]["selector"] = {
            "matchExpressions": [{"key": "app.kubernetes.io/name", "operator": op, "values": values}]}
    return f


def pm_port(docs):
    kind(docs, "PodMonitor")["spec"]["podMetricsEndpoints"][0]["port"] = "nope"


def pm_other_namespace(docs):
    kind(docs, "PodMonitor")["metadata"]["namespace"] = "monitoring"


def ds_selector_mismatch(docs):
    kind(docs, "DaemonSet")["spec"]["selector"]["matchLabels"] = {"app.kubernetes.io/name": "other"}


def ds_port_renamed(docs):
    container(docs)["ports"][0]["name"] = "metric"


def ds_privileged(docs):
    container(docs)["securityContext"]["privileged"] = True


def drop(k):
    def f(docs):
        docs[:] = [d for d in docs if d["kind"] != k]
    return f


def nothing(docs):
    docs.clear()


def unchanged(docs):
    pass


# (name, how to break the manifests, the message expected; None: must pass)
CASES = [
    ("base unchanged", unchanged, None),
    ("PodMonitor selecting by matchExpressions In", pm_expression("In", ["sigtrace", "x"]), None),
    ("Service selector typo + targetPort nope", svc_selector_typo,
     "targetPort 'nope' cannot be resolved: the selector matches no pod template"),
    ("Service selector typo (no pod)", svc_selector_typo, "Service/sigtrace: selector matches no pod template"),
    ("Service named targetPort not a container port", svc_target_port("nope"),
     "targetPort 'nope' is not a named container port of DaemonSet/sigtrace"),
    ("Service numeric targetPort not a containerPort", svc_target_port(9478),
     "targetPort 9478 is not a containerPort of DaemonSet/sigtrace"),
    ("Service without selector", svc_no_selector, "Service/sigtrace: no selector"),
    ("Service in another namespace", svc_other_namespace, "selector matches no pod template (in its namespace)"),
    ("PodMonitor selector typo", pm_selector_typo, "PodMonitor/sigtrace: selector matches no pod template"),
    ("PodMonitor selector typo: port unresolved", pm_selector_typo,
     "port 'metrics' cannot be resolved: the selector matches no pod template"),
    ("PodMonitor unknown selector field", pm_selector_field_typo, "unknown selector field 'matchLabel'"),
    ("PodMonitor matchExpressions NotIn excluding the agent", pm_expression("NotIn", ["sigtrace"]),
     "selector matches no pod template"),
    ("PodMonitor matchExpressions unknown operator", pm_expression("Within", ["sigtrace"]), "unknown operator 'Within'"),
    ("PodMonitor port not a container port", pm_port, "port 'nope' is not a named container port"),
    ("PodMonitor in another namespace", pm_other_namespace, "selector matches no pod template (in the namespaces"),
    ("DaemonSet selector does not match its template", ds_selector_mismatch,
     "spec.selector does not match the pod template's labels"),
    ("container port renamed (Service, PodMonitor, probes)", ds_port_renamed, "targetPort 'metrics' is not a named"),
    ("DaemonSet privileged", ds_privileged, "must not be privileged"),
    ("no PodMonitor", drop("PodMonitor"), "no PodMonitor found"),
    ("no DaemonSet", drop("DaemonSet"), "no DaemonSet found"),
    ("no objects at all", nothing, "no Service found"),
]


def main():
    base = load_base()
    passed = failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name, breaker, expect in CASES:
            docs = copy.deepcopy(base)
            breaker(docs)
            path = os.path.join(tmp, "manifests.yaml")
            with open(path, "w") as f:
                yaml.safe_dump_all(docs, f)
            r = subprocess.run([sys.executable, CHECK, path], capture_output=True, text=True)
            out = r.stdout + r.stderr
            if expect is None:
                ok = r.returncode == 0
                want = "exit 0"
            else:
                ok = r.returncode == 1 and expect in out
                want = f"exit 1 and {expect!r}"
            if ok:
                passed += 1
                print(f"ok    {name}")
            else:
                failed += 1
                print(f"FAIL  {name}: expected {want}, got exit {r.returncode}:")
                print("      " + out.strip().replace("\n", "\n      "))
    print(f"check_manifests: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
