//! `signal:signal_deliver`: a thread took a signal off its queue. Emits the delivery of a stop
//! signal, or of a signal of the emit mask that meets the default action, with the action
//! the receiver had installed; counts the others.
use tracer_common::{f, kind, kstruct::k_sigaction, Ptr, SignalDeliver};

use crate::{
    header,
    mem::Mem,
    task::{bit, count_only, fill_current, is_agent, si_code},
    watch, Args,
};

/// Whether the delivery of `sig` (to `ka`) is emitted: a stop signal, or a signal of the emit
/// mask that meets the default action; otherwise it is counted.
#[inline(always)]
fn deliver_emitted<M: Mem>(sig: i32, ka: Ptr<k_sigaction>) -> bool {
    if !(1..=64).contains(&sig) {
        return false;
    }
    let emit = config!(signal_mask) & bit(sig) != 0
        && (config!(stop_mask) & bit(sig) != 0 || M::ld::<f::KA_HANDLER>(ka) == 0);
    if !emit {
        count_only(sig);
    }
    emit
}

#[inline(always)]
fn on_deliver<M: Mem, A: Args>(ctx: &A) {
    let (sig, info, ka) = (ctx.arg(0) as i32, ctx.ptr(1), ctx.ptr(2));
    if !deliver_emitted::<M>(sig, ka) || is_agent() {
        return;
    }
    let Some(mut entry) = crate::reserve::<SignalDeliver>() else {
        return;
    };
    // SAFETY: as in `on_generate`: every field is written below.
    let ev = unsafe { &mut *entry.as_mut_ptr() };
    ev.header = header(kind::SIGNAL_DELIVER);
    ev.sig = sig;
    ev.code = si_code(info);
    let task = fill_current::<M>(&mut ev.receiver);
    // The generation may have come before the trace started.
    watch(ev.receiver.tgid);
    ev.sa_handler = M::ld::<f::KA_HANDLER>(ka);
    ev.sa_flags = M::ld::<f::KA_FLAGS>(ka);
    let signal = M::ld::<f::TASK_SIGNAL>(task);
    ev.group_exit_code = M::ld::<f::SIGNAL_GROUP_EXIT_CODE>(signal) as i32;
    ev._pad = 0;
    crate::submit(entry);
}

probe!(
    "signal_deliver",
    on_deliver,
    signal_deliver,
    raw_signal_deliver,
    floor_signal_deliver
);
