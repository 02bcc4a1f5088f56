//! Unit tests of the field-load patcher on hand-made ELF objects.
use super::*;

const TGID: u8 = field::TASK_TGID;

fn insn(opcode: u8, regs: u8, off: i16, imm: i32) -> [u8; 8] {
    let mut i = [0u8; 8];
    i[0] = opcode;
    i[1] = regs;
    i[2..4].copy_from_slice(&off.to_le_bytes());
    i[4..8].copy_from_slice(&imm.to_le_bytes());
    i
}

fn marker(id: u8) -> i16 {
    FIELD_MARKER + i16::from(id)
}

/// An ELF64 LE object: section 0 (null), section 1 = `code` (PROGBITS, `flags`),
/// section 2 = `data` (PROGBITS, not executable).
fn elf(code: &[[u8; 8]], flags: u64, data: &[u8]) -> Vec<u8> {
    let code: Vec<u8> = code.concat();
    let code_off = 64;
    let data_off = code_off + code.len();
    let shoff = data_off + data.len();
    let mut obj = vec![0u8; 64];
    obj[..4].copy_from_slice(b"\x7fELF");
    obj[4] = 2; // 64-bit
    obj[5] = 1; // little-endian
    obj[6] = 1; // ELF version
    obj[0x10..0x12].copy_from_slice(&1u16.to_le_bytes()); // relocatable
    obj[0x12..0x14].copy_from_slice(&247u16.to_le_bytes()); // EM_BPF
    obj[0x14..0x18].copy_from_slice(&1u32.to_le_bytes());
    obj[0x34..0x36].copy_from_slice(&64u16.to_le_bytes()); // e_ehsize
    obj[0x28..0x30].copy_from_slice(&(shoff as u64).to_le_bytes());
    obj[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
    obj[0x3c..0x3e].copy_from_slice(&3u16.to_le_bytes());
    obj.extend_from_slice(&code);
    obj.extend_from_slice(data);
    let section = |ty: u32, flags: u64, off: usize, size: usize| {
        let mut h = [0u8; 64];
        h[4..8].copy_from_slice(&ty.to_le_bytes());
        h[8..16].copy_from_slice(&flags.to_le_bytes());
        h[0x18..0x20].copy_from_slice(&(off as u64).to_le_bytes());
        h[0x20..0x28].copy_from_slice(&(size as u64).to_le_bytes());
        h
    };
    obj.extend_from_slice(&[0u8; 64]);
    obj.extend_from_slice(&section(SHT_PROGBITS, flags, code_off, code.len()));
    obj.extend_from_slice(&section(SHT_PROGBITS, 0, data_off, data.len()));
    obj
}

fn code_of(obj: &[u8], n: usize) -> Vec<[u8; 8]> {
    (0..n)
        .map(|i| obj[64 + i * 8..72 + i * 8].try_into().unwrap())
        .collect()
}

const SHT_PROGBITS: u32 = 1;
const SHF_EXECINSTR: u64 = 0x4;

fn offsets() -> Offsets {
    let mut o = Offsets::MISSING;
    o.by_id[field::TASK_TGID as usize] = 0x9ac;
    o.by_id[field::TASK_COMM as usize] = 0xbb0;
    o.by_id[field::TASK_COMM_HI as usize] = 0xbb8;
    for n in 0..64u32 {
        o.by_id[usize::from(field::SIGHAND_HANDLER) + n as usize] = 8 + n * 32;
    }
    o
}

#[test]
fn marked_loads_get_the_kernel_offsets() {
    let ldxw = 0x61; // BPF_LDX | BPF_MEM | BPF_W
    let ldxdw = 0x79; // BPF_LDX | BPF_MEM | BPF_DW
    let mut obj = elf(
        &[
            insn(ldxw, 0x72, marker(TGID), 0),
            insn(ldxdw, 0x10, marker(field::TASK_COMM_HI), 0),
            // sa_handler of SIGTERM: action + 14 * size + handler.
            insn(ldxdw, 0x34, marker(field::SIGHAND_HANDLER + 14), 0),
        ],
        SHF_EXECINSTR,
        &[],
    );
    let p = patch_field_loads(&mut obj, &offsets()).unwrap();
    assert_eq!(
        p,
        Patched {
            loads: 3,
            zeroed: 0
        }
    );
    let code = code_of(&obj, 3);
    assert_eq!(code[0], insn(ldxw, 0x72, 0x9ac, 0));
    assert_eq!(code[1], insn(ldxdw, 0x10, 0xbb8, 0));
    assert_eq!(code[2], insn(ldxdw, 0x34, 8 + 14 * 32, 0));
}

#[test]
fn loads_of_missing_fields_become_zero_moves_into_the_same_register() {
    let mut obj = elf(
        &[insn(0x61, 0x75, marker(field::SIGNAL_LIVE), 0)],
        SHF_EXECINSTR,
        &[],
    );
    let p = patch_field_loads(&mut obj, &offsets()).unwrap();
    assert_eq!(
        p,
        Patched {
            loads: 0,
            zeroed: 1
        }
    );
    assert_eq!(code_of(&obj, 1)[0], insn(BPF_MOV64_IMM, 0x05, 0, 0));
}

#[test]
fn other_instructions_and_sections_are_left_alone() {
    let ld_imm64 = [
        insn(BPF_LD_IMM64, 0x01, 0, 7),
        // The second slot of a 64-bit immediate is data, whatever it looks like.
        insn(0x61, 0x00, marker(TGID), 0),
    ];
    let unmarked_load = insn(0x61, 0x21, 0x10, 0);
    let store = insn(0x63, 0x21, marker(TGID), 0); // BPF_STX | BPF_MEM | BPF_W
    let code = [ld_imm64[0], ld_imm64[1], unmarked_load, store];
    let data = insn(0x61, 0x21, marker(TGID), 0);
    let mut obj = elf(&code, SHF_EXECINSTR, &data);
    let before = obj.clone();
    let p = patch_field_loads(&mut obj, &offsets()).unwrap();
    assert_eq!(p, Patched::default());
    assert_eq!(obj, before);

    // A non-executable section with a marked load is data too.
    let mut obj = elf(&[insn(0x61, 0x21, marker(TGID), 0)], 0, &[]);
    let before = obj.clone();
    assert_eq!(
        patch_field_loads(&mut obj, &offsets()),
        Ok(Patched::default())
    );
    assert_eq!(obj, before);
}

#[test]
fn an_unknown_field_id_is_refused_with_where_it_is() {
    let mut obj = elf(
        &[
            insn(0x79, 0, 0, 0),
            insn(0x79, 0x10, marker(field::COUNT), 0),
        ],
        SHF_EXECINSTR,
        &[],
    );
    assert_eq!(
        patch_field_loads(&mut obj, &offsets()),
        Err(PatchError::UnknownField {
            id: u32::from(field::COUNT),
            insn: 1,
            section: 1
        })
    );
}

#[test]
fn an_offset_a_load_cannot_hold_is_refused() {
    let mut o = offsets();
    o.by_id[field::TASK_TGID as usize] = 40_000;
    let mut obj = elf(&[insn(0x61, 0, marker(TGID), 0)], SHF_EXECINSTR, &[]);
    assert_eq!(
        patch_field_loads(&mut obj, &o),
        Err(PatchError::TooFar {
            id: TGID,
            offset: 40_000
        })
    );
}

#[test]
fn malformed_objects_are_refused() {
    let mut not_elf = vec![0u8; 128];
    assert_eq!(
        patch_field_loads(&mut not_elf, &offsets()),
        Err(PatchError::NotElf)
    );
    let good = elf(&[insn(0x61, 0, marker(TGID), 0)], SHF_EXECINSTR, &[]);
    // Cut inside the header of the code section.
    let mut cut = good[..good.len() - 64 - 40].to_vec();
    assert!(matches!(
        patch_field_loads(&mut cut, &offsets()),
        Err(PatchError::Truncated { .. })
    ));
    // A section whose code runs past the end of the file.
    let mut long = good.clone();
    let size_at = good.len() - 2 * 64 + 0x20;
    long[size_at..size_at + 8].copy_from_slice(&4096u64.to_le_bytes());
    assert!(matches!(
        patch_field_loads(&mut long, &offsets()),
        Err(PatchError::Truncated { .. })
    ));
}

#[test]
fn field_ids_outside_the_table_are_missing() {
    let o = offsets();
    assert_eq!(o.field(field::SIGHAND_HANDLER + 63), 8 + 63 * 32);
    assert_eq!(o.field(field::COUNT), OFFSET_MISSING);
    assert_eq!(o.field(u8::MAX), OFFSET_MISSING);
    assert_eq!(Offsets::MISSING.field(field::TASK_COMM_HI), OFFSET_MISSING);
}

#[test]
fn the_patched_copy_is_aligned_and_equal_to_the_patched_input() {
    let obj = elf(&[insn(0x61, 0, marker(TGID), 0)], SHF_EXECINSTR, &[]);
    let p = PatchedObject::new(&obj, &offsets()).unwrap();
    assert_eq!(p.bytes().as_ptr() as usize % 32, 0);
    assert_eq!(p.patched.loads, 1);
    let mut expect = obj.clone();
    patch_field_loads(&mut expect, &offsets()).unwrap();
    assert_eq!(p.bytes(), &expect[..]);
}
