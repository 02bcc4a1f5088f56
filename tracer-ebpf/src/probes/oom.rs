//! `oom:mark_victim`: the OOM killer chose a victim. Emits it (with who invoked the killer)
//! and watches it, so that its exit is emitted.
use aya_ebpf::helpers::bpf_get_current_pid_tgid;
use tracer_common::{f, kind, OomVictim};

use crate::{header, mem::Mem, task::fill_task, watch, Args};

#[inline(always)]
fn on_oom<M: Mem, A: Args>(ctx: &A) {
    let task = ctx.ptr(0);
    watch(M::ld::<f::TASK_TGID>(task));
    let Some(mut entry) = crate::reserve::<OomVictim>() else {
        return;
    };
    let ev = crate::zeroed(&mut entry);
    ev.header = header(kind::OOM_VICTIM);
    fill_task::<M>(task, &mut ev.victim);
    ev.invoker_tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    crate::submit(entry);
}

probe!(
    "mark_victim",
    on_oom,
    mark_victim,
    raw_mark_victim,
    floor_mark_victim
);
