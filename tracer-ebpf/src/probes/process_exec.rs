//! `sched:sched_process_exec`: a task exec'd. Emits only a container runtime's exec into a
//! container (an exec hook, a probe, `kubectl exec`, a container's init) with the executable's
//! path, never argv nor the environment; counts every other exec.
use aya_ebpf::helpers::{bpf_get_current_pid_tgid, bpf_probe_read_kernel_str_bytes};
use tracer_common::{f, field, kind, stat, ProcessExec};

use crate::{
    bump, header,
    mem::{has, Mem},
    task::{cgroup_id, fill_current, is_agent},
    watch, Args,
};

/// An exec is emitted only when a container runtime put the process into a container (an
/// exec hook, an exec probe, `kubectl exec`, or the container's own init): its cgroup differs
/// from its real parent's, and it is not in the initial PID namespace. Every other exec is
/// only counted. Never argv nor the environment: the comm and the executable's path.
#[inline(always)]
fn on_exec<M: Mem, A: Args>(ctx: &A) {
    let (task, bprm) = (ctx.ptr(0), ctx.ptr(2));
    // Cheapest test first, on the two task structs only (hot: the parent just forked it): a
    // task and its parent nearly always share one css_set. Then the v2 cgroups and the PID
    // namespace level. No helper call and no cgroup id read on the counted path.
    let parent = M::ld::<f::TASK_REAL_PARENT>(task);
    let css_set = M::ld::<f::TASK_CGROUPS>(task);
    let parent_css_set = M::ld::<f::TASK_CGROUPS>(parent);
    if css_set == parent_css_set
        || M::ld::<f::CSS_SET_DFL_CGRP>(css_set) == M::ld::<f::CSS_SET_DFL_CGRP>(parent_css_set)
    {
        bump(stat::EXECS_COUNTED);
        return;
    }
    let pid = M::ld::<f::TASK_THREAD_PID>(task);
    let nested = !pid.is_null() && has(field::PID_LEVEL) && M::ld::<f::PID_LEVEL>(pid) != 0;
    if !nested || is_agent() {
        bump(stat::EXECS_COUNTED);
        return;
    }
    let parent_cgroup = cgroup_id::<M>(parent);
    watch((bpf_get_current_pid_tgid() >> 32) as u32);
    let Some(mut entry) = crate::reserve::<ProcessExec>() else {
        return;
    };
    let ev = crate::zeroed(&mut entry);
    ev.header = header(kind::PROCESS_EXEC);
    fill_current::<M>(&mut ev.task);
    ev.parent_cgroup_id = parent_cgroup;
    let filename = M::ld::<f::BPRM_FILENAME>(bprm);
    if filename != 0 {
        // SAFETY: a bounded string read of kernel memory into the reserved entry.
        let _ = unsafe { bpf_probe_read_kernel_str_bytes(filename as *const u8, &mut ev.path) };
    }
    crate::submit(entry);
}

probe!(
    "sched_process_exec",
    on_exec,
    sched_process_exec,
    raw_sched_process_exec,
    floor_sched_process_exec
);
