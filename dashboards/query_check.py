#!/usr/bin/env python3
"""Evaluates every query of dashboards/sigtrace.json (targets and template variables) against
a running Prometheus, after the substitution rule of dashboards/README.md:

    $__rate_interval -> 1m, $__interval -> 1m, $__range -> 1h,
    $node / ${node} / $namespace / ${namespace} / $workload / ${workload} -> .*, $datasource ignored,
    label_values(METRIC, LABEL) (a Grafana variable query) -> evaluated as `group by (LABEL) (METRIC)`.

usage: query_check.py http://127.0.0.1:9090 [--require-data FRACTION]
Prints one line per query (ok/empty/ERROR) and exits 1 on any error, or when fewer than
FRACTION of the target queries returned data (default 0: only errors fail).
"""
import json
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request

SUBST = [
    ("$__rate_interval", "1m"),
    ("${__rate_interval}", "1m"),
    ("$__interval", "1m"),
    ("${__interval}", "1m"),
    ("$__range", "1h"),
    ("${__range}", "1h"),
    ("${node}", ".*"),
    ("$node", ".*"),
    ("${namespace}", ".*"),
    ("$namespace", ".*"),
    ("${workload}", ".*"),
    ("$workload", ".*"),
]


def substitute(expr):
    for k, v in SUBST:
        expr = expr.replace(k, v)
    m = re.fullmatch(r"\s*label_values\(\s*(.+?)\s*,\s*(\w+)\s*\)\s*", expr)
    if m:
        expr = f"group by ({m.group(2)}) ({m.group(1)})"
    return expr


def query(base, expr):
    url = base.rstrip("/") + "/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            body = json.load(r)
    except urllib.error.HTTPError as e:
        body = json.load(e)
    return body


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    base = sys.argv[1]
    need = 0.0
    if "--require-data" in sys.argv:
        need = float(sys.argv[sys.argv.index("--require-data") + 1])
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sigtrace.json")
    dash = json.load(open(path))
    exprs = []
    for v in dash["templating"]["list"]:
        if v.get("type") == "query":
            q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
            exprs.append((f"variable {v['name']}", q, False))
    for p in dash["panels"]:
        for t in p.get("targets", []):
            exprs.append((f"{p['title']} [{t['refId']}]", t["expr"], True))
    errors = 0
    with_data = 0
    targets = 0
    for name, expr, is_target in exprs:
        e = substitute(expr)
        if "$" in e:
            print(f"ERROR {name}: unsubstituted variable in {e}")
            errors += 1
            continue
        body = query(base, e)
        if body.get("status") != "success":
            print(f"ERROR {name}: {body.get('errorType')}: {body.get('error')}\n      {e}")
            errors += 1
            continue
        n = len(body["data"]["result"]) if isinstance(body["data"]["result"], list) else 1
        targets += is_target
        if n:
            with_data += is_target
        print(f"{'ok   ' if n else 'empty'} {name}: {n} series")
    frac = with_data / targets if targets else 0
    print(f"{len(exprs)} queries, {errors} errors, {with_data}/{targets} panel queries returned data")
    if errors or frac < need:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
