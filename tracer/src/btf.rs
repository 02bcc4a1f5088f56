//! The running kernel's BTF (`/sys/kernel/btf/vmlinux`): read once per process, parsed with
//! the `btfparse` crate, and asked for what makes the kernel programs portable across kernel
//! versions without CO-RE relocations: the offset of every field of the table in
//! `tracer-common` ([`tracer_common::FIELDS`]) and the arity of tracepoint prototypes.
//! [`KernelBtf::into_resolved`] keeps those answers and the raw bytes (for the program loader, which
//! parses them again its own way) and drops the parsed type graph: it is several times the
//! size of the BTF (tens of MiB), and the two parses must not be held at once.
use std::{io::Read, path::Path};

use btfparse::{ErrorKind, Offset, Readable, TypeInformation, TypeVariant};
use thiserror::Error;
use tracer_common::{FieldDecl, Offsets, FIELDS};

/// Default location of the running kernel's BTF.
pub const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";

/// Refuse BTF input larger than this (vmlinux BTF is a few MiB).
pub const MAX_BTF_BYTES: u64 = 64 << 20;

#[derive(Debug, Error)]
pub enum BtfError {
    #[error("cannot read BTF from {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("BTF file {path} is larger than {} MiB: not a kernel's BTF", MAX_BTF_BYTES >> 20)]
    TooLarge { path: String },
    #[error("malformed BTF: {0}")]
    Malformed(String),
    #[error("BTF has no struct `{0}`")]
    NoStruct(String),
    #[error("BTF path `{path}`: {reason}")]
    Path { path: String, reason: String },
}

/// BTF bytes in memory, as the parser reads them.
struct Bytes<'a>(&'a [u8]);

impl Readable for Bytes<'_> {
    fn read(&self, offset: u64, buffer: &mut [u8]) -> btfparse::Result<()> {
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        match start
            .checked_add(buffer.len())
            .and_then(|end| self.0.get(start..end))
        {
            Some(src) => {
                buffer.copy_from_slice(src);
                Ok(())
            }
            None => Err(btfparse::Error::new(ErrorKind::EOF, "read past the end")),
        }
    }
}

/// The answers the agent needs from the kernel's BTF, and its raw bytes for the loader.
pub struct ResolvedBtf {
    pub bytes: Vec<u8>,
    /// Every field's offset ([`tracer_common::FIELDS`]); [`tracer_common::OFFSET_MISSING`]
    /// where this kernel lacks it.
    pub offsets: Offsets,
    /// The fields this kernel lacks, with the reason.
    pub missing: Vec<String>,
    /// `sched_process_exit` carries `group_dead` (kernel 6.10 and later).
    pub exit_has_group_dead: bool,
    /// The kernel has the `bpf_get_current_task_btf` helper (5.11 and later), which the BTF
    /// tracepoint programs call: without it they cannot load, and the raw tracepoint
    /// programs are this kernel's path.
    pub has_current_task_btf: bool,
}

/// The kernel's BTF bytes and their parsed type graph.
pub struct KernelBtf {
    bytes: Vec<u8>,
    types: TypeInformation,
}

impl KernelBtf {
    /// Reads and parses a BTF file (at most [`MAX_BTF_BYTES`]).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, BtfError> {
        let path = path.as_ref();
        let io = |source| BtfError::Io {
            path: path.display().to_string(),
            source,
        };
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .map_err(io)?
            .take(MAX_BTF_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(io)?;
        if bytes.len() as u64 > MAX_BTF_BYTES {
            return Err(BtfError::TooLarge {
                path: path.display().to_string(),
            });
        }
        Self::parse(bytes)
    }

    pub fn parse(bytes: Vec<u8>) -> Result<Self, BtfError> {
        if bytes.len() < 24 || bytes[..2] != 0xeb9fu16.to_ne_bytes() {
            return Err(BtfError::Malformed("bad magic (expected 0xeb9f)".into()));
        }
        let types = TypeInformation::new(&Bytes(&bytes))
            .map_err(|e| BtfError::Malformed(format!("{e:?}")))?;
        Ok(Self { bytes, types })
    }

    /// What the agent needs from this BTF; the parsed type graph is dropped.
    pub fn into_resolved(self) -> ResolvedBtf {
        let (offsets, missing) = self.offsets();
        let exit_has_group_dead = self.tracepoint_arity("sched_process_exit") == Some(2);
        let has_current_task_btf =
            self.has_enumerator("bpf_func_id", "BPF_FUNC_get_current_task_btf");
        ResolvedBtf {
            bytes: self.bytes,
            offsets,
            missing,
            exit_has_group_dead,
            has_current_task_btf,
        }
    }

    /// The id of the struct or union `name`.
    fn struct_id(&self, name: &str) -> Result<u32, BtfError> {
        self.types
            .id_of(name)
            .filter(|&id| {
                matches!(
                    self.types.from_id(id),
                    Some(TypeVariant::Struct(_) | TypeVariant::Union(_))
                )
            })
            .ok_or_else(|| BtfError::NoStruct(name.to_string()))
    }

    /// Byte offset of member path `member` (dots, constant indexes) in type `tid`, and the
    /// member's type.
    fn member(&self, tid: u32, member: &str, path: &str) -> Result<(u32, u32), BtfError> {
        let err = |reason: String| BtfError::Path {
            path: path.to_string(),
            reason,
        };
        match self.types.offset_of(tid, member) {
            Ok((tid, Offset::ByteOffset(off))) => Ok((tid, off)),
            Ok((_, Offset::BitOffsetAndSize(..))) => Err(err(format!(
                "`{member}` is a bitfield, not byte-addressable"
            ))),
            Err(e) => Err(err(format!("`{member}`: {e:?}"))),
        }
    }

    /// Offset of `member`, which may hold one `[]` (an array indexed by `slot`), in `tid`.
    fn slot_member(
        &self,
        tid: u32,
        member: &str,
        slot: u32,
        path: &str,
    ) -> Result<(u32, u32), BtfError> {
        let Some((array, rest)) = member.split_once("[]") else {
            return self.member(tid, member, path);
        };
        let (array_tid, base) = self.member(tid, array, path)?;
        let Some(TypeVariant::Array(a)) = self.types.from_id(array_tid) else {
            return Err(BtfError::Path {
                path: path.to_string(),
                reason: format!("`{array}` is not an array"),
            });
        };
        let elem = *a.element_tid();
        let size = self.types.size_of(elem).map_err(|e| BtfError::Path {
            path: path.to_string(),
            reason: format!("size of `{array}`'s elements: {e:?}"),
        })?;
        let (tid, inner) = match rest.strip_prefix('.') {
            Some(rest) => self.member(elem, rest, path)?,
            None => (elem, 0),
        };
        let off = u64::from(base) + u64::from(slot) * size as u64 + u64::from(inner);
        let off = u32::try_from(off).map_err(|_| BtfError::Path {
            path: path.to_string(),
            reason: "offset overflows".into(),
        })?;
        Ok((tid, off))
    }

    /// Offset of a field-table path for slot `slot`: that of its last `->` segment.
    pub fn resolve(&self, path: &str, slot: u32) -> Result<u32, BtfError> {
        let mut segments = path.split("->");
        let first = segments.next().unwrap_or_default();
        let (strukt, member) = first.split_once('.').ok_or_else(|| BtfError::Path {
            path: path.to_string(),
            reason: "expected struct.member".into(),
        })?;
        let (mut tid, mut off) = self.slot_member(self.struct_id(strukt)?, member, slot, path)?;
        for seg in segments {
            let pointee = self.types.pointee_tid(tid).map_err(|e| BtfError::Path {
                path: path.to_string(),
                reason: format!("`->{seg}` follows a non-pointer: {e:?}"),
            })?;
            (tid, off) = self.slot_member(pointee, seg, slot, path)?;
        }
        Ok(off)
    }

    /// Resolves every field of the table. A field this kernel lacks is left
    /// [`tracer_common::OFFSET_MISSING`] (the programs then leave what depends on it zero) and
    /// reported in the list.
    pub fn offsets(&self) -> (Offsets, Vec<String>) {
        let mut offsets = Offsets::MISSING;
        let mut missing = Vec::new();
        for FieldDecl {
            name,
            path,
            slots,
            first,
        } in FIELDS
        {
            for slot in 0..slots {
                match self.resolve(path, u32::from(slot)) {
                    Ok(off) => offsets.by_id[usize::from(first + slot)] = off,
                    Err(e) => {
                        missing.push(format!("{name}: {e}"));
                        break;
                    }
                }
            }
        }
        (offsets, missing)
    }

    /// Whether enum `name` has a value named `value` (how the kernel's BTF tells which BPF
    /// helpers it has: `enum bpf_func_id`).
    pub fn has_enumerator(&self, name: &str, value: &str) -> bool {
        let Some(id) = self.types.id_of(name) else {
            return false;
        };
        match self.types.from_id(id) {
            Some(TypeVariant::Enum(e)) => e.named_value_list().iter().any(|v| v.name == value),
            Some(TypeVariant::Enum64(e)) => e.named_value_list().iter().any(|v| v.name == value),
            _ => false,
        }
    }

    /// Number of arguments of a tracepoint's BTF prototype (`btf_trace_<name>`), the leading
    /// `void *` context excluded; `None` when the kernel has no such tracepoint.
    pub fn tracepoint_arity(&self, name: &str) -> Option<usize> {
        let id = self.types.id_of(&format!("btf_trace_{name}"))?;
        let Some(TypeVariant::Typedef(t)) = self.types.from_id(id) else {
            return None;
        };
        let proto = self.types.pointee_tid(*t.tid()).ok()?;
        match self.types.from_id(proto)? {
            TypeVariant::FuncProto(p) => Some(p.parameter_list().len().saturating_sub(1)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracer_common::{field, OFFSET_MISSING};

    #[test]
    fn rejects_garbage() {
        assert!(matches!(
            KernelBtf::parse(b"not btf at all, definitely not".to_vec()),
            Err(BtfError::Malformed(_))
        ));
        assert!(matches!(
            KernelBtf::parse(Vec::new()),
            Err(BtfError::Malformed(_))
        ));
        let mut truncated = std::fs::read(VMLINUX_BTF).expect("kernel BTF");
        truncated.truncate(4096);
        assert!(KernelBtf::parse(truncated).is_err());
    }

    #[test]
    fn running_kernel_offsets_resolve() {
        // Every kernel this project supports ships BTF; the test fails loudly where it does not.
        let btf = KernelBtf::from_file(VMLINUX_BTF).expect("kernel BTF");
        let (o, missing) = btf.offsets();
        assert!(missing.is_empty(), "missing offsets: {missing:?}");
        assert!((0..field::COUNT).all(|id| o.field(id) != OFFSET_MISSING));
        // Invariants that hold on every kernel: tgid follows pid, sa_handler leads sigaction,
        // comm's second half is 8 bytes in, si_code is the third int of siginfo.
        assert_eq!(o.field(field::TASK_TGID), o.field(field::TASK_PID) + 4);
        assert_eq!(o.field(field::TASK_COMM_HI), o.field(field::TASK_COMM) + 8);
        assert_eq!(o.field(field::KA_HANDLER), 0);
        assert_eq!(o.field(field::SIGINFO_CODE), 8);
        // Slots of an array field are one element apart.
        let h = |n: u8| o.field(field::SIGHAND_HANDLER + n);
        assert!(h(1) - h(0) >= 24 && h(2) - h(1) == h(1) - h(0));
        let p = |n: u8| o.field(field::PID_NR + n);
        assert!(p(1) > p(0) && p(2) - p(1) == p(1) - p(0));
        assert_eq!(btf.tracepoint_arity("signal_generate"), Some(5));
        assert_eq!(btf.tracepoint_arity("signal_deliver"), Some(3));
        assert!(matches!(
            btf.tracepoint_arity("sched_process_exit"),
            Some(1 | 2)
        ));
        assert_eq!(btf.tracepoint_arity("no_such_tracepoint"), None);
        // Every helper the programs call is in the kernel's `enum bpf_func_id`.
        assert!(btf.has_enumerator("bpf_func_id", "BPF_FUNC_ringbuf_reserve"));
        assert!(btf.has_enumerator("bpf_func_id", "BPF_FUNC_probe_read_kernel"));
        assert!(!btf.has_enumerator("bpf_func_id", "BPF_FUNC_no_such_helper"));
        assert!(!btf.has_enumerator("no_such_enum", "BPF_FUNC_ringbuf_reserve"));
    }

    #[test]
    fn bad_paths_are_named() {
        let btf = KernelBtf::from_file(VMLINUX_BTF).expect("kernel BTF");
        let e = btf.resolve("task_struct.no_such_member", 0).unwrap_err();
        assert!(e.to_string().contains("no_such_member"), "{e}");
        assert!(matches!(
            btf.resolve("no_such_struct.pid", 0),
            Err(BtfError::NoStruct(_))
        ));
        assert!(btf.resolve("task_struct.pid->x", 0).is_err());
    }

    #[test]
    fn oversized_input_is_refused() {
        let e = KernelBtf::from_file("/dev/zero").err().expect("refused");
        assert!(matches!(e, BtfError::TooLarge { .. }), "{e}");
    }
}
