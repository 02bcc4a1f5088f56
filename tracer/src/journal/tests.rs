//! Journal tests: round trips, rotation, and every kind of damage.
use std::path::{Path, PathBuf};

use tracer_common::{kind, Header, ProcessExit, SignalGenerate, TaskInfo};

use super::format::{file_header, frame_header, utc_stamp};
use super::*;
use crate::decode::{encode, KernelRecord};

/// A fresh directory, removed on drop.
fn temp_dir(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("sigtrace-journal-test-{name}-"))
        .tempdir()
        .expect("temp dir")
}

const OFFSET: i64 = 1_000_000_000;

fn session() -> SessionInfo {
    SessionInfo {
        version: "0.1.0-test".to_string(),
        hostname: "node-a".to_string(),
        clock_offset_ns: OFFSET,
        started_wall_ns: 42,
        boot_id: "b00t".to_string(),
        shaping: None,
    }
}

/// A 96-byte exit record whose timestamp is 1000 + i and pid i.
fn exit_record(i: u64) -> Vec<u8> {
    encode(&KernelRecord::Exit(ProcessExit {
        header: Header {
            kind: kind::PROCESS_EXIT,
            cpu: 0,
            ts_ns: 1000 + i,
        },
        task: TaskInfo {
            tgid: i as u32,
            ..Default::default()
        },
        exit_code: 0,
        group_dead: 1,
    }))
}

const EXIT_FRAME: usize = 16 + 96;

fn container(id: &str) -> ContainerInfo {
    ContainerInfo {
        id: id.to_string(),
        runtime: "containerd".to_string(),
        pod: Some("web-0".to_string()),
        namespace: Some("prod".to_string()),
        workload: Some(crate::container::workload::from_pod_name("web-0")),
        cgroup_id: 77,
        cgroup_path: format!("/kubepods/pod1/{id}"),
        ..Default::default()
    }
}

/// One frame per record, as version 1 wrote them: the frame-level damage tests cut and flip
/// bytes of particular records.
fn frames() -> JournalOptions {
    JournalOptions {
        compress: false,
        ..JournalOptions::default()
    }
}

/// Writes a journal of `n` exit events, one frame each; returns its file.
fn write_events(dir: &Path, n: u64) -> PathBuf {
    let mut w = JournalWriter::open(dir, frames(), session()).unwrap();
    for i in 0..n {
        w.append_kernel(&exit_record(i)).unwrap();
    }
    w.flush().unwrap();
    w.path().to_path_buf()
}

/// What the reader lent, copied out (the tests keep items past the next read).
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)] // test-only copies; size does not matter
enum Owned {
    Session(SessionInfo),
    Kernel(Vec<u8>),
    Lost { count: u64, mono_ns: u64 },
    Container { cgroup_id: u64, info: ContainerInfo },
    Note(String),
    Gone(crate::driver::Gone),
    Warning(JournalWarning),
}

/// A process found gone without a traced exit.
const GONE_PROC: crate::driver::Gone = crate::driver::Gone {
    pid: 4321,
    start_ns: 77_000,
    mono_ns: 9_000,
};

#[derive(Clone, Debug)]
struct OwnedItem {
    path: Arc<Path>,
    offset: u64,
    clock: Option<Clock>,
    kind: Owned,
}

impl OwnedItem {
    fn new(i: &Item<'_>) -> Self {
        let kind = match &i.kind {
            ItemKind::Frame(Frame::Session(s)) => Owned::Session((*s).clone()),
            ItemKind::Frame(Frame::Kernel(b)) => Owned::Kernel(b.to_vec()),
            &ItemKind::Frame(Frame::Lost { count, mono_ns }) => Owned::Lost { count, mono_ns },
            ItemKind::Frame(Frame::Container { cgroup_id, info }) => Owned::Container {
                cgroup_id: *cgroup_id,
                info: (*info).clone(),
            },
            ItemKind::Frame(Frame::Note(t)) => Owned::Note(t.to_string()),
            &ItemKind::Frame(Frame::Gone(g)) => Owned::Gone(g),
            ItemKind::Warning(w) => Owned::Warning(w.clone()),
        };
        Self {
            path: Arc::clone(i.path),
            offset: i.offset,
            clock: i.clock,
            kind,
        }
    }

    fn event(&self) -> Option<Result<Event, JournalError>> {
        match &self.kind {
            Owned::Kernel(b) => Some(decode_event(b, self.clock, &self.path, self.offset)),
            _ => None,
        }
    }
}

fn read(paths: &[&Path], strict: bool) -> (Vec<Result<OwnedItem, JournalError>>, ReplayStats) {
    let mut r = JournalReader::new(paths.iter().copied(), ReaderOptions { strict });
    let mut items = Vec::new();
    while let Some(i) = r.next_item() {
        items.push(i.map(|i| OwnedItem::new(&i)));
    }
    (items, *r.stats())
}

/// The event ids (timestamp - 1000) of the event items, in order.
fn event_ids(items: &[Result<OwnedItem, JournalError>]) -> Vec<u64> {
    items
        .iter()
        .filter_map(|i| i.as_ref().ok()?.event())
        .map(|e| e.unwrap().mono_ns - 1000)
        .collect()
}

fn errors(items: &[Result<OwnedItem, JournalError>]) -> Vec<&JournalError> {
    items.iter().filter_map(|i| i.as_ref().err()).collect()
}

fn warnings(items: &[Result<OwnedItem, JournalError>]) -> Vec<&JournalWarning> {
    items
        .iter()
        .filter_map(|i| match &i.as_ref().ok()?.kind {
            Owned::Warning(w) => Some(w),
            _ => None,
        })
        .collect()
}

#[test]
fn every_record_type_round_trips() {
    let dir = temp_dir("roundtrip");
    let generate = encode(&KernelRecord::Generate(SignalGenerate {
        header: Header {
            kind: kind::SIGNAL_GENERATE,
            cpu: 3,
            ts_ns: 5_000,
        },
        sig: 15,
        ..Default::default()
    }));
    let info = container("abc");
    let mut w = JournalWriter::open(dir.path(), frames(), session()).unwrap();
    w.append_kernel(&generate).unwrap();
    w.append_lost(7, 6_000).unwrap();
    w.append_container(77, &info).unwrap();
    w.append_container(77, &info).unwrap(); // same again: not written
    w.append_note("agent stopping").unwrap();
    w.append_gone(GONE_PROC).unwrap();
    w.flush().unwrap();
    let path = w.path().to_path_buf();
    drop(w);

    let (items, stats) = read(&[dir.path()], true);
    let items: Vec<OwnedItem> = items.into_iter().map(Result::unwrap).collect();
    let kinds: Vec<Owned> = items.iter().map(|i| i.kind.clone()).collect();
    assert_eq!(
        kinds,
        vec![
            Owned::Session(session()),
            Owned::Kernel(generate.clone()),
            Owned::Lost {
                count: 7,
                mono_ns: 6_000
            },
            Owned::Container {
                cgroup_id: 77,
                info
            },
            Owned::Note("agent stopping".to_string()),
            Owned::Gone(GONE_PROC),
        ]
    );
    assert!(items.iter().all(|i| *i.path == *path));
    assert!(items
        .iter()
        .all(|i| i.clock == Some(Clock { offset_ns: OFFSET })));
    // Session payload: 16 + (2 + 10) + (2 + 6) + (2 + 4) = 42 bytes.
    let offsets: Vec<u64> = items.iter().map(|i| i.offset).collect();
    assert_eq!(offsets[..3], [16, 16 + 16 + 42, 16 + 16 + 42 + 16 + 192]);
    let ev = items[1].event().unwrap().unwrap();
    assert_eq!((ev.mono_ns, ev.wall_ns, ev.cpu), (5_000, 5_000 + OFFSET, 3));
    assert!(items[2].event().is_none());
    assert_eq!(
        stats,
        ReplayStats {
            files: 1,
            records: 6,
            events: 1,
            ..Default::default()
        }
    );
}

#[test]
fn current_session_describes_this_process() {
    let s = SessionInfo::current(Clock { offset_ns: 5 });
    assert_eq!(s.version, env!("CARGO_PKG_VERSION"));
    assert_eq!(s.clock(), Clock { offset_ns: 5 });
    assert!(s.started_wall_ns > 1_600_000_000_000_000_000);
}

#[test]
fn rotation_caps_the_directory_and_spares_foreign_files() {
    let dir = temp_dir("rotate");
    let foreign = [
        ("notes.txt", &b"hello"[..]),
        ("other.journal", &b"xx"[..]),
        // Our name pattern but not our magic: sorts first, must survive.
        (
            "sigtrace-00000000T000000Z-000000.journal",
            &b"not ours at all"[..],
        ),
    ];
    for (name, content) in foreign {
        std::fs::write(dir.path().join(name), content).unwrap();
    }
    let options = JournalOptions {
        max_file_bytes: 1500,
        max_total_bytes: 5000,
        compress: false,
    };
    let mut w = JournalWriter::open(dir.path(), options, session()).unwrap();
    w.append_container(9, &container("c9")).unwrap();
    let mut created = vec![w.path().to_path_buf()];
    for i in 0..300 {
        w.append_kernel(&exit_record(i)).unwrap();
        if created.last().map(PathBuf::as_path) != Some(w.path()) {
            created.push(w.path().to_path_buf());
        }
    }
    w.flush().unwrap();
    drop(w);

    // Preamble: header, session (16 + 42), container; then 112-byte event frames.
    let container_frame = 16 + 8 + serde_json::to_vec(&container("c9")).unwrap().len();
    let per_file = (1500 - 16 - 58 - container_frame) / EXIT_FRAME;
    assert_eq!(per_file, 10);
    assert_eq!(created.len(), 30);
    let mut sorted = created.clone();
    sorted.sort();
    assert_eq!(sorted, created, "file names sort in creation order");
    let remaining: Vec<&PathBuf> = created.iter().filter(|p| p.exists()).collect();
    // Each file is 1400-odd bytes: two old ones plus the current one at its 1500-byte cap fit.
    assert_eq!(remaining, created[27..].iter().collect::<Vec<_>>());
    let sizes: Vec<u64> = remaining
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .collect();
    assert!(sizes.iter().all(|&s| s <= 1500), "{sizes:?}");
    assert!(sizes.iter().sum::<u64>() <= 5000);
    for (name, content) in foreign {
        assert_eq!(std::fs::read(dir.path().join(name)).unwrap(), content);
    }

    // Every file replays alone: session first, then the container it knew.
    for path in &remaining {
        let (items, _) = read(&[path.as_path()], true);
        let first: Vec<&Owned> = items[..2]
            .iter()
            .map(|i| &i.as_ref().unwrap().kind)
            .collect();
        assert_eq!(first[0], &Owned::Session(session()));
        assert!(matches!(first[1], Owned::Container { cgroup_id: 9, .. }));
    }
    // The directory: the two foreign .journal files are errors, the events are the newest.
    let (items, _) = read(&[dir.path()], false);
    let errs = errors(&items);
    assert_eq!(errs.len(), 2);
    assert!(errs
        .iter()
        .all(|e| matches!(e, JournalError::NotAJournal { .. })));
    let ids = event_ids(&items);
    assert_eq!(ids, (300 - ids.len() as u64..300).collect::<Vec<_>>());
    assert_eq!(ids.len(), 30);
}

#[test]
fn a_new_writer_in_the_same_second_sorts_after_the_old_one() {
    let dir = temp_dir("reopen");
    let a = write_events(dir.path(), 1);
    let b = write_events(dir.path(), 1);
    assert!(a < b, "{a:?} {b:?}");
    let (items, _) = read(&[dir.path()], true);
    assert_eq!(event_ids(&items), [0, 0]);
}

#[test]
fn an_event_before_any_session_has_no_clock() {
    let dir = temp_dir("nosession");
    let path = dir.path().join("x.journal");
    let ev = exit_record(0);
    let mut bytes = file_header().to_vec();
    bytes.extend_from_slice(&frame_header(record_type::KERNEL, &[&ev]));
    bytes.extend_from_slice(&ev);
    std::fs::write(&path, &bytes).unwrap();
    let (items, _) = read(&[&path], true);
    let item = items[0].as_ref().unwrap();
    assert_eq!(item.clock, None);
    assert!(matches!(
        item.event(),
        Some(Err(JournalError::NoSession { offset: 16, .. }))
    ));
}

#[test]
fn lent_kernel_frames_are_the_bytes_written() {
    let dir = temp_dir("lend");
    let path = write_events(dir.path(), 5);
    let mut r = JournalReader::new([&path], ReaderOptions::default());
    let mut seen = Vec::new();
    while let Some(item) = r.next_item() {
        let item = item.unwrap();
        if let ItemKind::Frame(Frame::Kernel(bytes)) = item.kind {
            assert_eq!(bytes, &exit_record(seen.len() as u64)[..]);
            seen.push(item.event().unwrap().unwrap().mono_ns);
        }
    }
    assert_eq!(seen, [1000, 1001, 1002, 1003, 1004]);
    assert_eq!(r.session(), Some(&session()));
}

#[test]
fn writer_errors_name_the_path() {
    let dir = temp_dir("errors");
    let blocker = dir.path().join("blocker");
    std::fs::write(&blocker, b"a file").unwrap();
    let target = blocker.join("journal");
    let Err(e) = JournalWriter::open(&target, JournalOptions::default(), session()) else {
        panic!("opened a journal under a file")
    };
    assert!(e.to_string().starts_with(&format!(
        "{}: cannot create the journal directory",
        target.display()
    )));
    assert_eq!(e.path(), target);

    let mut w = JournalWriter::open(dir.path(), frames(), session()).unwrap();
    let huge = "x".repeat(MAX_PAYLOAD + 1);
    assert!(matches!(
        w.append_note(&huge),
        Err(JournalError::TooLarge { len, .. }) if len == MAX_PAYLOAD + 1
    ));
}

#[test]
fn utc_stamps() {
    assert_eq!(utc_stamp(0), "19700101T000000Z");
    assert_eq!(utc_stamp(1_709_251_199), "20240229T235959Z");
    assert_eq!(utc_stamp(1_709_251_200), "20240301T000000Z");
    assert_eq!(utc_stamp(4_102_444_800), "21000101T000000Z");
    for secs in [0, 1_709_251_199, 4_102_444_800] {
        assert_eq!(crate::event::parse_utc_stamp(&utc_stamp(secs)), Some(secs));
    }
    assert_eq!(crate::event::parse_utc_stamp("00000000T000000Z"), None);
}

/// A directory's `*.journal` entries that are not regular files are reported, by name, not
/// skipped silently; a FIFO given by name is refused instead of hanging the replay.
#[test]
fn odd_entries_are_reported_and_fifos_refused() {
    let dir = temp_dir("odd");
    write_events(dir.path(), 3);
    let fifo = dir.path().join("a-fifo.journal");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid C string path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    std::os::unix::fs::symlink(
        dir.path().join("nowhere"),
        dir.path().join("b-dangling.journal"),
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("c-dir.journal")).unwrap();
    let (items, _) = read(&[dir.path()], false);
    let errs: Vec<String> = errors(&items).iter().map(|e| e.to_string()).collect();
    assert_eq!(errs.len(), 3, "{errs:?}");
    assert!(
        errs[0].contains("a-fifo.journal") && errs[0].contains("a FIFO"),
        "{errs:?}"
    );
    assert!(errs[1].contains("b-dangling.journal"), "{errs:?}");
    assert!(
        errs[2].contains("c-dir.journal") && errs[2].contains("directory"),
        "{errs:?}"
    );
    assert_eq!(event_ids(&items), [0, 1, 2]);
    let (items, _) = read(&[&fifo], false);
    assert!(matches!(
        errors(&items)[..],
        [JournalError::NotRegular { .. }]
    ));
}

/// Kernel records replayed through the driver, counted; and the errors it reported.
fn drive_count(path: &Path) -> (u64, u64, ReplayStats) {
    use crate::driver::{drive, Consumer, FeedError, Input, OnBadInput};
    struct Count(u64);
    impl Consumer for Count {
        fn input(&mut self, input: Input<'_>) -> Result<(), FeedError> {
            if let Input::Kernel(bytes, clock) = input {
                KernelRecord::try_from(bytes)?.into_event(&clock.ok_or(FeedError::NoClock)?);
                self.0 += 1;
            }
            Ok(())
        }
        fn finish(&mut self) -> anyhow::Result<()> {
            Ok(())
        }
    }
    let mut r = JournalReader::new([path], ReaderOptions::default());
    let mut c = Count(0);
    let d = drive(&mut r, &mut c, OnBadInput::ReportFirst).unwrap();
    (c.0, d.skipped, *r.stats())
}

/// The session frame at the head of a file is damaged: the events before its next copy
/// (every MiB) are skipped with one error; the rest replays.
#[test]
fn a_damaged_session_frame_loses_only_what_precedes_its_next_copy() {
    let dir = temp_dir("session");
    let n = 20_000u64; // ~2.1 MiB: two more copies of the session frame
    let path = write_events(dir.path(), n);
    let (all, skipped, _) = drive_count(&path);
    assert_eq!((all, skipped), (n, 0));
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[16 + 16 + 2] ^= 0xff; // in the first session frame's payload
    std::fs::write(&path, &bytes).unwrap();
    let (kept, skipped, stats) = drive_count(&path);
    // One for the damaged frame, one for the untimed events after it.
    assert_eq!(skipped, 2, "{stats:?}");
    let per_mib = (super::writer::SESSION_EVERY as usize / EXIT_FRAME) as u64;
    assert!(
        kept >= n - per_mib - 1 && kept < n,
        "kept {kept} of {n}: {stats:?}"
    );
    assert_eq!(stats.untimed, n - kept);
}

/// Frames whose CRC is right but whose payload the kernel side never writes are refused,
/// each with an error naming it; the good ones around them replay.
#[test]
fn forged_payloads_are_refused() {
    let dir = temp_dir("forged");
    let path = dir.path().join("forged.journal");
    let mut bytes = file_header().to_vec();
    let mut session_payload = Vec::new();
    super::format::encode_session(&session(), &mut session_payload);
    bytes.extend_from_slice(&frame_header(record_type::SESSION, &[&session_payload]));
    bytes.extend_from_slice(&session_payload);
    let mut frames = vec![exit_record(5_000)];
    let mut long = exit_record(5_001);
    long.push(0);
    frames.push(long); // wrong size
    let mut kind99 = exit_record(5_002);
    kind99[0] = 99;
    frames.push(kind99); // unknown kind
    frames.push(exit_record(1)); // 5 s back... within a minute: fine
    let mut back = exit_record(0);
    back[8..16].copy_from_slice(&1u64.to_le_bytes());
    frames.push(exit_record(200_000_000_000)); // 200 s later
    frames.push(back); // then 200 s back in time
    let mut nameless = exit_record(200_000_000_001);
    nameless[16 + 24..16 + 40].copy_from_slice(&[b'x'; 16]); // comm without NUL
    frames.push(nameless);
    frames.push(exit_record(200_000_000_002));
    for f in &frames {
        bytes.extend_from_slice(&frame_header(record_type::KERNEL, &[f]));
        bytes.extend_from_slice(f);
    }
    std::fs::write(&path, &bytes).unwrap();
    let (kept, skipped, stats) = drive_count(&path);
    assert_eq!(kept, 4, "{stats:?}");
    assert_eq!(skipped, 4, "{stats:?}");
    assert_eq!(stats.bad_records, 3, "{stats:?}");
}

/// A file larger than the reader's window, damaged around the window's edges and ending in
/// 256 MiB of zeros (a sparse file): every intact record replays, each damage is found, and
/// the reader's memory stays that of its window.
#[test]
fn big_files_are_read_through_a_bounded_window() {
    let dir = temp_dir("big");
    let n = 30_000u64; // ~3.3 MiB
    let path = write_events(dir.path(), n);
    let offs = event_offsets(&path);
    let mut bytes = std::fs::read(&path).unwrap();
    // Damage in the first window, across the first window's end, and in a later one.
    let window = 2 * (16 + MAX_PAYLOAD);
    let victims: Vec<usize> = [1000usize, 0, 25_000]
        .iter()
        .map(|&i| {
            if i == 0 {
                offs.iter()
                    .position(|&o| o + EXIT_FRAME > window - 40)
                    .unwrap()
            } else {
                i
            }
        })
        .collect();
    for &i in &victims {
        bytes[offs[i] + 20] ^= 0xff;
    }
    std::fs::write(&path, &bytes).unwrap();
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(bytes.len() as u64 + (256 << 20)).unwrap();
    drop(f);
    let mut r = JournalReader::new([&path], ReaderOptions::default());
    let (mut events, mut errs, mut warns) = (0u64, Vec::new(), Vec::new());
    while let Some(item) = r.next_item() {
        match item {
            Ok(i) if i.event().is_some() => events += 1,
            Ok(Item {
                kind: ItemKind::Warning(w),
                ..
            }) => warns.push(w),
            Ok(_) => {}
            Err(e) => errs.push(e.offset()),
        }
    }
    assert_eq!(events, n - 3);
    let mut expect: Vec<Option<u64>> = victims.iter().map(|&i| Some(offs[i] as u64)).collect();
    expect.sort();
    assert_eq!(errs, expect);
    assert!(
        matches!(&warns[..], [JournalWarning::Truncated { offset, tail_bytes, .. }]
            if *offset == bytes.len() as u64 && *tail_bytes == 256 << 20),
        "{warns:?}"
    );
    assert!(r.window_capacity() <= 2 * window, "{}", r.window_capacity());
}

mod blocks;
mod clock;
mod damage;
use damage::event_offsets;
mod session;
