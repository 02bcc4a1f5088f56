//! `sched:sched_process_exit`: a task exits. Emits the exit of the last thread of a watched
//! group, of a direct child of one, or of a process a signal killed; counts every other.
use tracer_common::{f, field, kind, stat, ProcessExit};

use crate::{
    bump, header,
    mem::{has, Mem},
    task::{fill_task, is_agent},
    unwatch, watched, Args,
};

/// The exit of a watched thread group, of a direct child of one (a stopping process's
/// children belong to its record), or of a process a signal killed is emitted; every other
/// exit is only counted, with no record: nothing asked about that process. (A fatal signal's
/// generation is traced after the kernel has already woken the target: on a busy or
/// virtualised CPU the target can die before the sender's program has watched it.)
#[inline(always)]
fn on_exit<M: Mem, A: Args>(ctx: &A) {
    let task = ctx.ptr(0);
    let tgid = M::ld::<f::TASK_TGID>(task);
    let is_watched = watched(tgid);
    let killed = M::ld::<f::TASK_EXIT_CODE>(task) & 0x7f != 0;
    if !is_watched && !killed {
        let parent = M::ld::<f::TASK_REAL_PARENT>(task);
        if !watched(M::ld::<f::TASK_TGID>(parent)) {
            bump(stat::EXITS_COUNTED);
            return;
        }
    }
    if is_agent() {
        return;
    }
    let group_dead = if config!(exit_has_group_dead) != 0 {
        // Read only where the kernel has the argument (the verifier prunes the other arm:
        // CONFIG is read-only).
        (ctx.arg(1) & 0xff) != 0
    } else {
        // Older kernels: `signal->live` already reached zero for the group's last thread.
        let signal = M::ld::<f::TASK_SIGNAL>(task);
        !signal.is_null() && has(field::SIGNAL_LIVE) && M::ld::<f::SIGNAL_LIVE>(signal) == 0
    };
    if !group_dead {
        bump(stat::THREAD_EXITS_FOLDED);
        return;
    }
    if group_dead && is_watched {
        unwatch(tgid);
    }
    let Some(mut entry) = crate::reserve::<ProcessExit>() else {
        return;
    };
    // SAFETY: as in `on_generate`: every field is written below.
    let ev = unsafe { &mut *entry.as_mut_ptr() };
    ev.header = header(kind::PROCESS_EXIT);
    fill_task::<M>(task, &mut ev.task);
    ev.exit_code = M::ld::<f::TASK_EXIT_CODE>(task) as i32;
    ev.group_dead = group_dead as u32;
    crate::submit(entry);
}

probe!(
    "sched_process_exit",
    on_exit,
    sched_process_exit,
    raw_sched_process_exit,
    floor_sched_process_exit
);
