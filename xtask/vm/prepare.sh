#!/usr/bin/env bash
# Prepare the kernel VM test matrix (Debian 12 host, run as root).
#   xtask/vm/prepare.sh [VMTEST_DIR]      (default ./target/vmtest)
# - installs qemu-system-x86 (+ qemu-system-common: /usr/lib/qemu/virtiofsd), kmod,
#   busybox-static, python3-venv if missing (apt-get update only when something is missing);
# - creates VMTEST_DIR/venv with virtme-ng 1.42 (vng);
# - downloads (apt-get download, never installs) and extracts the Debian cloud kernels into
#   VMTEST_DIR/kernels/<kernel-release>/{boot,lib/modules}: newest 6.1.0-*-cloud-amd64 and
#   6.12.*+deb12-cloud-amd64 from the host's bookworm sources, newest 5.10.0-*-cloud-amd64 from
#   bullseye (+ bullseye-security) through a private apt state under VMTEST_DIR/apt-bullseye;
# - prints the vmlinuz path of each kernel on stdout, one per line (logs go to stderr).
# Cached kernels are reused without any network access; REFRESH=1 re-resolves the newest
# versions (and downloads them if they changed).
set -euo pipefail

VMT=${1:-./target/vmtest}
mkdir -p "$VMT"
VMT=$(cd "$VMT" && pwd)
KDIR=$VMT/kernels
mkdir -p "$KDIR"
REFRESH=${REFRESH:-0}
VNG_VERSION=1.42
export DEBIAN_FRONTEND=noninteractive

log() { echo "prepare: $*" >&2; }

# ---- 1. Debian packages -------------------------------------------------------------------
PKGS=(qemu-system-x86 qemu-system-common kmod busybox-static python3-venv)
missing=()
for p in "${PKGS[@]}"; do
    st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    [ "$st" = installed ] || missing+=("$p")
done
host_updated=0
if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    apt-get update -qq >&2
    host_updated=1
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi
[ -x /usr/lib/qemu/virtiofsd ] || { log "missing /usr/lib/qemu/virtiofsd (qemu-system-common)"; exit 1; }

# ---- 2. virtme-ng venv --------------------------------------------------------------------
VENV=$VMT/venv
if ! [ -x "$VENV/bin/vng" ] || [ "$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("virtme-ng"))' 2>/dev/null)" != "$VNG_VERSION" ]; then
    log "creating venv $VENV with virtme-ng $VNG_VERSION"
    /usr/bin/python3 -m venv "$VENV"   # not the pyenv python: the guest must find it too
    "$VENV/bin/pip" install -q "virtme-ng==$VNG_VERSION" >&2
fi

# ---- 3. kernels ---------------------------------------------------------------------------
# mirror hosts of the host's Debian sources (deb822 or one-line format)
uris=$( { cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null || true; } |
       sed -nE 's/^URIs:[[:space:]]*//p; s/^deb[[:space:]]+(\[[^]]*\][[:space:]]+)?([^[:space:]]+).*/\2/p' | tr ' ' '\n')
MIRROR=$(grep -E '/debian/?$' <<<"$uris" | head -n1 || true)
SECMIRROR=$(grep -E '/debian-security/?$' <<<"$uris" | head -n1 || true)
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SECMIRROR=${SECMIRROR:-${MIRROR%/debian*}/debian-security}

B11=$VMT/apt-bullseye
B11_OPTS=(-o Dir::Etc::sourcelist="$B11/sources.list" -o Dir::Etc::sourceparts=-
          -o Dir::State::lists="$B11/lists" -o Dir::Cache="$B11/cache"
          -o Acquire::Languages=none -o APT::Get::List-Cleanup=0)
b11_updated=0
b11_apt() {  # apt tool + private bullseye state
    local tool=$1; shift
    "$tool" "${B11_OPTS[@]}" "$@"
}
b11_update() {
    [ $b11_updated = 1 ] && return
    mkdir -p "$B11/lists/partial" "$B11/cache/archives/partial"
    cat >"$B11/sources.list" <<SRC
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $MIRROR bullseye main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $SECMIRROR bullseye-security main
SRC
    log "apt-get update (private bullseye state, $MIRROR)"
    b11_apt apt-get update -qq >&2
    b11_updated=1
}
host_update() {
    [ $host_updated = 1 ] && return
    log "apt-get update (host sources)"
    apt-get update -qq >&2
    host_updated=1
}

# newest package name matching an ERE, under the given apt state (host|bullseye)
resolve() {
    local state=$1 re=$2 names
    if [ "$state" = bullseye ]; then names=$(b11_apt apt-cache pkgnames linux-image-); else names=$(apt-cache pkgnames linux-image-); fi
    grep -E "^$re\$" <<<"$names" | sort -V | tail -n1
}

# cached kernel releases matching a glob, newest first (complete ones only)
cached() {
    local g=$1 d
    for d in "$KDIR"/$g; do if [ -f "$d/.complete" ]; then basename "$d"; fi; done | sort -rV
}

fetch_kernel() {  # state pkg
    local state=$1 pkg=$2 rel dest tmp deb
    rel=${pkg#linux-image-}
    dest=$KDIR/$rel
    if [ -f "$dest/.complete" ]; then echo "$rel"; return; fi
    tmp=$(mktemp -d "$KDIR/.dl.XXXXXX")
    log "downloading $pkg ($state)"
    if [ "$state" = bullseye ]; then (cd "$tmp" && b11_apt apt-get -o APT::Sandbox::User=root download -qq "$pkg" >&2)
    else (cd "$tmp" && apt-get -o APT::Sandbox::User=root download -qq "$pkg" >&2); fi
    deb=$(ls "$tmp"/*.deb)
    rm -rf "$dest"; mkdir -p "$dest"
    dpkg-deb -x "$deb" "$dest"
    # usr-merged packages put modules under usr/lib/modules; vng looks beside boot/ in lib/
    if [ ! -d "$dest/lib/modules/$rel" ] && [ -d "$dest/usr/lib/modules/$rel" ]; then
        ln -s usr/lib "$dest/lib"
    fi
    [ -f "$dest/boot/vmlinuz-$rel" ] || { log "no boot/vmlinuz-$rel in $deb"; exit 1; }
    [ -f "$dest/lib/modules/$rel/modules.dep" ] || depmod -b "$dest" "$rel"
    dpkg-deb -f "$deb" Package Version >"$dest/.complete"
    rm -rf "$tmp"
    echo "$rel"
}

# series: state | glob of the cached dir | ERE of the package name
SERIES=(
  "bullseye|5.10.0-*-cloud-amd64|linux-image-5\.10\.0-[0-9]+-cloud-amd64"
  "host|6.1.0-*-cloud-amd64|linux-image-6\.1\.0-[0-9]+-cloud-amd64"
  "host|6.12.*+deb12-cloud-amd64|linux-image-6\.12\.[0-9]+\+deb12-cloud-amd64"
)
for s in "${SERIES[@]}"; do
    IFS='|' read -r state glob re <<<"$s"
    rel=$(cached "$glob" | head -n1)
    if [ -z "$rel" ] || [ "$REFRESH" = 1 ]; then
        if [ "$state" = bullseye ]; then b11_update; else host_update; fi
        pkg=$(resolve "$state" "$re")
        [ -n "$pkg" ] || { log "no package matches $re ($state)"; exit 1; }
        rel=$(fetch_kernel "$state" "$pkg")
    fi
    echo "$KDIR/$rel/boot/vmlinuz-$rel"
done
