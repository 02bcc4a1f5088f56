//! End-to-end: the Prometheus side of sigtrace. The exposition checked by `promtool`, a real
//! Prometheus (Debian package) scraping the agent while real containers stop and evaluating
//! every dashboard query and alert rule, and sigtrace's own graceful shutdown as seen by a second
//! sigtrace.
use std::{
    fs,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;
use tests::{
    cri::{ContainerSpec, Kubelet, PodSpec},
    metrics::*,
    runtime::Docker,
    *,
};

const T: Duration = Duration::from_secs(15);

// ---------------------------------------------------------------------------------------------
// helpers

fn url_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The agent with metrics on `127.0.0.1:<free port>`; returns it and the address.
fn metrics_agent(extra: &[&str]) -> (Agent, String) {
    let addr = format!("127.0.0.1:{}", free_port());
    let mut args = vec!["run", "--json", "--ring-kib", "65536", "--metrics", &addr];
    args.extend_from_slice(extra);
    (Agent::start(&args), addr)
}

/// The `process_stop` record of `pid`.
fn process_stop(agent: &Agent, pid: u32) -> Value {
    agent
        .wait_for(T, |l| l["type"] == "process_stop" && l["pid"] == pid)
        .unwrap_or_else(|| panic!("no process_stop for {pid}: {}", agent.stderr()))
}

/// A real Prometheus on loopback, stopped by PID on drop.
struct Prometheus {
    proc: Proc,
    dir: TempDir,
    addr: String,
}

impl Prometheus {
    fn start(target: &str) -> Self {
        let dir = TempDir::new("prometheus");
        let addr = format!("127.0.0.1:{}", free_port());
        let rules = workspace().join("dashboards/alerts.yml");
        let config = dir.path().join("prometheus.yml");
        fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}\nscrape_configs:\n  - job_name: sigtrace\n    static_configs:\n      - targets: ['{target}']\n",
                rules.display()
            ),
        )
        .expect("prometheus config");
        let log = fs::File::create(dir.path().join("prometheus.log")).expect("log");
        let proc = Proc::spawn(
            Command::new("prometheus")
                .arg(format!("--config.file={}", config.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.path().join("data").display()
                ))
                .arg(format!("--web.listen-address={addr}"))
                .stdout(log.try_clone().expect("log"))
                .stderr(log),
        );
        let p = Self { proc, dir, addr };
        let up = wait_until(Duration::from_secs(60), || {
            p.query("up").is_ok_and(|r| {
                r["data"]["result"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|s| s["value"][1] == "1"))
            })
        });
        assert!(
            up,
            "prometheus never scraped the agent (up != 1): {}",
            p.log()
        );
        p
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    fn api(&self, path: &str) -> Result<Value, String> {
        let (status, body) = http_get(&self.addr, path).map_err(|e| e.to_string())?;
        let v: Value =
            serde_json::from_str(&body).map_err(|e| format!("HTTP {status}: {e}: {body}"))?;
        if v["status"] != "success" {
            return Err(format!("{}: {}", v["errorType"], v["error"]));
        }
        Ok(v)
    }

    fn query(&self, expr: &str) -> Result<Value, String> {
        self.api(&format!("/api/v1/query?query={}", url_encode(expr)))
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        kill(self.proc.pid, libc::SIGTERM);
        if self.proc.wait_exit(Duration::from_secs(10)).is_none() {
            kill(self.proc.pid, libc::SIGKILL);
        }
    }
}

/// dashboards/README.md's substitution rule (the same as query_check.py).
fn substitute(expr: &str) -> String {
    let mut e = expr.to_string();
    for (k, v) in [
        ("${__rate_interval}", "1m"),
        ("$__rate_interval", "1m"),
        ("${__interval}", "1m"),
        ("$__interval", "1m"),
        ("${__range}", "1h"),
        ("$__range", "1h"),
        ("${node}", ".*"),
        ("$node", ".*"),
        ("${namespace}", ".*"),
        ("$namespace", ".*"),
        ("${workload}", ".*"),
        ("$workload", ".*"),
    ] {
        e = e.replace(k, v);
    }
    let t = e.trim();
    if let Some(inner) = t
        .strip_prefix("label_values(")
        .and_then(|r| r.strip_suffix(')'))
    {
        if let Some((metric, label)) = inner.rsplit_once(',') {
            return format!("group by ({}) ({})", label.trim(), metric.trim());
        }
    }
    e
}

/// (name, query) of every template variable query and every panel target of the dashboard.
fn dashboard_queries() -> Vec<(String, String)> {
    let dash: Value = serde_json::from_str(
        &fs::read_to_string(workspace().join("dashboards/sigtrace.json")).expect("dashboard"),
    )
    .expect("dashboard JSON");
    let mut out = Vec::new();
    for v in dash["templating"]["list"].as_array().expect("templating") {
        if v["type"] == "query" {
            let q = v["query"]["query"]
                .as_str()
                .or(v["query"].as_str())
                .expect("variable query");
            out.push((
                format!("variable {}", v["name"].as_str().unwrap_or("?")),
                q.to_string(),
            ));
        }
    }
    for p in dash["panels"].as_array().expect("panels") {
        for t in p["targets"].as_array().into_iter().flatten() {
            let title = p["title"].as_str().unwrap_or("?");
            let r = t["refId"].as_str().unwrap_or("?");
            out.push((
                format!("{title} [{r}]"),
                t["expr"].as_str().expect("expr").to_string(),
            ));
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// tests

/// The exposition passes `promtool check metrics`, the probes answer, and the stops of a few
/// real processes show up in the right series with the right values. The processes run in a
/// pod of a namespace of their own, so that the counts are exactly theirs.
#[test]
fn exposition_passes_promtool() {
    let ns = format!("metrics-test-{}", std::process::id());
    let pod = FakePod::new("metrics", &ns);
    let state = pod.state.path().to_string_lossy().to_string();
    let (agent, addr) = metrics_agent(&["--containerd-state", &state]);
    // A handler that exits 0 (graceful) and a process killed by SIGTERM's default action.
    let mut graceful = Proc::victim(&["--handle", "TERM:0:0"]);
    let mut default = Proc::victim(&[]);
    pod.cgroup.add(graceful.pid);
    pod.cgroup.add(default.pid);
    let before = metrics_text(&addr);
    let term = |text: &str| {
        value(
            text,
            "sigtrace_signals_total",
            &[
                ("signal", "SIGTERM"),
                ("result", "delivered"),
                ("sender_class", "host"),
            ],
        )
        .unwrap_or(0.0)
    };
    kill(graceful.pid, libc::SIGTERM);
    kill(default.pid, libc::SIGTERM);
    assert_eq!(graceful.wait_exit(T).and_then(|s| s.code()), Some(0));
    default.wait_exit(T).expect("victim exit");
    let g = process_stop(&agent, graceful.pid);
    let d = process_stop(&agent, default.pid);
    assert_eq!(g["diagnosis"], "graceful", "{g:#}");
    assert_eq!(d["diagnosis"], "default_action", "{d:#}");
    assert_eq!(g["container"]["namespace"], ns.as_str(), "{g:#}");

    let text = wait_metrics(&addr, "both stops", |t| {
        value(
            t,
            "sigtrace_stop_duration_seconds_count",
            &[("namespace", ns.as_str())],
        ) == Some(2.0)
    });
    assert!(value(&text, "sigtrace_events_read_total", &[]).is_some_and(|v| v > 0.0));
    let file = agent.dir.path().join("metrics.txt");
    fs::write(&file, &text).expect("write metrics");
    let out = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(fs::File::open(&file).expect("metrics file"))
        .output()
        .expect("promtool");
    assert!(
        out.status.success(),
        "promtool check metrics failed ({}): {}{}\n{text}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for path in ["/healthz", "/readyz"] {
        let (status, body) = http_get(&addr, path).expect("GET");
        assert_eq!(status, 200, "{path}: {body}");
    }

    let stops = |diagnosis, outcome| {
        value(
            &text,
            "sigtrace_process_stops_total",
            &[
                ("diagnosis", diagnosis),
                ("namespace", ns.as_str()),
                ("outcome", outcome),
            ],
        )
    };
    assert_eq!(stops("graceful", "exited"), Some(1.0), "{text}");
    assert_eq!(stops("default_action", "signaled"), Some(1.0), "{text}");
    // Signals carry no namespace: at least our two since the exposition before them.
    assert!(
        term(&text) - term(&before) >= 2.0,
        "two SIGTERMs from the host:\n{text}"
    );
    assert_eq!(
        value(
            &text,
            "sigtrace_stop_duration_seconds_count",
            &[("kind", "process"), ("namespace", ns.as_str())]
        ),
        Some(2.0),
        "two process stop durations:\n{text}"
    );
    // Both stops were immediate: under 0.25 s.
    assert_eq!(
        value(
            &text,
            "sigtrace_stop_duration_seconds_bucket",
            &[
                ("kind", "process"),
                ("namespace", ns.as_str()),
                ("le", "0.25")
            ]
        ),
        Some(2.0),
        "durations in the 0.25 s bucket:\n{text}"
    );
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").expect("osrelease");
    assert_eq!(
        value(
            &text,
            "sigtrace_build_info",
            &[
                ("version", env!("CARGO_PKG_VERSION")),
                ("kernel", kernel.trim())
            ]
        ),
        Some(1.0),
        "build_info:\n{text}"
    );
    for name in [
        "sigtrace_events_lost_total",
        "sigtrace_decode_errors_total",
        "sigtrace_label_sets_overflow_total",
    ] {
        assert_eq!(value(&text, name, &[]), Some(0.0), "{name}:\n{text}");
    }
    assert!(
        value(&text, "sigtrace_tracked_processes", &[]).is_some(),
        "{text}"
    );
    assert!(
        value(
            &text,
            "sigtrace_evictions_total",
            &[("what", "process_count")]
        )
        .is_some(),
        "{text}"
    );
    // No container was stopped.
    assert_eq!(
        value(&text, "sigtrace_container_stops_total", &[]),
        None,
        "{text}"
    );
    let out = agent.stop();
    assert_eq!(out.status.and_then(|s| s.code()), Some(0), "{}", out.stderr);
}

/// A real Prometheus scrapes the agent while real containers stop (graceful, grace overrun,
/// `docker kill`) and a Kubernetes pod is deleted through the CRI (one container overruns, the
/// other is SIGKILLed at sandbox teardown); every dashboard query, variable query and alert
/// rule is evaluated through the HTTP API: each must parse, and the ones this scenario fills
/// must return data.
#[test]
fn prometheus_evaluates_every_dashboard_query_and_rule() {
    let d = Docker::start();
    let k = Kubelet::start();
    let root = d.data_root.to_string_lossy().to_string();
    let state = d.containerd_state().to_string_lossy().to_string();
    let k8s_state = k.state_dir().to_string_lossy().to_string();
    let (agent, addr) = metrics_agent(&[
        "--docker-data-root",
        &root,
        "--containerd-state",
        &state,
        "--containerd-state",
        &k8s_state,
    ]);
    let prom = Prometheus::start(&addr);

    // A Deployment's pod: `sleep` as PID 1 overruns its grace; the sidecar is never stopped
    // on its own and dies at sandbox teardown.
    let mut web = k.run_pod(PodSpec {
        termination_grace_s: 3,
        ..PodSpec::new("web-7d4b9c8f6d-x2k9p", "shop")
    });
    let app = k.start_container(&mut web, &ContainerSpec::new("app", &["sleep", "1000"]));
    let side = k.start_container(
        &mut web,
        &ContainerSpec::new("sidecar", &["/bin/victim", "--handle", "TERM:0:100"]),
    );
    tests::records::wait_handles_term(k.init_pid(&side, false));
    // Its preStop hook takes 1 s of the 3 s grace; the app then has 2 s and ignores SIGTERM.
    k.stop_with_prestop(&app, &["/bin/sleep", "1"], 3);
    k.remove_pod(&web);
    let pod_rec = agent
        .wait_for(T, |l| {
            l["type"] == "pod_stop" && l["pod_uid"] == web.spec.uid.as_str()
        })
        .unwrap_or_else(|| panic!("no pod_stop: {}", agent.stderr()));
    assert_eq!(
        pod_rec["killed_at_teardown"],
        serde_json::json!(["sidecar"]),
        "{pod_rec:#}"
    );

    // Graceful: PID 1 handles SIGTERM and exits 0.
    let ok = d.run(
        "m-graceful",
        &[],
        &["/bin/victim", "--handle", "TERM:0:100"],
    );
    // Overrun: `sleep` as PID 1 ignores SIGTERM; docker SIGKILLs it after 1 s.
    let slow = d.run("m-overrun", &[], &["sleep", "1000"]);
    // Force kill: SIGKILL first.
    let killed = d.run("m-killed", &[], &["sleep", "1000"]);
    let init = d.init_pid(&ok);
    assert!(
        wait_until(T, || fs::read_to_string(format!("/proc/{init}/status"))
            .ok()
            .and_then(|s| s
                .lines()
                .find(|l| l.starts_with("SigCgt:"))
                .and_then(|l| u64::from_str_radix(l[7..].trim(), 16).ok()))
            .is_some_and(|m| m & (1 << (libc::SIGTERM - 1)) != 0)),
        "victim never installed its handler"
    );
    d.output(&["stop", "-t", "5", &ok]);
    d.output(&["stop", "-t", "1", &slow]);
    d.output(&["kill", &killed]);
    let rec_ok = agent.container_stop(T, &ok);
    let rec_slow = agent.container_stop(T, &slow);
    let rec_killed = agent.container_stop(T, &killed);
    assert_eq!(rec_ok["diagnosis"], "graceful", "{rec_ok:#}");
    assert_eq!(rec_slow["overrun"], true, "{rec_slow:#}");
    assert_eq!(rec_killed["diagnosis"], "force_killed", "{rec_killed:#}");

    // The agent's exposition has them; then let Prometheus scrape it a few times.
    let text = wait_metrics(&addr, "five container stops", |t| {
        value(t, "sigtrace_container_stops_total", &[]).is_some_and(|v| v >= 5.0)
    });
    let shop = [("namespace", "shop"), ("workload", "web")];
    assert_eq!(
        value(
            &text,
            "sigtrace_pod_stops_total",
            &[
                shop[0],
                shop[1],
                ("workload_type", "deployment"),
                ("diagnosis", "ignored_by_pid1")
            ]
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(&text, "sigtrace_pod_termination_seconds_count", &shop),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(&text, "sigtrace_teardown_kills_total", &shop),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(&text, "sigtrace_prestop_duration_seconds_count", &shop),
        Some(1.0),
        "{text}"
    );
    for (container, diagnosis) in [("app", "ignored_by_pid1"), ("sidecar", "force_killed")] {
        assert_eq!(
            value(
                &text,
                "sigtrace_container_stops_total",
                &[
                    shop[0],
                    shop[1],
                    ("pod", "web-7d4b9c8f6d-x2k9p"),
                    ("container", container),
                    ("diagnosis", diagnosis)
                ]
            ),
            Some(1.0),
            "{container}: {text}"
        );
    }
    // The sandbox is not a container stop of its own: two in the namespace.
    assert_eq!(
        value(&text, "sigtrace_container_stops_total", &[shop[0]]),
        Some(2.0),
        "{text}"
    );
    let slow_diag = rec_slow["diagnosis"].as_str().unwrap_or("").to_string();
    for (name, diagnosis, outcome) in [
        ("m-graceful", "graceful", "exited"),
        ("m-overrun", slow_diag.as_str(), "killed"),
        ("m-killed", "force_killed", "killed"),
    ] {
        assert_eq!(
            value(
                &text,
                "sigtrace_container_stops_total",
                &[
                    ("container", name),
                    ("diagnosis", diagnosis),
                    ("outcome", outcome),
                    ("namespace", ""),
                    ("pod", "")
                ]
            ),
            Some(1.0),
            "{name}: {diagnosis}/{outcome}:\n{text}"
        );
    }
    assert_eq!(
        value(
            &text,
            "sigtrace_grace_overruns_total",
            &[("container", "m-overrun")]
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            "sigtrace_grace_overruns_total",
            &[("container", "m-graceful")]
        ),
        None,
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            "sigtrace_force_kills_total",
            &[("container", "m-killed")]
        ),
        Some(1.0),
        "{text}"
    );
    assert!(
        value(
            &text,
            "sigtrace_signals_total",
            &[("signal", "SIGTERM"), ("sender_class", "runtime")]
        )
        .is_some_and(|v| v >= 2.0),
        "docker's SIGTERMs come from the runtime:\n{text}"
    );
    assert!(
        value(
            &text,
            "sigtrace_signals_total",
            &[("signal", "SIGKILL"), ("sender_class", "runtime")]
        )
        .is_some_and(|v| v >= 2.0),
        "docker's SIGKILLs (overrun, kill) come from the runtime:\n{text}"
    );
    let scraped = |p: &Prometheus| {
        p.query("sum(sigtrace_container_stops_total)")
            .ok()
            .and_then(|r| {
                r["data"]["result"][0]["value"][1]
                    .as_str()
                    .and_then(|v| v.parse::<f64>().ok())
            })
            .is_some_and(|v| v >= 5.0)
    };
    assert!(
        wait_until(T, || scraped(&prom)),
        "prometheus never saw the stops: {}",
        prom.log()
    );
    std::thread::sleep(Duration::from_secs(3));

    // Every dashboard query parses; the ones this scenario fills have data.
    let expect_empty = ["OOM kills vs grace overruns vs force kills [A]"];
    let mut problems = Vec::new();
    let queries = dashboard_queries();
    assert!(queries.len() > 20, "{} dashboard queries?", queries.len());
    for (name, expr) in &queries {
        let e = substitute(expr);
        if e.contains('$') {
            problems.push(format!("{name}: unsubstituted variable in {e}"));
            continue;
        }
        match prom.query(&e) {
            Err(err) => problems.push(format!("{name}: {err}\n    {e}")),
            Ok(r) => {
                let n = r["data"]["result"].as_array().map_or(1, Vec::len);
                let empty_expected = expect_empty.contains(&name.as_str());
                eprintln!(
                    "{} {name}: {n} series",
                    if n > 0 { "ok   " } else { "empty" }
                );
                if n == 0 && !empty_expected {
                    problems.push(format!("{name}: no data\n    {e}"));
                }
            }
        }
    }

    // Every rule of alerts.yml is loaded, evaluated without error and its expression parses;
    // the overrun and PID-1 alerts have data, the agent-down alert has none.
    let rules_file =
        fs::read_to_string(workspace().join("dashboards/alerts.yml")).expect("alerts.yml");
    let declared = rules_file
        .lines()
        .filter(|l| {
            l.trim_start().starts_with("- alert:") || l.trim_start().starts_with("- record:")
        })
        .count();
    let mut rules: Vec<Value> = Vec::new();
    assert!(
        wait_until(T, || {
            rules = prom
                .api("/api/v1/rules")
                .map(|r| {
                    r["data"]["groups"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
                        .collect()
                })
                .unwrap_or_default();
            rules.len() == declared && rules.iter().all(|r| r["health"] == "ok")
        }),
        "{declared} rules declared, loaded and healthy: {rules:#?}"
    );
    let with_data = ["SigtraceGraceOverruns", "SigtracePid1NotForwarding"];
    let without_data = [
        "SigtraceAgentDown",
        "SigtraceAgentLosingEvents",
        "SigtraceLabelSetsDropped",
        "SigtraceOOMKills",
    ];
    for r in &rules {
        let name = r["name"].as_str().unwrap_or("?");
        let q = r["query"].as_str().unwrap_or("");
        match prom.query(q) {
            Err(err) => problems.push(format!("rule {name}: {err}\n    {q}")),
            Ok(res) => {
                let n = res["data"]["result"].as_array().map_or(0, Vec::len);
                eprintln!("rule {name}: {n} series");
                if with_data.contains(&name) && n == 0 {
                    problems.push(format!("rule {name}: no data\n    {q}"));
                }
                if without_data.contains(&name) && n > 0 {
                    problems.push(format!("rule {name}: fires in a healthy scenario: {res}"));
                }
            }
        }
    }
    if slow_diag != "ignored_by_pid1" {
        problems.push(format!(
            "`sleep` as PID 1 overran as {slow_diag}, expected ignored_by_pid1"
        ));
    }
    assert!(
        problems.is_empty(),
        "{} problem(s):\n{}\nagent exposition:\n{}",
        problems.len(),
        problems.join("\n"),
        metrics_text(&addr)
    );
    let out = agent.stop();
    assert_eq!(out.status.and_then(|s| s.code()), Some(0), "{}", out.stderr);
}

/// sigtrace B, recording a journal, gets SIGTERM: it exits 0 within 2 s, its journal replays,
/// and sigtrace A (which does not filter B's events: B is not A) reports a graceful stop.
#[test]
fn graceful_shutdown_is_observed_by_a_second_sigtrace() {
    let a = Agent::start(&["run", "--json", "--ring-kib", "65536"]);
    let data = TempDir::new("journal-b");
    let data_dir = data.path().to_string_lossy().to_string();
    let b = Agent::start(&["run", "--data-dir", &data_dir]);
    let b_pid = b.pid();
    // Something for B to record.
    let mut v = Proc::victim(&["--handle", "TERM:0:0"]);
    kill(v.pid, libc::SIGTERM);
    // B is stopped the moment the victim is gone, before its ring-buffer reader (every
    // 25 ms) or its periodic flush (every 500 ms) took the victim's events: only the last
    // drain and the flush on SIGTERM can put them in the journal.
    let deadline = Instant::now() + T;
    while v
        .child
        .as_mut()
        .and_then(|c| c.try_wait().ok().flatten())
        .is_none()
    {
        assert!(Instant::now() < deadline, "victim did not exit");
        std::thread::yield_now();
    }

    // `stop` sends SIGTERM and polls for the exit every 10 ms.
    let t = Instant::now();
    let out = b.stop();
    let took = t.elapsed();
    let status = out
        .status
        .unwrap_or_else(|| panic!("sigtrace B still running 2 s after SIGTERM: {}", out.stderr));
    assert_eq!(status.code(), Some(0), "B exit status: {}", out.stderr);
    assert!(took <= Duration::from_secs(2), "B took {took:?}");

    let replay = Command::new(sigtrace_bin())
        .args(["replay", "--json", &data_dir])
        .stdin(Stdio::null())
        .output()
        .expect("replay");
    assert!(
        replay.status.success(),
        "replay of B's journal: {}",
        String::from_utf8_lossy(&replay.stderr)
    );
    let replayed = parse_lines(&String::from_utf8_lossy(&replay.stdout));
    assert!(
        replayed
            .iter()
            .any(|l| l["type"] == "process_stop" && l["pid"] == v.pid),
        "B's journal must hold the victim's stop (flushed on SIGTERM): {replayed:#?}"
    );

    let rec = process_stop(&a, b_pid);
    assert_eq!(rec["comm"], "sigtrace", "{rec:#}");
    assert_eq!(rec["diagnosis"], "graceful", "{rec:#}");
    assert_eq!(rec["exit"]["code"], 0, "{rec:#}");
    assert_eq!(rec["stop_signal"], "SIGTERM", "{rec:#}");
    let sig = &rec["signals"][0];
    assert_eq!(sig["disposition"], "handler", "{rec:#}");
    let out_a = a.stop();
    assert_eq!(
        out_a.status.and_then(|s| s.code()),
        Some(0),
        "{}",
        out_a.stderr
    );
}
