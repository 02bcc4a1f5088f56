//! `signal:signal_generate`: a signal was sent. Emits who sent which signal to whom, what the
//! kernel did with it and the target's dispositions, for the signals that can affect a
//! shutdown; counts the others per signal. Watches the target, so that its exit is emitted.
use tracer_common::{disp, f, kind, kstruct::task_struct, stat, Ptr, SignalGenerate, DISP_SIGNALS};

use crate::{
    bump, header,
    mem::Mem,
    task::{
        bit, count_only, current_is_runtime, disposition, fill_current, fill_task, is_agent,
        si_code,
    },
    watch, Args,
};

const SIGCHLD: i32 = 17;

/// Whether the generation of `sig` to `target` is emitted; otherwise it is counted. Emitted:
/// a stop signal; any signal a container runtime sends (some container's stop signal, whatever
/// its number; SIGCHLD excepted: a runtime process that exits sends it to its parent); any
/// other signal of the emit mask that meets the default action (it may end the process). A
/// signal that meets a handler or SIG_IGN and is none of those cannot affect a shutdown.
#[inline(always)]
fn generate_emitted<M: Mem>(sig: i32, target: Ptr<task_struct>) -> bool {
    if !(1..=64).contains(&sig) {
        return false;
    }
    let in_mask = config!(signal_mask) & bit(sig) != 0;
    if in_mask && config!(stop_mask) & bit(sig) != 0 {
        return true;
    }
    let runtime = sig != SIGCHLD && current_is_runtime::<M>();
    let emit = runtime
        || (in_mask && {
            let d = disposition::<M>(M::ld::<f::TASK_SIGHAND>(target), sig);
            d != disp::HANDLER && d != disp::IGNORE
        });
    if !emit {
        count_only(sig);
    }
    emit
}

#[inline(always)]
fn on_generate<M: Mem, A: Args>(ctx: &A) {
    let (sig, info, task) = (ctx.arg(0) as i32, ctx.ptr(1), ctx.ptr(2));
    let (group, result) = (ctx.arg(3) as i32, ctx.arg(4) as i32);
    if !generate_emitted::<M>(sig, task) || is_agent() {
        return;
    }
    // Signals to the agent itself (its own stop) are not traced either.
    let agent = config!(agent_tgid);
    let target_tgid = M::ld::<f::TASK_TGID>(task);
    if agent != 0 && target_tgid == agent {
        bump(stat::SELF_FILTERED);
        return;
    }
    watch(target_tgid);
    let Some(mut entry) = crate::reserve::<SignalGenerate>() else {
        return;
    };
    // SAFETY: the entry is exclusively ours until submit. Every field is written below (no
    // zeroing first: it costs as much as the fields).
    let ev = unsafe { &mut *entry.as_mut_ptr() };
    ev.header = header(kind::SIGNAL_GENERATE);
    ev.sig = sig;
    ev.code = si_code(info);
    ev.group = group;
    ev.result = result;
    fill_current::<M>(&mut ev.sender);
    fill_task::<M>(task, &mut ev.target);

    // In DISP_SIGNALS order, each with a constant signal number so that the loads are too.
    let sighand = M::ld::<f::TASK_SIGHAND>(task);
    ev.disp = [
        disposition::<M>(sighand, sig),
        disposition::<M>(sighand, DISP_SIGNALS[1]),
        disposition::<M>(sighand, DISP_SIGNALS[2]),
        disposition::<M>(sighand, DISP_SIGNALS[3]),
        disposition::<M>(sighand, DISP_SIGNALS[4]),
        0,
        0,
        0,
    ];
    ev.target_blocked = M::ld::<f::TASK_BLOCKED>(task);
    crate::submit(entry);
}

probe!(
    "signal_generate",
    on_generate,
    signal_generate,
    raw_signal_generate,
    floor_signal_generate
);
