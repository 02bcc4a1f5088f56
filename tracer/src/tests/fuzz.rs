//! Property tests over hostile input: the kernel-record decoder, the journal reader, the BTF
//! reader and the load-time patcher get arbitrary or mutated bytes and must answer with a
//! value or an error, never a panic or a hang. `cargo xtask test` runs a bounded number of
//! cases; `cargo xtask fuzz` runs many more (`PROPTEST_CASES`). A case that fails is kept by
//! proptest in `fuzz.proptest-regressions` beside this file (committed) and replayed first from then on.
use std::io::Write;

use proptest::prelude::*;
use tracer_common::{kind, Header, Offsets, ProcessExit, SignalGenerate, TaskInfo};

use crate::{
    btf::KernelBtf,
    decode::{encode, Clock, KernelRecord},
    driver::{drive, Consumer, FeedError, Input, OnBadInput},
    journal::{JournalOptions, JournalReader, JournalWriter, ReaderOptions, SessionInfo},
    patch::patch_field_loads,
};

fn config() -> ProptestConfig {
    ProptestConfig {
        // Overridden by PROPTEST_CASES (`cargo xtask fuzz`).
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(256),
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::WithSource("regressions"),
        )),
        ..ProptestConfig::default()
    }
}

/// A small valid journal: a session, events of every kind, a lost count, a container, a note.
fn journal_bytes() -> Vec<u8> {
    let dir = tempfile::tempdir().expect("temp dir");
    let session = SessionInfo {
        version: "fuzz".into(),
        hostname: "fuzz".into(),
        clock_offset_ns: 1_700_000_000_000_000_000,
        started_wall_ns: 1_700_000_000_000_000_000,
        boot_id: String::new(),
        shaping: None,
    };
    let mut w =
        JournalWriter::open(dir.path(), JournalOptions::default(), session).expect("journal");
    let mut task = TaskInfo {
        tgid: 100,
        tid: 100,
        ppid: 1,
        ns_pid: 1,
        flags: 1,
        ..Default::default()
    };
    task.comm[..3].copy_from_slice(b"app");
    for i in 0..8u64 {
        let header = |k| Header {
            kind: k,
            cpu: 0,
            ts_ns: 1_000_000 + i * 1000,
        };
        let rec = if i % 2 == 0 {
            KernelRecord::Generate(SignalGenerate {
                header: header(kind::SIGNAL_GENERATE),
                sig: 15,
                sender: task,
                target: task,
                ..Default::default()
            })
        } else {
            KernelRecord::Exit(ProcessExit {
                header: header(kind::PROCESS_EXIT),
                task,
                exit_code: 15,
                group_dead: 1,
            })
        };
        w.append_kernel(&encode(&rec)).expect("append");
    }
    w.append_lost(3, 5).expect("lost");
    w.append_container(7, &Default::default())
        .expect("container");
    w.append_note("fuzz").expect("note");
    w.flush().expect("flush");
    std::fs::read(w.path()).expect("read back")
}

/// Takes every input and decodes every kernel record, like the pipeline, without output.
struct Decoding(u64);

impl Consumer for Decoding {
    fn input(&mut self, input: Input<'_>) -> Result<(), FeedError> {
        if let Input::Kernel(bytes, clock) = input {
            let clock = clock.ok_or(FeedError::NoClock)?;
            KernelRecord::try_from(bytes)?.into_event(&clock);
            self.0 += 1;
        }
        Ok(())
    }

    fn finish(&mut self) -> anyhow::Result<()> {
        Ok(())
    }
}

/// Replays `bytes` as a journal file, leniently, through the driver.
fn replay(bytes: &[u8]) {
    let mut f = tempfile::Builder::new()
        .suffix(".journal")
        .tempfile()
        .expect("temp file");
    f.write_all(bytes).expect("write");
    let mut reader = JournalReader::new([f.path()], ReaderOptions::default());
    let mut sink = Decoding(0);
    drive(&mut reader, &mut sink, OnBadInput::ReportFirst).expect("a lenient replay goes on");
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn decoding_any_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        if let Ok(rec) = KernelRecord::try_from(&bytes[..]) {
            let again = encode(&rec);
            prop_assert_eq!(&again[..], &bytes[..again.len()]);
            rec.into_event(&Clock { offset_ns: 0 });
        }
    }

    #[test]
    fn replaying_a_mutated_journal_never_panics(
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..16),
        cut in proptest::option::of(any::<usize>()),
        insert in proptest::option::of((any::<usize>(), proptest::collection::vec(any::<u8>(), 1..64))),
    ) {
        let mut bytes = journal_bytes();
        for (at, v) in flips {
            let n = bytes.len();
            bytes[at % n] ^= v;
        }
        if let Some((at, garbage)) = insert {
            let at = at % bytes.len();
            bytes.splice(at..at, garbage);
        }
        if let Some(at) = cut {
            bytes.truncate(at % (bytes.len() + 1));
        }
        replay(&bytes);
    }

    #[test]
    fn parsing_any_btf_never_panics(
        types in proptest::collection::vec(any::<u8>(), 0..2048),
        strings in proptest::collection::vec(any::<u8>(), 0..256),
        header in proptest::option::of(proptest::collection::vec(any::<u8>(), 24..25)),
    ) {
        let mut bytes = Vec::new();
        match header {
            Some(h) => bytes.extend_from_slice(&h),
            None => {
                bytes.extend_from_slice(&0xeb9fu16.to_le_bytes());
                bytes.extend_from_slice(&[1, 0]);
                bytes.extend_from_slice(&24u32.to_le_bytes());
                bytes.extend_from_slice(&0u32.to_le_bytes());
                bytes.extend_from_slice(&(types.len() as u32).to_le_bytes());
                bytes.extend_from_slice(&(types.len() as u32).to_le_bytes());
                bytes.extend_from_slice(&(strings.len() as u32).to_le_bytes());
            }
        }
        bytes.extend_from_slice(&types);
        bytes.extend_from_slice(&strings);
        if let Ok(btf) = KernelBtf::parse(bytes) {
            let _ = btf.offsets();
            let _ = btf.tracepoint_arity("sched_process_exit");
        }
    }

    #[test]
    fn patching_any_object_never_panics(
        bytes in proptest::collection::vec(any::<u8>(), 0..1024),
        elf_header in any::<bool>(),
        offset in any::<u32>(),
    ) {
        let mut obj = bytes;
        if elf_header && obj.len() >= 64 {
            obj[..4].copy_from_slice(b"\x7fELF");
            obj[4] = 2;
            obj[5] = 1;
        }
        let mut offsets = Offsets::MISSING;
        for o in offsets.by_id.iter_mut().step_by(3) {
            *o = offset;
        }
        let _ = patch_field_loads(&mut obj, &offsets);
    }
}
