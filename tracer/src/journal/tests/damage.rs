//! Damaged and foreign journals: truncation, garbage, bad CRCs or lengths, foreign and future
//! files, unknown record types; each loses only what it must.
use super::*;

#[test]
fn a_truncated_last_frame_replays_everything_before_it_with_a_warning() {
    let dir = temp_dir("truncated");
    let full = std::fs::read(write_events(dir.path(), 10)).unwrap();
    let last = full.len() - EXIT_FRAME;
    let cut_path = dir.path().join("cut.journal");
    for cut in [0, 1, 3, 4, 9, 15, 16, 17, 60, EXIT_FRAME - 1] {
        std::fs::write(&cut_path, &full[..last + cut]).unwrap();
        let (items, stats) = read(&[&cut_path], true);
        assert!(errors(&items).is_empty(), "cut {cut}");
        assert_eq!(event_ids(&items), (0..9).collect::<Vec<_>>(), "cut {cut}");
        if cut == 0 {
            assert!(warnings(&items).is_empty());
            continue;
        }
        let w = warnings(&items);
        assert_eq!(
            w,
            [&JournalWarning::Truncated {
                path: cut_path.clone(),
                offset: last as u64,
                tail_bytes: cut as u64
            }],
            "cut {cut}"
        );
        assert!(w[0].to_string().contains(&format!(
            "cut.journal: ends inside a record at byte offset {last}"
        )));
        assert_eq!(stats.truncated_files, 1);
    }
    // Cut inside the file header, or empty.
    for cut in [0, 5, 15] {
        std::fs::write(&cut_path, &full[..cut]).unwrap();
        let (items, _) = read(&[&cut_path], true);
        assert_eq!(items.len(), 1);
        assert_eq!(
            warnings(&items),
            [&JournalWarning::Truncated {
                path: cut_path.clone(),
                offset: 0,
                tail_bytes: cut as u64
            }]
        );
    }
    // A zero-filled tail (file size extended but data never written back) is truncation too.
    let mut zeros = full.clone();
    zeros.extend_from_slice(&[0; 300]);
    std::fs::write(&cut_path, &zeros).unwrap();
    let (items, _) = read(&[&cut_path], true);
    assert_eq!(event_ids(&items), (0..10).collect::<Vec<_>>());
    assert_eq!(
        warnings(&items),
        [&JournalWarning::Truncated {
            path: cut_path.clone(),
            offset: full.len() as u64,
            tail_bytes: 300
        }]
    );
}

/// Offsets of the event frames of a 10-event file.
pub(super) fn event_offsets(path: &Path) -> Vec<usize> {
    let (items, _) = read(&[path], true);
    items
        .iter()
        .map(|i| i.as_ref().unwrap())
        .filter(|i| i.event().is_some())
        .map(|i| i.offset as usize)
        .collect()
}

#[test]
fn garbage_in_the_middle_is_an_error_and_lenient_mode_resynchronises() {
    let dir = temp_dir("garbage");
    let path = write_events(dir.path(), 10);
    let full = std::fs::read(&path).unwrap();
    let offs = event_offsets(&path);
    let at = offs[5];
    let garbage = b"this is not a frame, at all! \x01\x02\x03\xff\xfe\x00\x00\x00";
    let mut bad = full[..at].to_vec();
    bad.extend_from_slice(garbage);
    bad.extend_from_slice(&full[at..]);
    std::fs::write(&path, &bad).unwrap();

    let (items, stats) = read(&[&path], false);
    assert_eq!(event_ids(&items), (0..10).collect::<Vec<_>>());
    let errs = errors(&items);
    assert_eq!(errs.len(), 1);
    let JournalError::Corrupt {
        path: p,
        offset,
        len,
        reason,
    } = errs[0]
    else {
        panic!("{:?}", errs[0])
    };
    assert_eq!(
        (p, *offset, *len, *reason),
        (&path, at as u64, garbage.len() as u64, "no frame marker")
    );
    assert!(errs[0].to_string().contains(&format!(
        "{}: corrupt journal data at byte offset {at}",
        path.display()
    )));
    assert_eq!(errs[0].offset(), Some(at as u64));
    assert_eq!(stats.corrupt_regions, 1);
    // The error comes between event 4 and event 5.
    assert!(items[6].is_err());

    let (items, _) = read(&[&path], true);
    assert_eq!(event_ids(&items), (0..5).collect::<Vec<_>>());
    assert!(items.last().unwrap().is_err());
    assert_eq!(items.len(), 1 + 5 + 1);
}

#[test]
fn a_bad_crc_or_length_loses_only_that_record() {
    let dir = temp_dir("crc");
    let path = write_events(dir.path(), 10);
    let offs = event_offsets(&path);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[offs[3] + 16 + 40] ^= 0xff; // payload byte
    bytes[offs[7] + 4..offs[7] + 8].copy_from_slice(&5000u32.to_le_bytes()); // length
    std::fs::write(&path, &bytes).unwrap();
    let (items, _) = read(&[&path], false);
    assert_eq!(event_ids(&items), [0, 1, 2, 4, 5, 6, 8, 9]);
    let found: Vec<(Option<u64>, String)> = errors(&items)
        .iter()
        .map(|e| (e.offset(), e.to_string()))
        .collect();
    assert_eq!(found[0].0, Some(offs[3] as u64));
    assert!(found[0].1.contains("CRC mismatch"), "{}", found[0].1);
    assert!(found[0]
        .1
        .contains(&format!("{EXIT_FRAME} bytes unreadable")));
    // A length running past the end is corruption, not truncation, when frames follow.
    assert_eq!(found[1].0, Some(offs[7] as u64));
    assert!(found[1].1.contains("frame runs past the end of the file"));
    assert_eq!(found.len(), 2);
    assert!(warnings(&items).is_empty());
}

#[test]
fn garbage_at_the_end_is_corruption_not_truncation() {
    let dir = temp_dir("tail");
    let path = write_events(dir.path(), 3);
    let mut bytes = std::fs::read(&path).unwrap();
    let end = bytes.len() as u64;
    bytes.extend_from_slice(b"garbage garbage");
    std::fs::write(&path, &bytes).unwrap();
    let (items, _) = read(&[&path], false);
    assert_eq!(event_ids(&items), [0, 1, 2]);
    assert!(warnings(&items).is_empty());
    let errs = errors(&items);
    assert!(matches!(
        errs[..],
        [JournalError::Corrupt { offset, len: 15, .. }] if *offset == end
    ));
}

#[test]
fn foreign_and_future_files_are_errors_and_the_others_are_still_read() {
    let dir = temp_dir("foreign");
    write_events(dir.path(), 4);
    let bogus = dir.path().join("bogus.journal");
    std::fs::write(&bogus, b"hello, this is not a journal at all").unwrap();
    let future = dir.path().join("future.journal");
    let mut header = file_header();
    header[8..10].copy_from_slice(&3u16.to_le_bytes());
    std::fs::write(&future, header).unwrap();

    let (items, stats) = read(&[dir.path()], false);
    let errs: Vec<String> = errors(&items).iter().map(|e| e.to_string()).collect();
    assert_eq!(
        errs,
        [
            format!("{}: not a sigtrace journal", bogus.display()),
            format!(
                "{}: journal format version 3 is newer than this sigtrace supports (up to 2)",
                future.display()
            ),
        ]
    );
    assert_eq!(event_ids(&items), [0, 1, 2, 3]);
    assert_eq!((stats.failed_files, stats.files), (2, 1));

    let (items, _) = read(&[dir.path()], true);
    assert_eq!(items.len(), 1);
    assert!(matches!(&items[0], Err(JournalError::NotAJournal { path }) if *path == bogus));

    // A missing input names its path; lenient mode goes on.
    let missing = dir.path().join("missing.journal");
    let (items, _) = read(&[&missing, &dir.path().join("bogus.journal")], false);
    assert!(errors(&items)[0]
        .to_string()
        .starts_with(&format!("{}: cannot read the journal:", missing.display())));
    assert_eq!(errors(&items).len(), 2);
}

#[test]
fn unknown_record_types_are_skipped_and_counted() {
    let dir = temp_dir("unknown");
    let path = write_events(dir.path(), 2);
    let mut bytes = std::fs::read(&path).unwrap();
    let payload = b"a record from the future";
    bytes.extend_from_slice(&frame_header(999, &[payload]));
    bytes.extend_from_slice(payload);
    let ev = exit_record(2);
    bytes.extend_from_slice(&frame_header(record_type::KERNEL, &[&ev]));
    bytes.extend_from_slice(&ev);
    // A known type with a malformed payload is an error; reading goes on.
    bytes.extend_from_slice(&frame_header(record_type::LOST, &[b"abc"]));
    bytes.extend_from_slice(b"abc");
    let ev = exit_record(3);
    bytes.extend_from_slice(&frame_header(record_type::KERNEL, &[&ev]));
    bytes.extend_from_slice(&ev);
    std::fs::write(&path, &bytes).unwrap();

    let (items, stats) = read(&[&path], false);
    assert_eq!(event_ids(&items), [0, 1, 2, 3]);
    assert_eq!(stats.unknown_skipped, 1);
    assert_eq!(stats.bad_records, 1);
    let errs = errors(&items);
    assert!(matches!(
        errs[..],
        [JournalError::BadRecord { what: "lost", .. }]
    ));
    assert!(warnings(&items).is_empty());
}
