#!/usr/bin/env bash
# Boot one kernel under QEMU TCG with virtme-ng and run a command in it.
#   xtask/vm/boot.sh VMLINUZ OUTDIR CMD|SCRIPT [ARG...]
# VMLINUZ: .../kernels/<rel>/boot/vmlinuz-<rel> from prepare.sh (vng loads the modules from
#   .../kernels/<rel>/lib/modules/<rel>: fuse, virtiofs, overlay).
# OUTDIR: created if missing, shared read-write (virtiofs) at the same path in the guest.
# CMD|SCRIPT: an existing file is run by its absolute path (it must be executable); anything
#   else is a shell command line. It runs as root with `ulimit -l unlimited`, on the host's
#   root filesystem shared read-only, cwd = the caller's cwd.
# Exit status: the guest command's; 255 if the guest died without one (panic); 124 on timeout.
# Env: VM_TIMEOUT (s, default 300), VM_MEM (1G), VM_CPUS (1), VMTEST_DIR (default: the
#   directory above kernels/), VNG (default $VMTEST_DIR/venv/bin/vng), VIRTIOFSD_LOG (default
#   OUTDIR.virtiofsd.log), VNG_EXTRA (more vng options, word-split), VM_VERBOSE=1 (boot console).
set -uo pipefail
if [ $# -lt 3 ]; then
    echo "usage: $0 VMLINUZ OUTDIR CMD|SCRIPT [ARG...]" >&2; exit 2
fi
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
vmlinuz=$(realpath -e "$1") || exit 2
mkdir -p "$2" && out=$(realpath "$2") || exit 2
shift 2
VMTEST_DIR=${VMTEST_DIR:-$(realpath "$(dirname "$vmlinuz")/../../..")}
VNG=${VNG:-$VMTEST_DIR/venv/bin/vng}
[ -x "$VNG" ] || { echo "boot.sh: no vng at $VNG (run xtask/vm/prepare.sh)" >&2; exit 2; }

if [ -f "$1" ]; then
    cmd=$(printf '%q' "$(realpath "$1")"); shift
    for a in "$@"; do cmd+=" $(printf '%q' "$a")"; done
else
    cmd="$*"
fi
# 5.10 defaults to a 64 KiB memlock limit (pre-5.11 BPF maps are charged to it).
guest="ulimit -l unlimited; $cmd"

# our `virtiofsd` shim first; vng runs virtme-run from PATH
export PATH="$here:$(dirname "$VNG"):$PATH"
# PATH=guest-bin on the kernel command line: virtme-ng-init's PATH, so that it finds our
# `udevd` stand-in (no udev on the host root: no /dev/virtio-ports links, no exit status).
export VIRTIOFSD_LOG=${VIRTIOFSD_LOG:-$out.virtiofsd.log}
verbose=(); [ "${VM_VERBOSE:-0}" = 1 ] && verbose=(-v)
# timeout (not --foreground) signals the whole process group: vng, qemu and the virtiofsd daemons.
# stdout/stderr go through pipes: QEMU opens /proc/self/fd/1 and /proc/self/fd/2 as "file"
# chardevs with O_TRUNC, which would wipe a log file that our caller redirected us into.
# shellcheck disable=SC2086
timeout -k 10 "${VM_TIMEOUT:-300}" \
    "$VNG" --disable-kvm -r "$vmlinuz" -p "${VM_CPUS:-1}" -m "${VM_MEM:-1G}" \
        --rwdir="$out" -a "PATH=$here/guest-bin:/usr/sbin:/usr/bin:/sbin:/bin" ${VNG_EXTRA:-} \
        "${verbose[@]}" --exec "$guest" </dev/null 2> >(cat >&2) | cat
rc=${PIPESTATUS[0]}
wait  # for the stderr cat
case $rc in
    124) echo "boot.sh: guest run killed after ${VM_TIMEOUT:-300} s (VM_TIMEOUT)" >&2 ;;
    255) echo "boot.sh: the guest gave no exit status (kernel panic or init failure: VM_VERBOSE=1 shows the console)" >&2 ;;
esac
exit "$rc"
