//! `cgroup:cgroup_mkdir`: a cgroup was created. Emits the id and path of a cgroup v2 directory
//! (rare: one per container, pod, service), so that userspace knows a container's cgroup even
//! when it is gone before the first event of its processes is read.
use aya_ebpf::helpers::bpf_probe_read_kernel_str_bytes;
use tracer_common::{f, field, kind, CgroupMkdir};

use crate::{
    header,
    mem::{has, Mem},
    Args,
};

#[inline(always)]
fn on_mkdir<M: Mem, A: Args>(ctx: &A) {
    let (cgrp, path) = (ctx.ptr(0), ctx.arg(1));
    // The v2 hierarchy only (its id is 0): a v1 hierarchy's ids are another numbering.
    if !has(field::CGROUP_ROOT) || !has(field::CGROUP_ROOT_HIERARCHY_ID) || path == 0 {
        return;
    }
    let root = M::ld::<f::CGROUP_ROOT>(cgrp);
    if root.is_null() || M::ld::<f::CGROUP_ROOT_HIERARCHY_ID>(root) != 0 {
        return;
    }
    let Some(mut entry) = crate::reserve::<CgroupMkdir>() else {
        return;
    };
    let ev = crate::zeroed(&mut entry);
    ev.header = header(kind::CGROUP_MKDIR);
    ev.cgroup_id = M::ld::<f::KERNFS_NODE_ID>(M::ld::<f::CGROUP_KN>(cgrp));
    // SAFETY: a bounded string read of kernel memory into the reserved entry.
    let _ = unsafe { bpf_probe_read_kernel_str_bytes(path as *const u8, &mut ev.path) };
    crate::submit(entry);
}

probe!(
    "cgroup_mkdir",
    on_mkdir,
    cgroup_mkdir,
    raw_cgroup_mkdir,
    floor_cgroup_mkdir
);
