//! Load-time patching of the kernel programs' direct field loads.
//!
//! The BTF-tracepoint programs read kernel structures with plain load instructions whose
//! offset field holds `FIELD_MARKER + id` instead of a real offset (`tracer-ebpf/src/mem.rs`).
//! Before the object is handed to the loader, [`patch_field_loads`] rewrites every such load
//! with the offset of field `id` in the running kernel ([`Offsets::field`], from its BTF), or
//! turns it into `dst = 0` when this kernel lacks the field. Loads left unpatched would be
//! refused by the verifier (they point far past any kernel structure), so a mistake here
//! cannot read the wrong field silently.
use thiserror::Error;
use tracer_common::{field, Offsets, FIELD_MARKER, OFFSET_MISSING};

#[derive(Debug, Error, PartialEq, Eq)]
pub enum PatchError {
    #[error("the eBPF object is not a little-endian 64-bit ELF file")]
    NotElf,
    #[error("the eBPF object is truncated: {what} lies beyond its {len} bytes")]
    Truncated { what: String, len: usize },
    #[error(
        "the eBPF object loads unknown field id {id} (instruction {insn} of section {section}); \
         the agent and its kernel programs were built from different sources"
    )]
    UnknownField {
        id: u32,
        insn: usize,
        section: usize,
    },
    #[error(
        "kernel field id {id} is at offset {offset}, beyond what a load instruction can address"
    )]
    TooFar { id: u8, offset: u32 },
}

/// What [`patch_field_loads`] changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Patched {
    /// Loads given this kernel's offset.
    pub loads: usize,
    /// Loads of fields this kernel lacks, turned into `dst = 0`.
    pub zeroed: usize,
}

const SHT_PROGBITS: u32 = 1;
const SHF_EXECINSTR: u64 = 0x4;
const INSN: usize = 8;
const BPF_CLASS_MASK: u8 = 0x07;
const BPF_LDX: u8 = 0x01;
const BPF_MODE_MASK: u8 = 0xe0;
const BPF_MEM: u8 = 0x60;
/// `BPF_LD | BPF_IMM | BPF_DW`: the one instruction that takes two slots.
const BPF_LD_IMM64: u8 = 0x18;
/// `BPF_ALU64 | BPF_MOV | BPF_K`.
const BPF_MOV64_IMM: u8 = 0xb7;

fn read<const N: usize>(obj: &[u8], at: usize, what: &str) -> Result<[u8; N], PatchError> {
    at.checked_add(N)
        .and_then(|end| obj.get(at..end))
        .map(|b| b.try_into().expect("slice of length N"))
        .ok_or_else(|| PatchError::Truncated {
            what: what.to_string(),
            len: obj.len(),
        })
}

fn u16_at(obj: &[u8], at: usize, what: &str) -> Result<u16, PatchError> {
    read::<2>(obj, at, what).map(u16::from_le_bytes)
}

fn u32_at(obj: &[u8], at: usize, what: &str) -> Result<u32, PatchError> {
    read::<4>(obj, at, what).map(u32::from_le_bytes)
}

fn u64_at(obj: &[u8], at: usize, what: &str) -> Result<usize, PatchError> {
    let v = read::<8>(obj, at, what).map(u64::from_le_bytes)?;
    usize::try_from(v).map_err(|_| PatchError::Truncated {
        what: what.to_string(),
        len: obj.len(),
    })
}

/// The byte ranges of the object's executable sections.
fn code_sections(obj: &[u8]) -> Result<Vec<(usize, std::ops::Range<usize>)>, PatchError> {
    if obj.len() < 64 || obj[..4] != *b"\x7fELF" || obj[4] != 2 || obj[5] != 1 {
        return Err(PatchError::NotElf);
    }
    let shoff = u64_at(obj, 0x28, "the section header table")?;
    let shentsize = usize::from(u16_at(obj, 0x3a, "the ELF header")?);
    let shnum = usize::from(u16_at(obj, 0x3c, "the ELF header")?);
    if shentsize < 0x28 {
        return Err(PatchError::NotElf);
    }
    let mut out = Vec::new();
    for i in 0..shnum {
        let hdr = shoff + i * shentsize;
        let what = format!("section header {i}");
        let sh_type = u32_at(obj, hdr + 4, &what)?;
        let sh_flags = read::<8>(obj, hdr + 8, &what).map(u64::from_le_bytes)?;
        if sh_type != SHT_PROGBITS || sh_flags & SHF_EXECINSTR == 0 {
            continue;
        }
        let start = u64_at(obj, hdr + 0x18, &what)?;
        let size = u64_at(obj, hdr + 0x20, &what)?;
        let end = start.checked_add(size).filter(|&e| e <= obj.len());
        let Some(end) = end else {
            return Err(PatchError::Truncated {
                what: format!("section {i}'s code"),
                len: obj.len(),
            });
        };
        out.push((i, start..end));
    }
    Ok(out)
}

/// Rewrites every marked field load of `obj` (an ELF eBPF object) for `offsets`.
pub fn patch_field_loads(obj: &mut [u8], offsets: &Offsets) -> Result<Patched, PatchError> {
    let marker = FIELD_MARKER as u16;
    let mut patched = Patched::default();
    for (section, range) in code_sections(obj)? {
        let code = &mut obj[range];
        let mut insn = 0;
        while (insn + 1) * INSN <= code.len() {
            let at = insn * INSN;
            let opcode = code[at];
            if opcode == BPF_LD_IMM64 {
                insn += 2;
                continue;
            }
            insn += 1;
            if opcode & BPF_CLASS_MASK != BPF_LDX || opcode & BPF_MODE_MASK != BPF_MEM {
                continue;
            }
            let off = u16::from_le_bytes([code[at + 2], code[at + 3]]);
            if !(marker..=marker | 0xff).contains(&off) {
                continue;
            }
            let id = u32::from(off - marker);
            let known = u8::try_from(id).ok().filter(|&id| id < field::COUNT);
            let Some(id) = known else {
                return Err(PatchError::UnknownField {
                    id,
                    insn: insn - 1,
                    section,
                });
            };
            match offsets.field(id) {
                OFFSET_MISSING => {
                    let dst = code[at + 1] & 0x0f;
                    code[at..at + INSN].copy_from_slice(&[BPF_MOV64_IMM, dst, 0, 0, 0, 0, 0, 0]);
                    patched.zeroed += 1;
                }
                offset => {
                    let real =
                        i16::try_from(offset).map_err(|_| PatchError::TooFar { id, offset })?;
                    code[at + 2..at + 4].copy_from_slice(&real.to_le_bytes());
                    patched.loads += 1;
                }
            }
        }
    }
    Ok(patched)
}

/// A copy of `obj` in a buffer aligned for the ELF parser, patched for `offsets`.
pub struct PatchedObject {
    buf: Vec<u8>,
    start: usize,
    len: usize,
    pub patched: Patched,
}

impl PatchedObject {
    pub fn new(obj: &[u8], offsets: &Offsets) -> Result<Self, PatchError> {
        const ALIGN: usize = 32;
        let mut buf = vec![0u8; obj.len() + ALIGN];
        let start = buf.as_ptr().align_offset(ALIGN).min(ALIGN);
        buf[start..start + obj.len()].copy_from_slice(obj);
        let patched = patch_field_loads(&mut buf[start..start + obj.len()], offsets)?;
        Ok(Self {
            buf,
            start,
            len: obj.len(),
            patched,
        })
    }

    pub fn bytes(&self) -> &[u8] {
        &self.buf[self.start..self.start + self.len]
    }
}

#[cfg(test)]
#[path = "patch_tests.rs"]
mod tests;
