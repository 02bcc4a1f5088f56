#!/bin/sh
# Runs inside a kernel VM (xtask/src/vmtest.rs, through boot.sh): the `kernels` end-to-end
# tests against this kernel, on the host's binaries (the root is shared read-only).
#   guest-test.sh TEST_BIN SIGTRACE_BIN WORKSPACE FORCE_RAW(0|1) OUTDIR
# Exit status: the test binary's.
set -u
test_bin=$1 sigtrace=$2 workspace=$3 force_raw=$4 out=$5
echo "guest: kernel $(uname -r), $(nproc) CPU, $(awk '/MemTotal/ {print $2 " kB"}' /proc/meminfo)"
# The tests and doctor expect what a node has: bpffs is not needed; a writable /tmp is (an
# overlay over the host's, thrown away with the VM).
echo "guest: sigtrace doctor"
"$sigtrace" doctor 2>/dev/null | tee "$out/doctor.txt"
export SIGTRACE_BIN="$sigtrace" SIGTRACE_WORKSPACE="$workspace" SIGTRACE_NO_SKIP=1
if [ "$force_raw" = 1 ]; then
    export SIGTRACE_FORCE_RAW=1
    echo "guest: the scenarios with the raw tracepoint fallback forced"
fi
cd "$workspace" || exit 2
{ "$test_bin" --test-threads=1 --nocapture; echo $? >"$out/tests.rc"; } 2>&1 | tee "$out/tests.txt"
rc=$(head -n1 "$out/tests.rc" 2>/dev/null)
exit "${rc:-2}"
