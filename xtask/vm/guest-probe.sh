#!/bin/bash
# Guest-side probe for xtask/vm/boot.sh: prints kernel/cgroup/BTF/unshare facts, writes
# OUT/guest.log and OUT/written, exits 3 (to check that the status comes back).
# usage: xtask/vm/boot.sh VMLINUZ OUT xtask/vm/guest-probe.sh OUT
OUT=$1
exec > >(tee "$OUT/guest.log") 2>&1
echo "== uname -r: $(uname -r)  guest uptime at script start: $(cut -d" " -f1 /proc/uptime) s"
echo "== nproc: $(nproc)  mem: $(grep MemTotal /proc/meminfo)"
echo "== id: $(id -u)  cwd: $(pwd)  shell: $0 PATH=$PATH"
echo "== ulimit -l: $(ulimit -l)"
echo "== btf:"; ls -l /sys/kernel/btf/vmlinux
echo "== /proc/self/cgroup:"; cat /proc/self/cgroup
echo "== mounts:"; mount | grep -E 'cgroup|tmp|proc|trace|debug|bpf| / '
echo "== cgroup:"
mkdir /sys/fs/cgroup/t1 && echo +memory > /sys/fs/cgroup/cgroup.subtree_control; echo "mkdir+subtree rc=$?"
cat /sys/fs/cgroup/cgroup.controllers; echo "subtree: $(cat /sys/fs/cgroup/cgroup.subtree_control)"
ls /sys/fs/cgroup/t1 | grep -E 'memory\.(max|events)$'
echo "== OOM in cgroup:"
if [ -e /sys/fs/cgroup/t1/memory.max ]; then
  echo 64M > /sys/fs/cgroup/t1/memory.max; echo 0 > /sys/fs/cgroup/t1/memory.swap.max 2>/dev/null
  sh -c 'echo $$ > /sys/fs/cgroup/t1/cgroup.procs; exec /usr/bin/python3 -c "b=bytearray(200*1024*1024); print(len(b))"'; echo "oom child rc=$?"
  grep oom /sys/fs/cgroup/t1/memory.events
fi
echo "== /tmp writable:"; touch /tmp/x && echo yes-tmp; df -h /tmp | tail -1
echo "== unshare:"; unshare -p -f --mount-proc true; echo "unshare rc=$?"
echo "== write out:"; echo hi > "$OUT/written" && echo yes-out
echo "== host binaries:"; /usr/bin/python3 -c 'import sys; print(sys.version.split()[0])'; which bpftool python3
echo "== bpf fs / tracefs:"; ls /sys/kernel/tracing | head -3; ls /sys/fs/bpf 2>&1 | head -2
echo "== lsmod:"; lsmod 2>/dev/null | awk 'NR>1{print $1}' | tr '\n' ' '; echo
echo "== /dev/kvm? $(ls /dev/kvm 2>&1)"
exit 3
