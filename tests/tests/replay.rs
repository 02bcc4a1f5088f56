//! End-to-end: `sigtrace replay` over the journal of a real run gives exactly the records the
//! agent printed live, and damaged journals (truncated, garbage in the middle, wrong format)
//! give their documented results (tracer/src/journal/mod.rs, "Damage").
use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
    process::{Command, Output},
    time::Duration,
};

use serde_json::Value;
use tests::{stop::stop, *};

const T: Duration = Duration::from_secs(10);

/// A recorded run: scenario X (S12 in a pod: PID 1 exits at once, its child is orphan-killed;
/// a container record), then,
/// once X's records are printed and the journal has been flushed, scenario Y (S5: tini
/// forwards to sleep, and S7: a slow handler SIGKILLed after the grace), then two "tail"
/// processes so that the last frames of the journal are not about X or Y.
struct Recorded {
    data: TempDir,
    /// X's pod; its container record is X's.
    pod: FakePod,
    /// Every line the agent printed.
    live: Vec<Value>,
    x_pids: Vec<u32>,
    y_pids: Vec<u32>,
    /// The journal file being written when Y started, and its size then: Y's events all lie
    /// at or after that offset (or in a later file).
    before_y: (PathBuf, u64),
}

fn journal_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .expect("journal dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "journal"))
        .collect();
    v.sort();
    v
}

fn wait_record(agent: &Agent, pid: u32) {
    agent
        .wait_for(T, |l| l["type"] == "process_stop" && l["pid"] == pid)
        .unwrap_or_else(|| panic!("no live record for {pid}: {}", agent.stderr()));
}

fn record_run() -> Recorded {
    let data = TempDir::new("journal");
    let pod = FakePod::new("replay", "replay-test");
    let agent = Agent::start(&[
        "run",
        "--json",
        "--data-dir",
        data.path().to_str().unwrap(),
        "--containerd-state",
        pod.state.path().to_str().unwrap(),
    ]);

    // X: S12.
    let ready_dir = TempDir::new("ready");
    let ready = ready_dir.path().join("x");
    let victim = victim_bin();
    let (_ns_x, init) = in_pid_namespace(&[
        victim.to_str().unwrap(),
        "--handle",
        "TERM:0:0",
        "--children",
        "1",
        "--ready",
        ready.to_str().unwrap(),
    ]);
    assert!(wait_until(T, || ready.exists()), "X not ready");
    let orphan = child_named(init, "victim");
    pod.cgroup.add(init);
    pod.cgroup.add(orphan);
    assert!(stop(init, libc::SIGTERM, Duration::from_secs(2)).exited_in_grace);
    wait_record(&agent, init);
    wait_record(&agent, orphan);
    agent.container_stop(T, &pod.id);
    // The journal is flushed right after the records are printed.
    std::thread::sleep(Duration::from_millis(200));
    let current = journal_files(data.path()).pop().expect("a journal file");
    let size = fs::metadata(&current).expect("journal file").len();

    // Y: S5 and S7.
    let (_ns_y, tini) = in_pid_namespace(&["tini", "-s", "--", "sleep", "1000"]);
    assert!(wait_until(T, || comm(tini) == "tini"));
    let sleep = child_named(tini, "sleep");
    let slow = Proc::victim(&["--handle", "TERM:0:5000"]);
    assert!(stop(tini, libc::SIGTERM, Duration::from_secs(5)).exited_in_grace);
    assert!(stop(slow.pid, libc::SIGTERM, Duration::from_millis(500)).killed);
    for p in [tini, sleep, slow.pid] {
        wait_record(&agent, p);
    }

    // Tail: more frames after Y's.
    for _ in 0..2 {
        let mut t = Proc::victim(&["--handle", "TERM:0:0"]);
        kill(t.pid, libc::SIGTERM);
        t.wait_exit(T).expect("tail victim exit");
        wait_record(&agent, t.pid);
    }

    let out = agent.stop();
    assert_eq!(
        out.status.and_then(|s| s.code()),
        Some(0),
        "graceful agent stop: {}",
        out.stderr
    );
    Recorded {
        data,
        pod,
        live: out.lines,
        x_pids: vec![init, orphan],
        y_pids: vec![tini, sleep, slow.pid],
        before_y: (current, size),
    }
}

/// `pid → process_stop record` for the given pids (each must have exactly one).
fn by_pid(lines: &[Value], pids: &[u32]) -> BTreeMap<u32, Value> {
    let mut m = BTreeMap::new();
    for l in lines.iter().filter(|l| l["type"] == "process_stop") {
        let Some(pid) = l["pid"].as_u64().map(|p| p as u32) else {
            continue;
        };
        if pids.contains(&pid) {
            assert!(
                m.insert(pid, l.clone()).is_none(),
                "two records for pid {pid}"
            );
        }
    }
    m
}

fn replay(args: &[&str]) -> Output {
    Command::new(sigtrace_bin())
        .arg("replay")
        .args(args)
        .output()
        .expect("running sigtrace replay")
}

fn stdout_lines(o: &Output) -> Vec<Value> {
    parse_lines(&String::from_utf8_lossy(&o.stdout))
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts that the replayed records of `pids` equal the live ones.
fn assert_same(live: &[Value], replayed: &[Value], pids: &[u32], what: &str) {
    let l = by_pid(live, pids);
    assert_eq!(l.len(), pids.len(), "live records for {pids:?}");
    let r = by_pid(replayed, pids);
    for (pid, rec) in &l {
        assert_eq!(
            r.get(pid),
            Some(rec),
            "{what}: replayed record of {pid} differs from the live one"
        );
    }
    assert_eq!(r.len(), l.len(), "{what}");
}

/// Asserts that the replayed container record of `id` equals the live one.
fn assert_same_container(live: &[Value], replayed: &[Value], id: &str, what: &str) {
    let of = |lines: &[Value]| -> Vec<Value> {
        lines
            .iter()
            .filter(|l| l["type"] == "container_stop" && l["container"]["id"] == id)
            .cloned()
            .collect()
    };
    let l = of(live);
    assert_eq!(l.len(), 1, "{what}: one live container record for {id}");
    assert_eq!(
        of(replayed),
        l,
        "{what}: replayed container record differs from the live one"
    );
}

/// Copies the journal files of `from` into a new directory.
fn copy_journal(from: &Path, tag: &str) -> TempDir {
    let d = TempDir::new(tag);
    for f in journal_files(from) {
        fs::copy(&f, d.path().join(f.file_name().unwrap())).expect("copying a journal file");
    }
    d
}

/// (offset, total length) of every frame of a journal file (walked by the length field, no
/// CRC check: for intact files).
fn frames(bytes: &[u8]) -> Vec<(usize, usize, u16)> {
    let mut out = Vec::new();
    let mut pos = 16;
    while pos + 16 <= bytes.len() {
        assert_eq!(
            &bytes[pos..pos + 4],
            &[0xF5, b'S', b'J', b'F'],
            "frame marker at {pos}"
        );
        let len = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().unwrap()) as usize;
        let rtype = u16::from_le_bytes([bytes[pos + 8], bytes[pos + 9]]);
        if pos + 16 + len > bytes.len() {
            break;
        }
        out.push((pos, 16 + len, rtype));
        pos += 16 + len;
    }
    out
}

fn name_in(dir: &TempDir, src: &Path) -> PathBuf {
    dir.path().join(src.file_name().unwrap())
}

#[test]
fn replay_gives_exactly_the_live_records() {
    let run = record_run();
    let files = journal_files(run.data.path());
    assert!(!files.is_empty(), "no journal written");
    let o = replay(&[run.data.path().to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "replay failed: {}", stderr(&o));
    let replayed = stdout_lines(&o);
    let pids: Vec<u32> = run.x_pids.iter().chain(&run.y_pids).copied().collect();
    assert_same(&run.live, &replayed, &pids, "replay");
    assert_same_container(&run.live, &replayed, &run.pod.id, "replay");
    // Spot-check that these are the scenario records, not something vacuous.
    let r = by_pid(&replayed, &pids);
    let d = |p: u32| r[&p]["diagnosis"].as_str().unwrap().to_string();
    assert_eq!(d(run.x_pids[0]), "graceful");
    assert_eq!(d(run.x_pids[1]), "orphan_killed");
    assert_eq!(d(run.y_pids[1]), "default_action");
    assert_eq!(d(run.y_pids[2]), "slow_handler");
    assert_eq!(r[&run.x_pids[0]]["container"]["namespace"], "replay-test");
    assert!(
        !stderr(&o).contains("warning"),
        "clean journal gives no warning: {}",
        stderr(&o)
    );
}

#[test]
fn truncated_journal_replays_up_to_the_cut_with_a_warning() {
    let run = record_run();
    let last = journal_files(run.data.path()).pop().unwrap();
    let bytes = fs::read(&last).unwrap();
    let fr = frames(&bytes);
    assert!(fr.len() >= 4, "too few frames");
    let (l_off, l_len, _) = fr[fr.len() - 1];
    let (p_off, p_len, _) = fr[fr.len() - 2];
    let cuts = [
        l_off + 3,
        l_off + 16,
        l_off + l_len - 1,
        p_off + 10,
        p_off + 16 + (p_len - 16) / 2,
    ];
    let pids: Vec<u32> = run.x_pids.iter().chain(&run.y_pids).copied().collect();
    for cut in cuts {
        let d = copy_journal(run.data.path(), "trunc");
        let f = name_in(&d, &last);
        fs::write(&f, &bytes[..cut]).unwrap();
        let o = replay(&[d.path().to_str().unwrap(), "--json"]);
        let err = stderr(&o);
        assert!(
            o.status.success(),
            "cut at {cut}: replay of a truncated journal must succeed: {err}"
        );
        assert!(err.contains("warning"), "cut at {cut}: no warning: {err}");
        assert!(
            err.contains(f.to_str().unwrap()),
            "cut at {cut}: warning does not name the file: {err}"
        );
        let frame_start = if cut >= l_off { l_off } else { p_off };
        assert!(
            err.contains(&format!("offset {frame_start}")),
            "cut at {cut}: warning does not give offset {frame_start}: {err}"
        );
        assert_same(
            &run.live,
            &stdout_lines(&o),
            &pids,
            &format!("cut at {cut}"),
        );
    }
}

#[test]
fn garbage_in_the_middle_is_skipped_or_stops_strict_replay() {
    let run = record_run();
    let (file, size_before_y) = &run.before_y;
    let bytes = fs::read(file).unwrap();
    // A frame of events (a compressed block; a kernel record in a version 1 file) wholly
    // before Y's events, in the second half of those there then.
    let fr = frames(&bytes);
    let candidates: Vec<_> = fr
        .iter()
        .filter(|&&(off, len, t)| (t == 2 || t == 6) && (off + len) as u64 <= *size_before_y)
        .collect();
    assert!(!candidates.is_empty(), "no event frame before Y: {fr:?}");
    let &(off, len, _) = candidates[candidates.len() / 2];
    let d = copy_journal(run.data.path(), "garbage");
    let f = name_in(&d, file);
    let mut damaged = bytes.clone();
    for b in &mut damaged[off..off + len.min(40)] {
        *b = 0xA5;
    }
    fs::write(&f, &damaged).unwrap();

    // Lenient (default): the damage is reported with file and offset, the rest replayed.
    let o = replay(&[d.path().to_str().unwrap(), "--json"]);
    let err = stderr(&o);
    assert!(o.status.success(), "lenient replay must succeed: {err}");
    let expect = format!("{}: corrupt journal data at byte offset {off}", f.display());
    assert!(err.contains(&expect), "expected {expect:?} in: {err}");
    assert_same(
        &run.live,
        &stdout_lines(&o),
        &run.y_pids,
        "records after the damage",
    );

    // Strict: stops with an error naming the file and offset.
    let o = replay(&["--strict", d.path().to_str().unwrap(), "--json"]);
    let err = stderr(&o);
    assert!(
        !o.status.success(),
        "strict replay of a damaged journal must fail: {err}"
    );
    assert!(
        err.contains("--strict") && err.contains(&expect),
        "expected {expect:?} in: {err}"
    );
    assert!(
        by_pid(&stdout_lines(&o), &run.y_pids).is_empty(),
        "strict replay went past the damage"
    );
}

#[test]
fn wrong_format_files_are_errors_and_other_files_still_replay() {
    let run = record_run();
    let d = copy_journal(run.data.path(), "foreign");
    let text = d.path().join("aaa-notes.journal");
    fs::write(
        &text,
        "this is a text file, not a sigtrace journal\n".repeat(4),
    )
    .unwrap();
    let good = journal_files(run.data.path()).pop().unwrap();
    let mut magic = fs::read(&good).unwrap();
    magic[..8].copy_from_slice(b"SIGTRACX");
    let bad_magic = d.path().join("bbb-magic.journal");
    fs::write(&bad_magic, &magic).unwrap();
    let mut newer = fs::read(&good).unwrap();
    newer[8..10].copy_from_slice(&3u16.to_le_bytes());
    let newer_f = d.path().join("ccc-newer.journal");
    fs::write(&newer_f, &newer).unwrap();

    // Lenient: an error per foreign file, the valid files replayed.
    let o = replay(&[d.path().to_str().unwrap(), "--json"]);
    let err = stderr(&o);
    assert!(o.status.success(), "lenient replay must succeed: {err}");
    for p in [&text, &bad_magic] {
        let expect = format!("{}: not a sigtrace journal", p.display());
        assert!(err.contains(&expect), "expected {expect:?} in: {err}");
    }
    let expect = format!("{}: journal format version 3 is newer", newer_f.display());
    assert!(err.contains(&expect), "expected {expect:?} in: {err}");
    let pids: Vec<u32> = run.x_pids.iter().chain(&run.y_pids).copied().collect();
    assert_same(
        &run.live,
        &stdout_lines(&o),
        &pids,
        "valid files next to foreign ones",
    );
    assert_same_container(
        &run.live,
        &stdout_lines(&o),
        &run.pod.id,
        "valid files next to foreign ones",
    );

    // Strict: the first foreign file stops the replay.
    let o = replay(&["--strict", d.path().to_str().unwrap(), "--json"]);
    let err = stderr(&o);
    assert!(!o.status.success(), "strict replay must fail: {err}");
    assert!(
        err.contains(&format!("{}: not a sigtrace journal", text.display())),
        "{err}"
    );

    // A foreign file alone: nothing to replay, an error.
    let o = replay(&[text.to_str().unwrap(), "--json"]);
    let err = stderr(&o);
    assert!(
        !o.status.success(),
        "replaying only a text file must fail: {err}"
    );
    assert!(
        err.contains(&format!("{}: not a sigtrace journal", text.display())),
        "{err}"
    );
    assert!(stdout_lines(&o).is_empty());
}

/// Filters and the summary over a real journal: `--namespace` keeps the pod's records only,
/// `--diagnosis` selects by diagnosis, `summary` gives one row for the pod's container with
/// its stop, and rows for the host processes.
#[test]
fn filters_and_the_summary_select_from_a_real_journal() {
    let run = record_run();
    let dir = run.data.path().to_str().unwrap();
    let o = replay(&[dir, "--json", "--namespace", "replay-test", "--since", "1h"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let lines = stdout_lines(&o);
    assert!(!lines.is_empty());
    assert!(
        lines
            .iter()
            .all(|l| l["container"]["namespace"] == "replay-test"),
        "{lines:#?}"
    );
    assert!(lines
        .iter()
        .any(|l| l["type"] == "container_stop" && l["container"]["id"] == run.pod.id.as_str()));
    // The pod `app-0` is a StatefulSet's by its name: workload `app`.
    let o = replay(&[dir, "--json", "--workload", "app"]);
    let lines = stdout_lines(&o);
    assert!(
        !lines.is_empty()
            && lines.iter().all(|l| l["container"]["workload"] == "app"
                && l["container"]["workload_type"] == "statefulset"),
        "{lines:#?}"
    );
    let o = replay(&[dir, "--json", "--workload", "web"]);
    assert!(stdout_lines(&o).is_empty());
    let o = replay(&[dir, "--json", "--diagnosis", "slow_handler"]);
    let lines = stdout_lines(&o);
    assert!(!lines.is_empty() && lines.iter().all(|l| l["diagnosis"] == "slow_handler"));
    assert!(
        lines.iter().any(|l| l["pid"] == run.y_pids[2]),
        "{lines:#?}"
    );
    let o = Command::new(sigtrace_bin())
        .args(["summary", dir])
        .output()
        .expect("running sigtrace summary");
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    let row = text
        .lines()
        .find(|l| l.starts_with("replay-test/app/app "))
        .unwrap_or_else(|| panic!("no row for the pod's container:\n{text}"));
    assert_eq!(
        row.split_whitespace().nth(1),
        Some("1"),
        "one stop of the pod's container: {row}"
    );
    // S12: the init was graceful, its child orphan-killed; the container takes the latter.
    assert!(row.contains("orphan_killed 1"), "{row}");
    assert!(
        text.lines().any(|l| l.starts_with("host: victim")),
        "{text}"
    );
    assert!(text.contains("slow_handler"), "{text}");
    // A bad filter value is a clear error.
    let o = replay(&[dir, "--diagnosis", "slowish"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("unknown diagnosis"), "{}", stderr(&o));
}

/// A journal recorded with `--signals` and `--stop-signal SIGUSR1` replays, with no flag, into
/// the live records: the session says what shaped them (replay, summary and report use it).
/// Without it, USR1 would start no stop in the replay and its record would be missing.
#[test]
fn replay_applies_the_recorded_stop_signals_and_emit_mask() {
    let data = TempDir::new("shaped");
    let dir = data.path().to_str().unwrap();
    let agent = Agent::start(&[
        "run",
        "--json",
        "--data-dir",
        dir,
        "--signals",
        "TERM,KILL,USR1,INT",
        "--stop-signal",
        "SIGUSR1",
        "--grace",
        "3",
    ]);
    // USR1 is this run's stop signal: a handler that exits 0 is a graceful stop by USR1.
    let mut usr1 = Proc::victim(&["--handle", "USR1:0:100"]);
    kill(usr1.pid, libc::SIGUSR1);
    usr1.wait_exit(T).expect("exits on USR1");
    // One more, killed by SIGTERM's default action.
    let mut term = Proc::victim(&[]);
    kill(term.pid, libc::SIGTERM);
    term.wait_exit(T).expect("exits on TERM");
    let pids = [usr1.pid, term.pid];
    for pid in pids {
        wait_record(&agent, pid);
    }
    let live = agent.stop().lines;
    let rec = &by_pid(&live, &pids)[&usr1.pid];
    assert_eq!(rec["stop_signal"], "SIGUSR1", "{rec}");
    assert_eq!(rec["diagnosis"], "graceful", "{rec}");
    let o = replay(&[dir, "--json"]);
    assert!(o.status.success(), "replay failed: {}", stderr(&o));
    assert_same(&live, &stdout_lines(&o), &pids, "replay without flags");
}
