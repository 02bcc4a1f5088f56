//! `cargo xtask bench report`: reports of 10 000 and 100 000 stops (container records from 8
//! nodes and 40 workloads, made from one real record, `report_template.json`, with times, names
//! and outcomes varied; `SIGTRACE_BENCH_STOPS=N,M` for other sizes): how long `sigtrace report`
//! takes, the file's size, and how long headless Chromium takes to load it and run its scripts
//! (`--dump-dom`, against a blank page), over rounds. The page must come back with its scripts
//! done, every stop in its data and the lanes in view drawn.
use std::{
    path::Path,
    process::{Command, Stdio},
    time::Instant,
};

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::{build_sigtrace, workspace_root};

const STOPS: &[usize] = &[10_000, 100_000];
const ROUNDS: usize = 3;
const TEMPLATE: &str = include_str!("report_template.json");

/// RFC 3339 with microseconds for `us` after the template's start.
fn at(base_s: i64, us: i64) -> String {
    let t = base_s * 1_000_000 + us;
    let (secs, micros) = (t.div_euclid(1_000_000), t.rem_euclid(1_000_000));
    let day = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // 2026-11-29 is day 20_786 since the epoch; the bench stays within that day.
    assert_eq!(day, 20_786, "the synthetic window stays on 2026-11-29");
    format!(
        "2026-11-29T{:02}:{:02}:{:02}.{micros:06}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn records(stops: usize) -> Result<String> {
    let template: Value = serde_json::from_str(TEMPLATE).context("report_template.json")?;
    let base_s = 20_786 * 86_400 + 8 * 3600; // 08:00:00
    let mut out = String::with_capacity(stops * 2600);
    for i in 0..stops {
        let mut r = template.clone();
        let w = i % 40;
        let start = i as i64 * 180_000; // one stop every 0.18 s: a 30 min window
        let (diag, dur_s, killed) = match i % 5 {
            0 | 1 => ("graceful", 0.2 + (i % 7) as f64 * 0.1, false),
            2 => ("ignored_by_pid1", 30.0, true),
            3 => ("slow_handler", 30.0, true),
            _ => ("shell_not_forwarding", 30.0, true),
        };
        let end = start + (dur_s * 1e6) as i64;
        let id = format!("{:064x}", i + 1);
        let pod = format!("svc-{w}-7d4b9c8f6d-x{:04}", i % 10_000);
        for path in [&["container"][..], &["processes", "0", "container"][..]] {
            let mut c = &mut r;
            for k in path {
                c = match k.parse::<usize>() {
                    Ok(n) => &mut c[n],
                    Err(_) => &mut c[*k],
                };
            }
            c["id"] = id.clone().into();
            c["namespace"] = format!("ns-{}", w % 5).into();
            c["pod"] = pod.clone().into();
            c["name"] = "app".into();
            c["workload"] = format!("svc-{w}").into();
        }
        r["node"] = format!("node-{}", i % 8).into();
        r["started"] = at(base_s, start).into();
        r["ended"] = at(base_s, end).into();
        r["duration_s"] = dur_s.into();
        r["diagnosis"] = diag.into();
        r["killed"] = killed.into();
        r["overrun"] = killed.into();
        let p = &mut r["processes"][0];
        p["pid"] = (10_000 + i).into();
        p["time"] = at(base_s, start).into();
        p["duration_s"] = dur_s.into();
        p["diagnosis"] = diag.into();
        p["signals"][0]["at"] = at(base_s, start).into();
        let exit = serde_json::json!({
            "at": at(base_s, end),
            "code": if killed { Value::Null } else { 0.into() },
            "core_dumped": false,
            "signal": if killed { "SIGKILL".into() } else { Value::Null },
        });
        p["exit"] = exit.clone();
        if killed {
            let mut kill = p["signals"][0].clone();
            kill["signal"] = "SIGKILL".into();
            kill["at"] = at(base_s, end).into();
            p["signals"].as_array_mut().unwrap().push(kill);
            r["grace_s"] = 30.0.into();
        }
        r["exit"] = exit;
        out.push_str(&r.to_string());
        out.push('\n');
    }
    Ok(out)
}

fn chromium_dump(html: &Path, profile: &Path) -> Result<(f64, String)> {
    let t = Instant::now();
    // The flags of the report's end-to-end test (one home: tests/chromium.args).
    let flags = include_str!("../../tests/chromium.args");
    let out = Command::new("chromium")
        .args(flags.lines().filter(|l| !l.trim().is_empty()))
        .arg("--dump-dom")
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("file://{}", html.display()))
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .context("running chromium (Debian package chromium)")?;
    if !out.status.success() {
        bail!("chromium failed on {}", html.display());
    }
    Ok((
        t.elapsed().as_secs_f64(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    ))
}

fn min_med_max(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[0], v[v.len() / 2], v[v.len() - 1])
}

pub fn report_scale() -> Result<()> {
    let bin = build_sigtrace(true)?;
    let sizes: Vec<usize> = match std::env::var("SIGTRACE_BENCH_STOPS") {
        Ok(v) => v
            .split(',')
            .map(|n| {
                n.trim()
                    .parse()
                    .context("SIGTRACE_BENCH_STOPS: numbers, comma-separated")
            })
            .collect::<Result<_>>()?,
        Err(_) => STOPS.to_vec(),
    };
    let mut report = String::new();
    for stops in sizes {
        report += &one_size(&bin, stops)?;
    }
    print!("{report}");
    let out = workspace_root().join("target").join("bench-report.md");
    std::fs::write(&out, &report)?;
    eprintln!("xtask: report written to {}", out.display());
    Ok(())
}

fn one_size(bin: &Path, stops: usize) -> Result<String> {
    let tmp = std::env::temp_dir().join(format!("sigtrace-bench-report-{}", std::process::id()));
    std::fs::create_dir_all(&tmp)?;
    let input = tmp.join("records.jsonl");
    std::fs::write(&input, records(stops)?)?;
    let html = tmp.join("report.html");
    let blank = tmp.join("blank.html");
    std::fs::write(&blank, "<!doctype html><html><body>blank</body></html>")?;
    let (mut gen, mut load, mut base) = (Vec::new(), Vec::new(), Vec::new());
    let mut lanes_drawn = 0;
    for round in 0..ROUNDS {
        let t = Instant::now();
        let st = Command::new(bin)
            .args(["report", "--records"])
            .arg(&input)
            .arg("-o")
            .arg(&html)
            .stderr(Stdio::null())
            .status()?;
        if !st.success() {
            bail!("sigtrace report failed");
        }
        gen.push(t.elapsed().as_secs_f64());
        let profile = tmp.join(format!("profile-{round}"));
        base.push(chromium_dump(&blank, &profile)?.0);
        let (secs, dom) = chromium_dump(&html, &profile)?;
        load.push(secs);
        let lanes = dom.matches("class=\"lane\"").count();
        if lanes == 0
            || !dom.contains(&format!("data-stops=\"{stops}\""))
            || !dom.contains("data-ready=\"1\"")
        {
            bail!("the page came back with {lanes} lanes drawn, not all {stops} stops in its data, or its scripts unfinished");
        }
        lanes_drawn = lanes;
        eprintln!("xtask: {stops} stops, round {}/{ROUNDS} done", round + 1);
    }
    let size = std::fs::metadata(&html)?.len();
    let input_size = std::fs::metadata(&input)?.len();
    let _ = std::fs::remove_dir_all(&tmp);
    let (g, l, b) = (min_med_max(gen), min_med_max(load), min_med_max(base));
    let report = format!(
        "report of {stops} container stops (8 nodes, 40 workloads, a {} min window), {ROUNDS} rounds, \
         min / median / max\n\n\
         | what | min | median | max |\n|---|---|---|---|\n\
         | `sigtrace report --records` (s) | {:.2} | {:.2} | {:.2} |\n\
         | Chromium load + scripts, `--dump-dom` (s) | {:.2} | {:.2} | {:.2} |\n\
         | Chromium on a blank page (s) | {:.2} | {:.2} | {:.2} |\n\n\
         HTML file: {:.1} MiB ({} bytes per stop); input records: {:.1} MiB. Every round's page \
         had its scripts done, all {stops} stops in its data and {lanes_drawn} lanes drawn (those \
         near the view).\n\n",
        stops * 3 / 1000, // one stop every 0.18 s
        g.0, g.1, g.2, l.0, l.1, l.2, b.0, b.1, b.2,
        size as f64 / (1 << 20) as f64,
        size / stops as u64,
        input_size as f64 / (1 << 20) as f64,
    );
    Ok(report)
}
