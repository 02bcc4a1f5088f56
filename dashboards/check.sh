#!/usr/bin/env bash
# Offline checks of the dashboard and alert rules; exits non-zero on any failure.
#  - promtool check rules + promtool test rules (installs Debian's prometheus if promtool is missing)
#  - sigtrace.json parses, is what gen_dashboard.py writes (with Grafana's builders, from the
#    virtualenv deploy/tools.sh sets up in target/pyenv), every panel target has an expr, and
#    every variable it uses is one of README.md's substitution rule.
# With PROM_URL set (a Prometheus scraping sigtrace), also runs every query through
# query_check.py (each must parse; REQUIRE_DATA, default 0, is the fraction that must return data).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"

if ! command -v promtool >/dev/null 2>&1; then
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        echo "ERROR: promtool is missing: sudo apt-get install prometheus (Debian), or put promtool on PATH" >&2
        exit 1
    fi
    echo "installing promtool (Debian package prometheus)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null
fi

promtool check rules alerts.yml
promtool test rules alerts_test.yml

# shellcheck source=../deploy/tools.sh
source "$here/../deploy/tools.sh"
tools_python

"$TOOLS_PY" - <<'PY'
import json, re, subprocess, sys, tempfile, os, shutil
d = json.load(open("sigtrace.json"))
problems = []
assert d.get("schemaVersion", 0) >= 38, "schemaVersion < 38"
names = {v["name"] for v in d["templating"]["list"]}
for need in ("datasource", "node", "namespace", "workload"):
    if need not in names:
        problems.append(f"template variable {need} missing")
allowed = {"__rate_interval", "__range", "__interval", "node", "namespace", "workload"}
n = 0
# a collapsed row holds its panels inside it: check those too
panels = [q for p in d["panels"] for q in [p] + p.get("panels", [])]
for p in panels:
    if p["type"] == "row":
        continue
    if p.get("datasource", {}).get("uid") != "${datasource}":
        problems.append(f"panel {p['title']!r}: datasource is not ${{datasource}}")
    if not p.get("targets"):
        problems.append(f"panel {p['title']!r}: no targets")
    for t in p.get("targets", []):
        n += 1
        e = t.get("expr", "")
        if not e.strip():
            problems.append(f"panel {p['title']!r} target {t.get('refId')}: no expr")
        for v in re.findall(r"\$\{?(\w+)\}?", e):
            if v not in allowed:
                problems.append(f"panel {p['title']!r}: variable ${v} not in the substitution rule")
        if "rate(" in e and "[$__rate_interval]" not in e and "[$__range]" not in e:
            problems.append(f"panel {p['title']!r}: rate without $__rate_interval")
if n == 0:
    problems.append("no panel targets at all")
# the committed JSON is what the generator writes
tmp = tempfile.mkdtemp()
try:
    shutil.copy("gen_dashboard.py", tmp)
    subprocess.run([sys.executable, os.path.join(tmp, "gen_dashboard.py")], check=True, stdout=subprocess.DEVNULL)
    if open(os.path.join(tmp, "sigtrace.json")).read() != open("sigtrace.json").read():
        problems.append("sigtrace.json differs from gen_dashboard.py's output: run target/pyenv/bin/python dashboards/gen_dashboard.py")
finally:
    shutil.rmtree(tmp)
for pr in problems:
    print("ERROR", pr)
print(f"sigtrace.json: {len(panels)} panels, {n} targets, {len(problems)} problems")
sys.exit(1 if problems else 0)
PY

if [ -n "${PROM_URL:-}" ]; then
    python3 query_check.py "$PROM_URL" --require-data "${REQUIRE_DATA:-0}"
fi
echo "check.sh: OK"
