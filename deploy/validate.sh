#!/usr/bin/env bash
# Validates sigtrace's Kubernetes manifests offline; exits non-zero on any failure.
#  1. every base manifest against the Kubernetes schemas (kubernetes-validate --strict, for
#     each version in K8S_VERSIONS; PodMonitor is a CRD without a schema there: it is checked
#     by check_manifests.py instead);
#  2. sigtrace's own rules on them (check_manifests.py);
#  3. if `kustomize` or `kubectl` is installed: renders base and every overlay and runs 1+2 on
#     the rendering (skipped with a notice otherwise: neither is packaged in Debian 12).
# Installs kubernetes-validate with pip when it is missing.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
K8S_VERSIONS="${K8S_VERSIONS:-1.30.0 1.37.0}"
base="$here/kustomize/base"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
fail=0

if ! command -v kubernetes-validate >/dev/null 2>&1; then
    echo "installing kubernetes-validate (pip)"
    python3 -m pip install --quiet kubernetes-validate
fi
python3 -c 'import yaml' 2>/dev/null || python3 -m pip install --quiet pyyaml

# kubernetes-validate exits 0 on a kind it has no schema for (a WARN); only PodMonitor may be one.
schema_check() { # FILE...
    local v out rc
    for v in $K8S_VERSIONS; do
        rc=0
        out="$(kubernetes-validate --strict -k "$v" "$@" 2>&1)" || rc=$?
        printf '%s\n' "$out" | sed 's/^/  /'
        if [ "$rc" -ne 0 ]; then
            echo "FAIL: kubernetes-validate -k $v"; fail=1
        fi
        if printf '%s\n' "$out" | grep "Couldn't find schema" | grep -v "kind PodMonitor" >/dev/null; then
            echo "FAIL: a kind without schema other than PodMonitor"; fail=1
        fi
    done
}

# base resources: the files listed under resources: in base/kustomization.yaml
mapfile -t files < <(python3 - "$base/kustomization.yaml" <<'PY'
import sys, yaml, os
k = yaml.safe_load(open(sys.argv[1]))
for r in k["resources"]:
    print(os.path.join(os.path.dirname(sys.argv[1]), r))
PY
)
echo "== base manifests (${#files[@]} files)"
schema_check "${files[@]}"
python3 "$here/check_manifests.py" "${files[@]}" || fail=1

render=""
if command -v kustomize >/dev/null 2>&1; then
    render="kustomize build"
elif command -v kubectl >/dev/null 2>&1 && kubectl kustomize --help >/dev/null 2>&1; then
    render="kubectl kustomize"
fi
if [ -n "$render" ]; then
    for dir in "$base" "$here"/kustomize/overlays/*/; do
        dir="${dir%/}"
        name="$(basename "$dir")"
        echo "== rendered with $render: ${dir#$here/}"
        if ! $render "$dir" >"$tmp/$name.yaml"; then
            echo "FAIL: $render $dir"; fail=1; continue
        fi
        schema_check "$tmp/$name.yaml"
        python3 "$here/check_manifests.py" "$tmp/$name.yaml" || fail=1
    done
else
    echo "SKIP: neither kustomize nor kubectl found; overlays not rendered (base files were validated one by one)"
fi

if [ "$fail" -ne 0 ]; then
    echo "validate.sh: FAILED"
    exit 1
fi
echo "validate.sh: all manifests valid"
