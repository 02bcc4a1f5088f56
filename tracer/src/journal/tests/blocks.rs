//! Compressed blocks (format version 2): round trips, damage inside and around a block, and
//! version 1 files, which are still read.
use super::*;
use crate::journal::format::{block_header, parse_frame, Parsed, FILE_HEADER_LEN};

/// `(offset, record type)` of every frame of a file.
fn frame_types(bytes: &[u8]) -> Vec<(usize, u16)> {
    let mut out = Vec::new();
    let mut at = FILE_HEADER_LEN;
    while let Parsed::Ok { rtype, next, .. } = parse_frame(bytes, at) {
        out.push((at, rtype));
        at = next;
    }
    out
}

/// `n` exit events in compressed blocks; returns the file.
fn write_blocks(dir: &Path, n: u64) -> PathBuf {
    let mut w = JournalWriter::open(dir, JournalOptions::default(), session()).unwrap();
    for i in 0..n {
        w.append_kernel(&exit_record(i)).unwrap();
    }
    w.flush().unwrap();
    w.path().to_path_buf()
}

#[test]
fn records_round_trip_through_blocks_in_order() {
    let dir = temp_dir("blocks");
    let mut w = JournalWriter::open(dir.path(), JournalOptions::default(), session()).unwrap();
    w.append_kernel(&exit_record(0)).unwrap();
    w.append_lost(3, 1_500).unwrap();
    w.append_gone(GONE_PROC).unwrap();
    w.append_kernel(&exit_record(1)).unwrap();
    w.append_note("between blocks").unwrap();
    w.append_kernel(&exit_record(2)).unwrap();
    let path = w.path().to_path_buf();
    drop(w); // the open block is written on drop
    let bytes = std::fs::read(&path).unwrap();
    let types: Vec<u16> = frame_types(&bytes).into_iter().map(|(_, t)| t).collect();
    use record_type::*;
    assert_eq!(types, [SESSION, BLOCK, NOTE, BLOCK]);
    let (items, stats) = read(&[&path], true);
    let kinds: Vec<Owned> = items.into_iter().map(|i| i.unwrap().kind).collect();
    assert!(
        matches!(
            &kinds[..],
            [Owned::Session(_), Owned::Kernel(a), Owned::Lost { count: 3, mono_ns: 1_500 },
             Owned::Gone(GONE_PROC), Owned::Kernel(b), Owned::Note(t), Owned::Kernel(c)]
                if *a == exit_record(0) && *b == exit_record(1) && t == "between blocks"
                    && *c == exit_record(2)
        ),
        "{kinds:?}"
    );
    assert_eq!((stats.events, stats.records), (3, 7));
}

#[test]
fn blocks_are_much_smaller_than_the_records() {
    let dir = temp_dir("ratio");
    let n = 20_000;
    let path = write_blocks(dir.path(), n);
    let (items, _) = read(&[&path], true);
    assert_eq!(event_ids(&items), (0..n).collect::<Vec<_>>());
    let per_event = std::fs::metadata(&path).unwrap().len() as f64 / n as f64;
    let raw = exit_record(0).len() as f64;
    assert!(
        per_event < raw / 4.0,
        "{per_event:.1} bytes per {raw}-byte record"
    );
}

/// A block whose CRC fails is one corrupt region: its records are lost, the next blocks
/// replay (lenient), or reading stops there (strict).
#[test]
fn a_damaged_block_loses_only_its_records() {
    let dir = temp_dir("badblock");
    let n = 3_000; // a few 64 KiB blocks
    let path = write_blocks(dir.path(), n);
    let mut bytes = std::fs::read(&path).unwrap();
    let blocks: Vec<usize> = frame_types(&bytes)
        .into_iter()
        .filter(|&(_, t)| t == record_type::BLOCK)
        .map(|(o, _)| o)
        .collect();
    assert!(blocks.len() >= 3, "{} blocks", blocks.len());
    bytes[blocks[1] + 40] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    let (items, _) = read(&[&path], false);
    let ids = event_ids(&items);
    assert!(
        ids.len() < n as usize && ids.len() > n as usize / 3,
        "{}",
        ids.len()
    );
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
    assert!(
        matches!(errors(&items)[..], [JournalError::Corrupt { offset, .. }] if *offset == blocks[1] as u64)
    );
    let (strict, _) = read(&[&path], true);
    assert!(event_ids(&strict).len() < ids.len());
}

/// Frames whose CRC holds but whose block does not decode: an unknown codec, data that does
/// not decompress, a record cut inside the block. Each is an error at the block's offset;
/// the blocks after it replay.
#[test]
fn blocks_that_do_not_decode_are_errors_at_their_offset() {
    let raw_cut = {
        // One inner record whose length runs past the block.
        let mut b = record_type::KERNEL.to_le_bytes().to_vec();
        b.extend_from_slice(&100u32.to_le_bytes());
        b.extend_from_slice(&[0u8; 10]);
        b
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("codec", {
            let mut p = block_header(4).to_vec();
            p[0] = 9;
            p.extend_from_slice(b"abcd");
            p
        }),
        ("lz4", {
            let mut p = block_header(1000).to_vec();
            p.extend_from_slice(&[0xff; 12]);
            p
        }),
        ("cut", {
            let mut p = block_header(raw_cut.len()).to_vec();
            p.extend_from_slice(&lz4_flex::block::compress(&raw_cut));
            p
        }),
    ];
    for (name, payload) in cases {
        let dir = temp_dir(name);
        let path = write_blocks(dir.path(), 10);
        let mut bytes = std::fs::read(&path).unwrap();
        let at = bytes.len() as u64;
        bytes.extend_from_slice(&frame_header(record_type::BLOCK, &[&payload]));
        bytes.extend_from_slice(&payload);
        let tail = std::fs::read(write_blocks(temp_dir("tail").path(), 5)).unwrap();
        let types = frame_types(&tail);
        bytes.extend_from_slice(&tail[types[1].0..]); // its block, after the session
        std::fs::write(&path, &bytes).unwrap();
        let (items, stats) = read(&[&path], false);
        assert_eq!(event_ids(&items).len(), 15, "{name}");
        let errs = errors(&items);
        assert_eq!(errs.len(), 1, "{name}: {errs:?}");
        assert_eq!(errs[0].offset(), Some(at), "{name}");
        assert!(
            errs[0].to_string().contains(&path.display().to_string()),
            "{name}"
        );
        assert!(
            stats.bad_records + stats.corrupt_regions == 1,
            "{name}: {stats:?}"
        );
    }
}

#[test]
fn a_file_cut_inside_its_last_block_replays_the_blocks_before_it() {
    let dir = temp_dir("cutblock");
    let n = 3_000;
    let path = write_blocks(dir.path(), n);
    let bytes = std::fs::read(&path).unwrap();
    let last = frame_types(&bytes).last().unwrap().0;
    std::fs::write(&path, &bytes[..last + 30]).unwrap();
    let (items, _) = read(&[&path], true);
    let ids = event_ids(&items);
    assert!(!ids.is_empty() && ids.len() < n as usize);
    assert_eq!(ids, (0..ids.len() as u64).collect::<Vec<_>>());
    assert!(errors(&items).is_empty());
    assert!(
        matches!(warnings(&items)[..], [JournalWarning::Truncated { offset, .. }] if *offset == last as u64)
    );
}

/// A journal written by version 1 (one frame per record, major version 1) still replays.
#[test]
fn version_1_files_still_replay() {
    let dir = temp_dir("v1");
    let path = write_events(dir.path(), 50);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[8..10].copy_from_slice(&1u16.to_le_bytes());
    std::fs::write(&path, &bytes).unwrap();
    let (items, stats) = read(&[&path], true);
    assert_eq!(event_ids(&items), (0..50).collect::<Vec<_>>());
    assert!(errors(&items).is_empty());
    assert_eq!(stats.events, 50);
}

/// A journal file of one session and one `Block` frame holding `raw` (the block's records,
/// uncompressed), compressed and framed with a right CRC: damage inside it reaches the block
/// decoder and the record checks, not the frame's CRC.
fn file_with_block(raw: &[u8]) -> Vec<u8> {
    let mut bytes = file_header().to_vec();
    let mut session_payload = Vec::new();
    super::format::encode_session(&super::session::shaped_session(), &mut session_payload);
    bytes.extend_from_slice(&frame_header(record_type::SESSION, &[&session_payload]));
    bytes.extend_from_slice(&session_payload);
    let header = block_header(raw.len());
    let compressed = lz4_flex::block::compress(raw);
    bytes.extend_from_slice(&frame_header(record_type::BLOCK, &[&header, &compressed]));
    bytes.extend_from_slice(&header);
    bytes.extend_from_slice(&compressed);
    bytes
}

/// A block's records: `n` exit records, each as `type: u16`, `length: u32`, payload.
fn block_records(n: u64) -> Vec<u8> {
    let mut raw = Vec::new();
    for i in 0..n {
        let rec = exit_record(10 + i);
        raw.extend_from_slice(&record_type::KERNEL.to_le_bytes());
        raw.extend_from_slice(&(rec.len() as u32).to_le_bytes());
        raw.extend_from_slice(&rec);
    }
    raw
}

#[test]
fn the_hand_made_block_file_replays_every_record() {
    let dir = temp_dir("block");
    let path = dir.path().join("block.journal");
    std::fs::write(&path, file_with_block(&block_records(5))).unwrap();
    let mut r = JournalReader::new([&path], ReaderOptions { strict: true });
    let mut kernel = 0;
    while let Some(item) = r.next_item() {
        if matches!(
            item.expect("a clean file").kind,
            ItemKind::Frame(Frame::Kernel(_))
        ) {
            kernel += 1;
        }
    }
    assert_eq!(kernel, 5);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(256),
        failure_persistence: None,
        ..proptest::prelude::ProptestConfig::default()
    })]

    /// Bytes flipped, inserted or cut inside a block's records (the frame's CRC made right
    /// again): the reader answers with records and errors, never a panic, and never more
    /// records than the block held.
    #[test]
    fn damage_inside_a_block_never_panics(
        flips in proptest::collection::vec((proptest::prelude::any::<usize>(), proptest::prelude::any::<u8>()), 0..12),
        cut in proptest::option::of(proptest::prelude::any::<usize>()),
        insert in proptest::option::of((proptest::prelude::any::<usize>(), proptest::collection::vec(proptest::prelude::any::<u8>(), 1..16))),
    ) {
        let mut raw = block_records(6);
        for (at, v) in flips {
            let n = raw.len();
            raw[at % n] ^= v;
        }
        if let Some((at, garbage)) = insert {
            let at = at % raw.len();
            raw.splice(at..at, garbage);
        }
        if let Some(at) = cut {
            raw.truncate(at % (raw.len() + 1));
        }
        let dir = temp_dir("block-damage");
        let path = dir.path().join("damaged.journal");
        std::fs::write(&path, file_with_block(&raw)).unwrap();
        let mut r = JournalReader::new([&path], ReaderOptions::default());
        let mut kernel = 0;
        while let Some(item) = r.next_item() {
            if let Ok(Item { kind: ItemKind::Frame(Frame::Kernel(bytes)), .. }) = item {
                let _ = KernelRecord::try_from(bytes);
                kernel += 1;
            }
        }
        proptest::prop_assert!(kernel <= 6 + 16 / 6);
    }
}
