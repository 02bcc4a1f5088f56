//! The wall clock against the journal: file names in write order when it goes back, and
//! a step during a session timing what follows it.
use super::*;

/// A session written while the clock was an hour ahead (or the next one with the clock an hour
/// behind): the next agent's file is still named after it, so it replays last and a tight
/// retention deletes the older session, never the newest.
#[test]
fn files_sort_in_write_order_when_the_clock_goes_back() {
    let dir = temp_dir("clock-back");
    let first = write_events(dir.path(), 5);
    let ahead = dir.path().join(format!(
        "sigtrace-{}-000000.journal",
        utc_stamp(now() + 3600)
    ));
    std::fs::rename(&first, &ahead).unwrap();
    let older = write_events(dir.path(), 5);
    assert!(
        older.file_name() > ahead.file_name(),
        "{older:?} sorts after {ahead:?}"
    );
    // A tight cap: the second session's file survives, the first one goes.
    let size = std::fs::metadata(&older).unwrap().len();
    let options = JournalOptions {
        max_file_bytes: 1000,
        max_total_bytes: 1000 + size + size / 2,
        ..frames()
    };
    let w = JournalWriter::open(dir.path(), options, session()).unwrap();
    assert!(w.path().file_name() > older.file_name());
    assert!(!ahead.exists(), "the oldest session was pruned");
    assert!(older.exists(), "the newer session was kept");
    drop(w);
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The wall clock moved during a session: the records before the move replay with the old
/// offset, those after with the new one (compressed blocks and plain frames alike).
#[test]
fn a_clock_step_times_what_follows_it() {
    for options in [JournalOptions::default(), frames()] {
        let dir = temp_dir("clock-step");
        let mut w = JournalWriter::open(dir.path(), options, session()).unwrap();
        for i in 0..3 {
            w.append_kernel(&exit_record(i)).unwrap();
        }
        w.set_clock(OFFSET + 3_600_000_000_000).unwrap();
        for i in 3..5 {
            w.append_kernel(&exit_record(i)).unwrap();
        }
        w.flush().unwrap();
        let path = w.path().to_path_buf();
        drop(w);
        let (items, _) = read(&[path.as_path()], true);
        let clocks: Vec<i64> = items
            .iter()
            .filter_map(|i| i.as_ref().ok())
            .filter(|i| matches!(i.kind, Owned::Kernel(_)))
            .map(|i| i.clock.expect("timed").offset_ns - OFFSET)
            .collect();
        let hour = 3_600_000_000_000;
        assert_eq!(clocks, [0, 0, 0, hour, hour], "{options:?}");
    }
}
