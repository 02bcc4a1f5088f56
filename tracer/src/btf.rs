//! A small reader of the kernel's BTF (`/sys/kernel/btf/vmlinux`): just enough to find the
//! byte offsets of the struct fields the kernel programs read, the sizes of a few structs, and
//! the arity of tracepoint prototypes. This is what makes the programs portable across kernel
//! versions without CO-RE relocations.
use std::{collections::HashMap, path::Path};

use thiserror::Error;
use tracer_common::Offsets;

/// Default location of the running kernel's BTF.
pub const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";

#[derive(Debug, Error)]
pub enum BtfError {
    #[error("cannot read BTF from {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("malformed BTF: {0}")]
    Malformed(String),
    #[error("BTF has no struct `{0}`")]
    NoStruct(String),
    #[error("BTF struct `{strukt}` has no member `{member}`")]
    NoMember { strukt: String, member: String },
    #[error("BTF member `{0}` is a bitfield, not byte-addressable")]
    Bitfield(String),
}

const KIND_INT: u32 = 1;
const KIND_PTR: u32 = 2;
const KIND_ARRAY: u32 = 3;
const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
const KIND_ENUM: u32 = 6;
const KIND_FWD: u32 = 7;
const KIND_TYPEDEF: u32 = 8;
const KIND_VOLATILE: u32 = 9;
const KIND_CONST: u32 = 10;
const KIND_RESTRICT: u32 = 11;
const KIND_FUNC: u32 = 12;
const KIND_FUNC_PROTO: u32 = 13;
const KIND_VAR: u32 = 14;
const KIND_DATASEC: u32 = 15;
const KIND_FLOAT: u32 = 16;
const KIND_DECL_TAG: u32 = 17;
const KIND_TYPE_TAG: u32 = 18;
const KIND_ENUM64: u32 = 19;

#[derive(Debug, Clone)]
struct Member {
    name: u32,
    ty: u32,
    bit_offset: u32,
    bitfield_size: u32,
}

#[derive(Debug, Clone)]
struct Type {
    name: u32,
    kind: u32,
    /// size for int/struct/union/enum, referenced type for ptr/typedef/modifiers/func.
    size_or_type: u32,
    members: Vec<Member>,
    /// element type and count for arrays.
    array: Option<(u32, u32)>,
    /// number of parameters for func protos.
    params: usize,
}

/// Parsed BTF type graph with a name index of structs and typedefs.
pub struct Btf {
    types: Vec<Type>,
    strings: Vec<u8>,
    structs: HashMap<String, u32>,
    typedefs: HashMap<String, u32>,
}

fn u32_at(b: &[u8], off: usize) -> Result<u32, BtfError> {
    b.get(off..off + 4)
        .map(|s| u32::from_ne_bytes([s[0], s[1], s[2], s[3]]))
        .ok_or_else(|| BtfError::Malformed(format!("truncated at byte {off}")))
}

impl Btf {
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, BtfError> {
        let path = path.as_ref();
        let data = std::fs::read(path).map_err(|source| BtfError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&data)
    }

    pub fn parse(data: &[u8]) -> Result<Self, BtfError> {
        if data.len() < 24 || u16::from_ne_bytes([data[0], data[1]]) != 0xeb9f {
            return Err(BtfError::Malformed("bad magic (expected 0xeb9f)".into()));
        }
        let hdr_len = u32_at(data, 4)? as usize;
        let type_off = u32_at(data, 8)? as usize;
        let type_len = u32_at(data, 12)? as usize;
        let str_off = u32_at(data, 16)? as usize;
        let str_len = u32_at(data, 20)? as usize;
        let tsec = data
            .get(hdr_len + type_off..hdr_len + type_off + type_len)
            .ok_or_else(|| BtfError::Malformed("type section out of bounds".into()))?;
        let strings = data
            .get(hdr_len + str_off..hdr_len + str_off + str_len)
            .ok_or_else(|| BtfError::Malformed("string section out of bounds".into()))?
            .to_vec();

        // Type id 0 is `void`.
        let mut types = vec![Type {
            name: 0,
            kind: 0,
            size_or_type: 0,
            members: Vec::new(),
            array: None,
            params: 0,
        }];
        let mut p = 0usize;
        while p < tsec.len() {
            let name = u32_at(tsec, p)?;
            let info = u32_at(tsec, p + 4)?;
            let size_or_type = u32_at(tsec, p + 8)?;
            p += 12;
            let vlen = (info & 0xffff) as usize;
            let kind = (info >> 24) & 0x1f;
            let kind_flag = info >> 31 == 1;
            let mut t = Type {
                name,
                kind,
                size_or_type,
                members: Vec::new(),
                array: None,
                params: 0,
            };
            match kind {
                KIND_INT | KIND_VAR | KIND_DECL_TAG => p += 4,
                KIND_PTR | KIND_FWD | KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT
                | KIND_FUNC | KIND_FLOAT | KIND_TYPE_TAG => {}
                KIND_ARRAY => {
                    t.array = Some((u32_at(tsec, p)?, u32_at(tsec, p + 8)?));
                    p += 12;
                }
                KIND_STRUCT | KIND_UNION => {
                    for i in 0..vlen {
                        let m = p + i * 12;
                        let off = u32_at(tsec, m + 8)?;
                        let (bit_offset, bitfield_size) = if kind_flag {
                            (off & 0xff_ffff, off >> 24)
                        } else {
                            (off, 0)
                        };
                        t.members.push(Member {
                            name: u32_at(tsec, m)?,
                            ty: u32_at(tsec, m + 4)?,
                            bit_offset,
                            bitfield_size,
                        });
                    }
                    p += vlen * 12;
                }
                KIND_ENUM => p += vlen * 8,
                KIND_FUNC_PROTO => {
                    t.params = vlen;
                    p += vlen * 8;
                }
                KIND_DATASEC | KIND_ENUM64 => p += vlen * 12,
                other => {
                    return Err(BtfError::Malformed(format!(
                        "unknown BTF kind {other} at type {}",
                        types.len()
                    )))
                }
            }
            types.push(t);
        }
        let mut btf = Self {
            types,
            strings,
            structs: HashMap::new(),
            typedefs: HashMap::new(),
        };
        for (id, t) in btf.types.iter().enumerate() {
            let map = match t.kind {
                KIND_STRUCT | KIND_UNION => &mut btf.structs,
                KIND_TYPEDEF => &mut btf.typedefs,
                _ => continue,
            };
            if t.name != 0 {
                let name = str_at(&btf.strings, t.name).to_string();
                // Keep the first complete definition (vmlinux has one per name).
                map.entry(name).or_insert(id as u32);
            }
        }
        Ok(btf)
    }

    fn name(&self, off: u32) -> &str {
        str_at(&self.strings, off)
    }

    fn ty(&self, id: u32) -> Result<&Type, BtfError> {
        self.types
            .get(id as usize)
            .ok_or_else(|| BtfError::Malformed(format!("type id {id} out of range")))
    }

    /// Follows typedefs and qualifiers to the underlying type.
    fn resolve(&self, mut id: u32) -> Result<u32, BtfError> {
        for _ in 0..32 {
            let t = self.ty(id)?;
            match t.kind {
                KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_TYPE_TAG => {
                    id = t.size_or_type
                }
                _ => return Ok(id),
            }
        }
        Err(BtfError::Malformed(format!("type chain too deep at {id}")))
    }

    fn struct_id(&self, name: &str) -> Result<u32, BtfError> {
        self.structs
            .get(name)
            .copied()
            .ok_or_else(|| BtfError::NoStruct(name.to_string()))
    }

    /// Size in bytes of a struct or union.
    pub fn struct_size(&self, name: &str) -> Result<u32, BtfError> {
        Ok(self.ty(self.struct_id(name)?)?.size_or_type)
    }

    /// Finds `member` in the struct/union `id`, looking through anonymous members; returns its
    /// bit offset and type id.
    fn find_member(&self, id: u32, member: &str) -> Result<Option<(u32, u32)>, BtfError> {
        let t = self.ty(self.resolve(id)?)?;
        for m in &t.members {
            if m.name != 0 && self.name(m.name) == member {
                if m.bitfield_size != 0 {
                    return Err(BtfError::Bitfield(member.to_string()));
                }
                return Ok(Some((m.bit_offset, m.ty)));
            }
            if m.name == 0 {
                if let Some((off, ty)) = self.find_member(m.ty, member)? {
                    return Ok(Some((m.bit_offset + off, ty)));
                }
            }
        }
        Ok(None)
    }

    /// Byte offset of a (possibly nested, dot-separated) member path inside a struct, e.g.
    /// `member_offset("k_sigaction", "sa.sa_handler")`.
    pub fn member_offset(&self, strukt: &str, path: &str) -> Result<u32, BtfError> {
        let mut id = self.struct_id(strukt)?;
        let mut bits = 0;
        for part in path.split('.') {
            let (off, ty) = self
                .find_member(id, part)?
                .ok_or_else(|| BtfError::NoMember {
                    strukt: strukt.to_string(),
                    member: path.to_string(),
                })?;
            bits += off;
            id = ty;
        }
        if bits % 8 != 0 {
            return Err(BtfError::Bitfield(path.to_string()));
        }
        Ok(bits / 8)
    }

    /// Number of arguments of a tracepoint's BTF prototype (`btf_trace_<name>`), the leading
    /// `void *` context excluded; `None` when the kernel has no such tracepoint.
    pub fn tracepoint_arity(&self, name: &str) -> Option<usize> {
        let id = *self.typedefs.get(&format!("btf_trace_{name}"))?;
        let ptr = self.resolve(id).ok()?;
        let t = self.ty(ptr).ok()?;
        let proto = if t.kind == KIND_PTR {
            self.ty(self.resolve(t.size_or_type).ok()?).ok()?
        } else {
            t
        };
        (proto.kind == KIND_FUNC_PROTO).then(|| proto.params.saturating_sub(1))
    }

    /// Resolves every offset the kernel programs need. A missing member is recorded as
    /// missing (the programs then leave the dependent field zero) and reported in `missing`.
    pub fn offsets(&self) -> (Offsets, Vec<String>) {
        let mut missing = Vec::new();
        let mut get = |strukt: &str, path: &str| match self.member_offset(strukt, path) {
            Ok(off) => off,
            Err(e) => {
                missing.push(e.to_string());
                tracer_common::OFFSET_MISSING
            }
        };
        let mut o = Offsets {
            task_pid: get("task_struct", "pid"),
            task_tgid: get("task_struct", "tgid"),
            task_comm: get("task_struct", "comm"),
            task_real_parent: get("task_struct", "real_parent"),
            task_group_leader: get("task_struct", "group_leader"),
            task_signal: get("task_struct", "signal"),
            task_sighand: get("task_struct", "sighand"),
            task_cgroups: get("task_struct", "cgroups"),
            task_thread_pid: get("task_struct", "thread_pid"),
            task_exit_code: get("task_struct", "exit_code"),
            task_blocked: get("task_struct", "blocked"),
            task_flags: get("task_struct", "flags"),
            task_start_time: get("task_struct", "start_time"),
            signal_flags: get("signal_struct", "flags"),
            signal_live: get("signal_struct", "live"),
            signal_group_exit_code: get("signal_struct", "group_exit_code"),
            sighand_action: get("sighand_struct", "action"),
            k_sigaction_size: tracer_common::OFFSET_MISSING,
            k_sigaction_handler: get("k_sigaction", "sa.sa_handler"),
            k_sigaction_flags: get("k_sigaction", "sa.sa_flags"),
            css_set_dfl_cgrp: get("css_set", "dfl_cgrp"),
            cgroup_kn: get("cgroup", "kn"),
            kernfs_node_id: get("kernfs_node", "id"),
            pid_level: get("pid", "level"),
            pid_numbers: get("pid", "numbers"),
            upid_size: tracer_common::OFFSET_MISSING,
            upid_nr: get("upid", "nr"),
            siginfo_code: get("kernel_siginfo", "si_code"),
        };
        match self.struct_size("k_sigaction") {
            Ok(s) => o.k_sigaction_size = s,
            Err(e) => missing.push(e.to_string()),
        }
        match self.struct_size("upid") {
            Ok(s) => o.upid_size = s,
            Err(e) => missing.push(e.to_string()),
        }
        (o, missing)
    }
}

fn str_at(strings: &[u8], off: u32) -> &str {
    let rest = strings.get(off as usize..).unwrap_or_default();
    let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
    std::str::from_utf8(&rest[..end]).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_garbage() {
        assert!(matches!(
            Btf::parse(b"not btf at all, definitely not"),
            Err(BtfError::Malformed(_))
        ));
        assert!(matches!(Btf::parse(&[]), Err(BtfError::Malformed(_))));
    }

    #[test]
    fn running_kernel_offsets_resolve() {
        // Every kernel this project supports ships BTF; the test fails loudly where it does not.
        let btf = Btf::from_file(VMLINUX_BTF).expect("kernel BTF");
        let (o, missing) = btf.offsets();
        assert!(missing.is_empty(), "missing offsets: {missing:?}");
        // Invariants that hold on every kernel: tgid follows pid, sa_handler leads sigaction.
        assert_eq!(o.task_tgid, o.task_pid + 4);
        assert_eq!(o.k_sigaction_handler, 0);
        assert!(o.k_sigaction_size >= 24);
        assert_eq!(o.siginfo_code, 8);
        assert_eq!(btf.tracepoint_arity("signal_generate"), Some(5));
        assert_eq!(btf.tracepoint_arity("signal_deliver"), Some(3));
        assert!(matches!(
            btf.tracepoint_arity("sched_process_exit"),
            Some(1 | 2)
        ));
        assert_eq!(btf.tracepoint_arity("no_such_tracepoint"), None);
    }
}
