//! `sigtrace report` and `sigtrace summary` on real journals and real records: pods stopped
//! through the CRI and a docker container, traced by agents; the HTML opened in real headless
//! Chromium, and the DOM after its scripts ran checked (lanes, bar widths against durations,
//! the legend, no script errors, no fetch blocked by the page's policy). A screenshot goes to
//! `target/report-screenshot.png`.
use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Duration,
};

use serde_json::Value;
use tests::{
    cri::{ContainerSpec, Kubelet, PodSpec},
    headless_chromium,
    records::{agent, docker_stop, pod_stop, wait_handles_term},
    runtime::Docker,
    sigtrace_bin, workspace, TempDir,
};

fn chromium() -> PathBuf {
    for c in ["/usr/bin/chromium", "/usr/bin/chromium-browser"] {
        if Path::new(c).exists() {
            return PathBuf::from(c);
        }
    }
    panic!("chromium is not installed (cargo xtask bootstrap --tests installs Debian's chromium)");
}

/// Headless Chromium with a fresh profile, no background networking, and time for the
/// page's script.
fn headless(profile: &Path) -> Command {
    let mut c = headless_chromium(&chromium(), profile);
    c.arg("--virtual-time-budget=5000");
    c
}

/// The DOM of `html` after its scripts ran.
fn dump_dom(html: &Path) -> String {
    let profile = TempDir::new("chromium");
    let out = headless(profile.path())
        .arg("--dump-dom")
        .arg(format!("file://{}", html.display()))
        .output()
        .expect("running chromium");
    assert!(
        out.status.success(),
        "chromium --dump-dom failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn screenshot(html: &Path, png: &Path) {
    let profile = TempDir::new("chromium");
    let out = headless(profile.path())
        .arg(format!("--screenshot={}", png.display()))
        .arg("--window-size=1500,1100")
        .arg(format!("file://{}", html.display()))
        .output()
        .expect("running chromium");
    assert!(
        out.status.success() && png.exists(),
        "chromium --screenshot failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The value of attribute `name` in the start tag `tag`.
fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let key = format!(" {name}=\"");
    let at = tag.find(&key)? + key.len();
    tag[at..].split('"').next()
}

/// Every start tag that contains `needle` (e.g. `class="bar t"`).
fn tags<'a>(dom: &'a str, needle: &str) -> Vec<&'a str> {
    dom.match_indices(needle)
        .filter_map(|(i, _)| {
            let start = dom[..i].rfind('<')?;
            let end = i + dom[i..].find('>')?;
            Some(&dom[start..=end])
        })
        .collect()
}

fn sigtrace(args: &[&str]) -> std::process::Output {
    let out = Command::new(sigtrace_bin())
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("sigtrace");
    assert!(
        out.status.success(),
        "sigtrace {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The checks every report must pass in Chromium; returns the DOM.
fn check_in_chromium(html: &Path, lanes: Option<usize>) -> String {
    let text = std::fs::read_to_string(html).unwrap();
    // Nothing to fetch: no URL but the SVG namespace, and a policy that forbids fetches.
    let urls: Vec<&str> = text
        .match_indices("http")
        .map(|(i, _)| &text[i..(i + 40).min(text.len())])
        .filter(|u| !u.starts_with("http://www.w3.org/2000/svg") && !u.starts_with("http-equiv"))
        .collect();
    assert!(urls.is_empty(), "the report refers to URLs: {urls:?}");
    assert!(text.contains("Content-Security-Policy"));
    let dom = dump_dom(html);
    let body = tags(&dom, "<body")[0];
    assert_eq!(
        attr(body, "data-ready"),
        Some("1"),
        "the scripts did not finish: {body}"
    );
    assert_eq!(attr(body, "data-errors"), None, "script errors: {body}");
    assert_eq!(
        attr(body, "data-csp-violations"),
        None,
        "blocked fetches: {body}"
    );
    if let Some(n) = lanes {
        assert_eq!(tags(&dom, "class=\"lane\"").len(), n, "one lane per stop");
    }
    // Bar widths are proportional to the durations (the longer ones: a 1 ms bar is 0 px).
    let bars: Vec<(f64, f64)> = tags(&dom, "class=\"bar t\"")
        .into_iter()
        .filter_map(|t| {
            Some((
                attr(t, "width")?.parse().ok()?,
                attr(t, "data-duration")?.parse().ok()?,
            ))
        })
        .filter(|(_, d)| *d > 0.5)
        .collect();
    assert!(
        bars.len() >= 2,
        "two bars of over 0.5 s to compare: {bars:?}"
    );
    let px_per_s: Vec<f64> = bars.iter().map(|(w, d)| w / d).collect();
    let (lo, hi) = px_per_s
        .iter()
        .fold((f64::MAX, 0.0f64), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
    assert!(
        hi / lo < 1.03,
        "bar widths not proportional to durations: {bars:?}"
    );
    // The legend names every diagnosis, and marks those present.
    assert!(dom.contains("id=\"legend\""));
    for d in [
        "graceful",
        "ignored_by_pid1",
        "slow_handler",
        "slow_prestop",
    ] {
        assert!(
            dom.contains(&format!("data-diagnosis=\"{d}\"")),
            "legend entry {d}"
        );
    }
    dom
}

/// Real journals: CRI pods (graceful, PID 1 ignoring SIGTERM, two containers) and a docker
/// container, one agent; the report has one lane per pod and per docker container.
#[test]
fn report_of_real_journals_in_chromium() {
    let d = Docker::start();
    let k = Kubelet::start();
    let journal = TempDir::new("report-journal");
    let dir = journal.path().display().to_string();
    let root = d.data_root.display().to_string();
    let state = d.containerd_state().display().to_string();
    let k8s_state = k.state_dir().display().to_string();
    let agent = agent(&[
        "--data-dir",
        &dir,
        "--docker-data-root",
        &root,
        "--containerd-state",
        &state,
        "--containerd-state",
        &k8s_state,
    ]);
    let mut web = k.run_pod(PodSpec {
        termination_grace_s: 5,
        ..PodSpec::new("web-7d4b9c8f6d-x2k9p", "shop")
    });
    let app = k.start_container(
        &mut web,
        &ContainerSpec::new("app", &["/bin/victim", "--handle", "TERM:0:1000"]),
    );
    let mut db = k.run_pod(PodSpec {
        termination_grace_s: 2,
        ..PodSpec::new("db-0", "shop")
    });
    k.start_container(&mut db, &ContainerSpec::new("db", &["sleep", "1000"]));
    wait_handles_term(k.init_pid(&app, false));
    let id = d.run(
        "report-docker",
        &[],
        &["/bin/victim", "--handle", "TERM:0:2000"],
    );
    wait_handles_term(d.init_pid(&id));
    k.delete_pod(&web);
    k.delete_pod(&db);
    docker_stop(&d, &id, 1);
    pod_stop(&agent, &web);
    pod_stop(&agent, &db);
    agent.container_stop(Duration::from_secs(20), &id);
    agent.stop();

    let out = TempDir::new("report-out");
    let html = out.path().join("report.html");
    let html_s = html.display().to_string();
    sigtrace(&["report", &dir, "--namespace", "shop", "-o", &html_s]);
    let dom = check_in_chromium(&html, Some(2));
    assert!(dom.contains("web-7d4b9c8f6d-x2k9p") && dom.contains("db-0"));
    // Without the filter, the docker container has a lane too (and the host processes the
    // machine stopped meanwhile, if any).
    sigtrace(&["report", &dir, "-o", &html_s]);
    let dom = check_in_chromium(&html, None);
    let lanes = tags(&dom, "class=\"lane\"");
    assert!(lanes.len() >= 3, "{} lanes", lanes.len());
    assert_eq!(
        lanes
            .iter()
            .filter(|l| attr(l, "data-kind") == Some("Container"))
            .filter_map(|l| attr(l, "data-label"))
            .collect::<Vec<_>>(),
        ["report-docker"],
        "the docker container's lane"
    );
    let png = workspace().join("target/report-screenshot.png");
    sigtrace(&["report", &dir, "--namespace", "shop", "-o", &html_s]);
    screenshot(&html, &png);

    // A journal with a corrupt region still gives a report, with a note of what was skipped.
    let damaged = TempDir::new("damaged-journal");
    for e in std::fs::read_dir(&dir).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if name.ends_with(".journal") {
            let mut bytes = std::fs::read(e.path()).unwrap();
            let (mid, len) = (bytes.len() / 2, bytes.len());
            for b in &mut bytes[mid..(mid + 64).min(len)] {
                *b ^= 0x5a;
            }
            std::fs::write(damaged.path().join(name), bytes).unwrap();
        }
    }
    let damaged_s = damaged.path().display().to_string();
    let out = sigtrace(&["report", &damaged_s, "-o", &html_s]);
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        page.contains("id=\"notes\"") && page.contains("corrupt or unreadable record(s) skipped"),
        "the page notes the damage; stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dom = check_in_chromium(&html, None);
    assert!(
        dom.contains("class=\"lane\""),
        "the records around the damage are shown"
    );

    // The summary of the same journal.
    let text = String::from_utf8_lossy(&sigtrace(&["summary", &dir]).stdout).into_owned();
    assert!(
        text.lines()
            .any(|l| l.starts_with("shop/db/db ") && l.contains("ignored_by_pid1 1")),
        "{text}"
    );
}

/// Records from two agents whose `--node-name` differ, as `kubectl logs --prefix` prints
/// them, with other lines mixed in: merged, deduplicated, every lane showing its node.
#[test]
fn report_and_summary_of_records_from_two_nodes() {
    let k = Kubelet::start();
    let state = k.state_dir().display().to_string();
    let a = agent(&["--containerd-state", &state, "--node-name", "node-a"]);
    let b = agent(&["--containerd-state", &state, "--node-name", "node-b"]);
    let mut p = k.run_pod(PodSpec {
        termination_grace_s: 5,
        ..PodSpec::new("api-6f7b8c9d4-zq5wp", "shop")
    });
    let id = k.start_container(
        &mut p,
        &ContainerSpec::new("api", &["/bin/victim", "--handle", "TERM:0:700"]),
    );
    wait_handles_term(k.init_pid(&id, false));
    k.delete_pod(&p);
    pod_stop(&a, &p);
    pod_stop(&b, &p);
    let (a, b) = (a.stop(), b.stop());
    let dir = TempDir::new("records");
    let prefixed = |lines: &[Value], pod: &str| -> String {
        lines
            .iter()
            .map(|l| format!("[pod/{pod}/sigtrace] {l}\n"))
            .collect()
    };
    let mut a_text = prefixed(&a.lines, "sigtrace-a1b2c");
    a_text.push_str(
        "[pod/sigtrace-a1b2c/sigtrace] 2026-11-29T10:00:00Z INFO tracing: 5 hooks attached\n",
    );
    a_text.push_str("not a record at all\n");
    let b_text = prefixed(&b.lines, "sigtrace-x8vfl");
    let (fa, fb) = (dir.path().join("a.log"), dir.path().join("b.log"));
    std::fs::write(&fa, &a_text).unwrap();
    std::fs::write(&fb, &b_text).unwrap();
    for l in a.lines.iter().filter(|l| l["type"] == "pod_stop") {
        assert_eq!(l["node"], "node-a", "every record names its node: {l}");
    }
    let html = dir.path().join("r.html");
    let (fa_s, fb_s, html_s) = (
        fa.display().to_string(),
        fb.display().to_string(),
        html.display().to_string(),
    );
    // a.log twice: its records are merged, not doubled.
    let out = sigtrace(&[
        "report",
        "--records",
        &fa_s,
        "--records",
        &fb_s,
        "--records",
        &fa_s,
        "--pod",
        &p.spec.name,
        "-o",
        &html_s,
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not sigtrace records were skipped"), "{err}");
    let dom = dump_dom(&html);
    let lanes = tags(&dom, "class=\"lane\"");
    assert_eq!(lanes.len(), 2, "one lane per node: {lanes:?}");
    let mut nodes: Vec<&str> = lanes.iter().filter_map(|l| attr(l, "data-node")).collect();
    nodes.sort();
    assert_eq!(nodes, ["node-a", "node-b"]);
    assert!(
        dom.contains("were skipped"),
        "the note of what was skipped is on the page"
    );
    // The summary reads records too (stdin here), one row for the workload's container.
    let mut child = Command::new(sigtrace_bin())
        .args(["summary", "--records", "-", "--workload", "api"])
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{a_text}{b_text}").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let row = text
        .lines()
        .find(|l| l.starts_with("shop/api/api "))
        .unwrap_or_else(|| panic!("{text}"));
    assert_eq!(
        row.split_whitespace().nth(1),
        Some("2"),
        "one stop per node: {row}"
    );
}
