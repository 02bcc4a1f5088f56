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
    #[error("the eBPF object is truncated or malformed: {what}, in its {len} bytes")]
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

const INSN: usize = 8;
const BPF_CLASS_MASK: u8 = 0x07;
const BPF_LDX: u8 = 0x01;
const BPF_MODE_MASK: u8 = 0xe0;
const BPF_MEM: u8 = 0x60;
/// `BPF_LD | BPF_IMM | BPF_DW`: the one instruction that takes two slots.
const BPF_LD_IMM64: u8 = 0x18;
/// `BPF_ALU64 | BPF_MOV | BPF_K`.
const BPF_MOV64_IMM: u8 = 0xb7;

/// The byte ranges of the object's executable sections, by section index.
fn code_sections(obj: &[u8]) -> Result<Vec<(usize, std::ops::Range<usize>)>, PatchError> {
    use object::{
        elf::{FileHeader64, SHF_EXECINSTR, SHT_PROGBITS},
        read::elf::{FileHeader, SectionHeader},
        LittleEndian,
    };
    if obj.len() < 64 || obj[..4] != *b"\x7fELF" || obj[4] != 2 || obj[5] != 1 {
        return Err(PatchError::NotElf);
    }
    let malformed = |e: object::read::Error| PatchError::Truncated {
        what: format!("its ELF headers ({e})"),
        len: obj.len(),
    };
    let header = FileHeader64::<LittleEndian>::parse(obj).map_err(malformed)?;
    let endian = header.endian().map_err(malformed)?;
    let sections = header.section_headers(endian, obj).map_err(malformed)?;
    let mut out = Vec::new();
    for (i, sh) in sections.iter().enumerate() {
        let exec = u64::from(SHF_EXECINSTR);
        if sh.sh_type(endian) != SHT_PROGBITS || sh.sh_flags(endian) & exec == 0 {
            continue;
        }
        let range = sh
            .file_range(endian)
            .and_then(|(start, size)| {
                let start = usize::try_from(start).ok()?;
                Some(start..start.checked_add(usize::try_from(size).ok()?)?)
            })
            .filter(|r| r.end <= obj.len());
        let Some(range) = range else {
            return Err(PatchError::Truncated {
                what: format!("section {i}'s code"),
                len: obj.len(),
            });
        };
        out.push((i, range));
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
mod tests;
