//! Trustworthy from the first second: an agent started again and again while a loop forks
//! children and SIGTERMs them (well over 100 stops a second) gives no false record for them:
//! none `signal_blocked` or `slow_handler`, none incomplete, live or replayed from its journal,
//! and its metrics count none beyond the records of other processes.
//! The loop pauses while each agent stops, so that no child is in flight at a shutdown (a
//! stop still running when a trace ends is rightly incomplete): what is tested is the start.
use std::{
    collections::HashSet,
    process::Command,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use serde_json::Value;
use tests::*;

const STARTS: usize = 10;

/// Forks `sleep 5` and SIGTERMs it at once, again and again, holding `gate` during each.
struct StopLoop {
    stop: Arc<AtomicBool>,
    gate: Arc<Mutex<()>>,
    kids: Arc<Mutex<Vec<u32>>>,
    started: Instant,
    thread: Option<JoinHandle<()>>,
}

impl StopLoop {
    fn start() -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let gate = Arc::new(Mutex::new(()));
        let kids = Arc::new(Mutex::new(Vec::new()));
        let (s, g, k) = (stop.clone(), gate.clone(), kids.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                let _held = g.lock().unwrap_or_else(|e| e.into_inner());
                let mut child = Command::new("sleep").arg("5").spawn().expect("sleep");
                k.lock().unwrap_or_else(|e| e.into_inner()).push(child.id());
                kill(child.id(), libc::SIGTERM);
                let _ = child.wait();
            }
        });
        Self {
            stop,
            gate,
            kids,
            started: Instant::now(),
            thread: Some(thread),
        }
    }

    /// Ends the loop: the children's pids and the stops per second.
    fn end(mut self) -> (HashSet<u32>, f64) {
        self.halt();
        let kids = self.kids.lock().unwrap_or_else(|e| e.into_inner());
        let rate = kids.len() as f64 / self.started.elapsed().as_secs_f64();
        (kids.iter().copied().collect(), rate)
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for StopLoop {
    fn drop(&mut self) {
        self.halt();
    }
}

/// The records of `kids`; fails on a false one. Returns how many there are.
fn assert_no_false_record(lines: &[Value], kids: &HashSet<u32>, what: &str) -> usize {
    let recs: Vec<&Value> = lines
        .iter()
        .filter(|l| {
            l["type"] == "process_stop"
                && l["pid"]
                    .as_u64()
                    .is_some_and(|p| kids.contains(&(p as u32)))
        })
        .collect();
    let wrong: Vec<String> = recs
        .iter()
        .filter(|r| {
            r["complete"] != true
                || r["diagnosis"] == "signal_blocked"
                || r["diagnosis"] == "slow_handler"
        })
        .map(|r| r.to_string())
        .collect();
    assert!(
        wrong.is_empty(),
        "{} false {what} record(s) of {} for the children:\n{}",
        wrong.len(),
        recs.len(),
        wrong.join("\n")
    );
    recs.len()
}

/// `sigtrace_process_stops_total` for `signal_blocked` and `slow_handler`, all series.
fn false_diagnoses_counted(text: &str) -> f64 {
    tests::metrics::samples(text)
        .into_iter()
        .filter(|(name, _)| {
            name.starts_with("sigtrace_process_stops_total{")
                && (name.contains(r#"diagnosis="signal_blocked""#)
                    || name.contains(r#"diagnosis="slow_handler""#))
        })
        .map(|(_, v)| v)
        .sum()
}

#[test]
fn agent_starts_during_a_stop_storm_give_no_false_record() {
    let top = TempDir::new("starts");
    let data = top.path().join("j");
    let data_arg = data.to_str().expect("path").to_string();
    let storm = StopLoop::start();
    let mut live = Vec::new();
    let mut counted = 0.0;
    for i in 0..STARTS {
        let addr = format!("127.0.0.1:{}", tests::metrics::free_port());
        let mut args = vec!["run", "--json", "--metrics", &addr];
        // Every other start keeps a journal (and resumes the previous one's).
        if i % 2 == 0 {
            args.extend(["--data-dir", &data_arg]);
        }
        let agent = Agent::start(&args);
        std::thread::sleep(Duration::from_secs(1));
        let out = {
            let _paused = storm.gate.lock().unwrap_or_else(|e| e.into_inner());
            let text = tests::metrics::metrics_text(&addr);
            counted += false_diagnoses_counted(&text);
            agent.stop()
        };
        assert_eq!(out.status.and_then(|s| s.code()), Some(0), "{}", out.stderr);
        live.extend(out.lines);
    }
    // Whatever the metrics counted is a record of some other process of this machine.
    let others = live
        .iter()
        .filter(|l| {
            l["type"] == "process_stop"
                && (l["diagnosis"] == "signal_blocked" || l["diagnosis"] == "slow_handler")
        })
        .count();
    assert!(
        counted <= others as f64,
        "metrics counted {counted} signal_blocked/slow_handler stops, records show {others}"
    );
    let (kids, rate) = storm.end();
    assert!(
        rate >= 100.0,
        "the loop made {rate:.0} stops/s, fewer than 100"
    );
    let n = assert_no_false_record(&live, &kids, "live");
    assert!(n >= 500, "only {n} live records of {} children", kids.len());
    let out = Command::new(sigtrace_bin())
        .args(["replay", "--json"])
        .arg(&data)
        .output()
        .expect("replay");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let replayed = parse_lines(&String::from_utf8_lossy(&out.stdout));
    let n = assert_no_false_record(&replayed, &kids, "replayed");
    assert!(
        n >= 250,
        "only {n} replayed records of {} children",
        kids.len()
    );
}
