//! End-to-end: diagnoses on real software and image settings people use (S20–S22 of
//! the release scenarios, and the Go runtime): a shell whose trap runs but is slow, a container stop
//! signal outside the usual set (SIGWINCH, SIGUSR1), and runtimes whose default handler
//! re-raises the stop signal (Node.js, Go without `signal.Notify`), as PID 1 and as a host
//! process. Each test asserts the diagnosis, the stop signal and the hint of the process it
//! started.
use std::{
    path::PathBuf,
    process::{Command, Stdio},
    sync::OnceLock,
    time::Duration,
};

use serde_json::Value;
use tests::{records::*, runtime::Docker, stop::stop, *};

const T: Duration = Duration::from_secs(15);
const SLOW_HANDLER: &str =
    "shorten cleanup or raise the grace period (by how much is in the record)";
const PID1: &str = "handle the signal, or run under an init (tini, dumb-init, `--init`)";
const DEFAULT_ACTION: &str = "install a handler if in-flight work matters";

/// The `process_stop` record of `pid`.
fn process_stop(agent: &Agent, pid: u32) -> Value {
    agent
        .wait_for(T, |l| l["type"] == "process_stop" && l["pid"] == pid)
        .unwrap_or_else(|| panic!("no process_stop for {pid}: {}", agent.stderr()))
}

/// S20: busybox sh as PID 1 traps TERM with a 3 s cleanup; `docker stop -t 1`. The shell did
/// handle the signal: its handler was slow (not `shell_not_forwarding`).
#[test]
fn docker_s20_shell_whose_trap_runs_is_a_slow_handler() {
    let d = Docker::start();
    let agent = docker_agent(&d);
    let script = "trap 'sleep 3; exit 0' TERM; while :; do sleep 0.1; done";
    let id = d.run("s20", &[], &["/bin/sh", "-c", script]);
    let init = d.init_pid(&id);
    wait_handles_term(init);
    docker_stop(&d, &id, 1);
    let rec = agent.container_stop(T, &id);
    assert_docker_container(&d, &rec, &id, "s20");
    assert_runtime_sender(&rec, "SIGTERM");
    assert_eq!(rec["diagnosis"], "slow_handler", "{rec:#}");
    assert_eq!(rec["hint"], SLOW_HANDLER, "{rec:#}");
    assert_overrun_after(&rec, 1.0);
    let sh = process(&rec, init);
    assert_eq!(sh["diagnosis"], "slow_handler", "{sh:#}");
    assert_eq!(sh["signals"][0]["disposition"], "handler", "{sh:#}");
}

/// S21: `docker run --stop-signal SIGWINCH` (as the official httpd image sets it); PID 1
/// traps WINCH and exits 0; `docker stop -t 2`.
#[test]
fn docker_s21_sigwinch_stop_signal_is_the_stop_signal() {
    let d = Docker::start();
    let agent = docker_agent(&d);
    let script = "trap 'exit 0' WINCH; while :; do sleep 0.1; done";
    let id = d.run(
        "s21",
        &["--stop-signal", "SIGWINCH"],
        &["/bin/sh", "-c", script],
    );
    let init = d.init_pid(&id);
    assert!(
        wait_until(T, || has_mask(init, "SigCgt", libc::SIGWINCH)),
        "the shell never trapped WINCH"
    );
    docker_stop(&d, &id, 2);
    let rec = agent.container_stop(T, &id);
    assert_docker_container(&d, &rec, &id, "s21");
    assert_runtime_sender(&rec, "SIGWINCH");
    assert_eq!(rec["container"]["stop_signal"], "SIGWINCH", "{rec:#}");
    assert_eq!(rec["diagnosis"], "graceful", "{rec:#}");
    assert_eq!(rec["hint"], Value::Null, "{rec:#}");
    assert_eq!(rec["killed"], false, "{rec:#}");
    assert_eq!(rec["exit"]["code"], 0, "{rec:#}");
    let sh = process(&rec, init);
    assert_eq!(sh["stop_signal"], "SIGWINCH", "{sh:#}");
    assert_eq!(sh["dispositions"]["SIGWINCH"], "handler", "{sh:#}");
}

/// `docker run --stop-timeout 3`, a TERM handler needing 2.5 s, a plain `docker stop`: the
/// container's stop timeout is the declared grace, and the stop used most of it.
#[test]
fn docker_stop_timeout_is_the_grace_of_a_plain_docker_stop() {
    let d = Docker::start();
    let agent = docker_agent(&d);
    let script = "trap 'sleep 2.5; exit 0' TERM; while :; do sleep 0.1; done";
    let id = d.run(
        "stoptimeout",
        &["--stop-timeout", "3"],
        &["/bin/sh", "-c", script],
    );
    let init = d.init_pid(&id);
    wait_handles_term(init);
    d.output(&["stop", &id]);
    let rec = agent.container_stop(T, &id);
    assert_docker_container(&d, &rec, &id, "stoptimeout");
    assert_eq!(rec["diagnosis"], "graceful", "{rec:#}");
    assert_eq!(rec["killed"], false, "{rec:#}");
    assert_eq!(rec["termination_grace_s"], 3.0, "{rec:#}");
    assert_eq!(rec["termination_grace_source"], "docker", "{rec:#}");
    let sh = process(&rec, init);
    assert_eq!(sh["grace_s"], 3.0, "{sh:#}");
    assert_eq!(sh["grace_source"], "declared", "{sh:#}");
    assert_eq!(sh["near_overrun"], true, "{sh:#}");
    assert_eq!(sh["overrun"], false, "{sh:#}");
}

/// S21 with `--stop-signal SIGUSR1` and a handler slower than the grace: `slow_handler` with
/// SIGUSR1 as the stop signal (not `force_killed` with SIGKILL).
#[test]
fn docker_s21_usr1_stop_signal_with_a_slow_handler() {
    let d = Docker::start();
    let agent = docker_agent(&d);
    let script = "trap 'sleep 5; exit 0' USR1; while :; do sleep 0.1; done";
    let id = d.run(
        "s21usr1",
        &["--stop-signal", "SIGUSR1"],
        &["/bin/sh", "-c", script],
    );
    let init = d.init_pid(&id);
    assert!(
        wait_until(T, || has_mask(init, "SigCgt", libc::SIGUSR1)),
        "the shell never trapped USR1"
    );
    docker_stop(&d, &id, 1);
    let rec = agent.container_stop(T, &id);
    assert_docker_container(&d, &rec, &id, "s21usr1");
    assert_runtime_sender(&rec, "SIGUSR1");
    assert_eq!(rec["container"]["stop_signal"], "SIGUSR1", "{rec:#}");
    assert_eq!(rec["diagnosis"], "slow_handler", "{rec:#}");
    assert_eq!(rec["hint"], SLOW_HANDLER, "{rec:#}");
    assert_overrun_after(&rec, 1.0);
    let sh = process(&rec, init);
    assert_eq!(sh["stop_signal"], "SIGUSR1", "{sh:#}");
    assert_runtime_sigkill(sh);
}

/// S22: Node.js as PID 1 of a PID namespace. Its default SIGTERM handler restores the
/// default and re-raises; the kernel drops the re-raise for a namespace init; only the
/// SIGKILL 2 s later ends it.
#[test]
fn s22_node_as_pid1_is_ignored_by_pid1() {
    let agent = agent(&[]);
    let (_ns, pid) = in_pid_namespace(&["node", "-e", "setInterval(() => {}, 1000)"]);
    assert!(
        wait_until(T, || comm(pid) == "node"
            && has_mask(pid, "SigCgt", libc::SIGTERM)),
        "node never installed its SIGTERM handler"
    );
    let outcome = stop(pid, libc::SIGTERM, Duration::from_secs(2));
    assert!(outcome.killed, "node as PID 1 must survive SIGTERM");
    let rec = process_stop(&agent, pid);
    assert_eq!(rec["stop_signal"], "SIGTERM", "{rec:#}");
    assert_eq!(rec["diagnosis"], "ignored_by_pid1", "{rec:#}");
    assert_eq!(rec["hint"], PID1, "{rec:#}");
    assert_eq!(rec["killed"], true, "{rec:#}");
    let reraised = rec["signals"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|s| s["signal"] == "SIGTERM" && s["sender"]["pid"] == pid);
    assert!(reraised, "node re-raised SIGTERM to itself: {rec:#}");
}

/// A Go program that never called `signal.Notify`: it only sleeps. Built once per test run
/// with Debian's Go, offline.
fn go_sleeper() -> &'static PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let dir = workspace().join("target").join("go-sleeper");
        std::fs::create_dir_all(&dir).expect("go build dir");
        let src = dir.join("main.go");
        std::fs::write(
            &src,
            "package main\n\nimport \"time\"\n\nfunc main() {\n\tfor {\n\t\ttime.Sleep(100 * time.Millisecond)\n\t}\n}\n",
        )
        .expect("main.go");
        let bin = dir.join("sleeper");
        let out = Command::new("go")
            .args(["build", "-o"])
            .arg(&bin)
            .arg(&src)
            .env("GO111MODULE", "off")
            .env("GOCACHE", dir.join("cache"))
            .env("GOPATH", dir.join("gopath"))
            .env("GOFLAGS", "")
            .stdin(Stdio::null())
            .output()
            .expect("running go build (Debian package golang-go)");
        assert!(
            out.status.success(),
            "go build: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        bin
    })
}

/// Go's runtime as a host process: its handler re-raises SIGTERM, which kills it. None of
/// the application's cleanup ran.
#[test]
fn go_without_notify_as_a_host_process_is_default_action() {
    let bin = go_sleeper();
    let agent = agent(&[]);
    let mut p = Proc::spawn(Command::new(bin).stdin(Stdio::null()));
    assert!(
        wait_until(T, || has_mask(p.pid, "SigCgt", libc::SIGTERM)),
        "the Go runtime never installed its handlers"
    );
    kill(p.pid, libc::SIGTERM);
    let status = p.wait_exit(T).expect("the Go program exits");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGTERM), "{status:?}");
    let rec = process_stop(&agent, p.pid);
    assert_eq!(rec["stop_signal"], "SIGTERM", "{rec:#}");
    assert_eq!(rec["diagnosis"], "default_action", "{rec:#}");
    assert_eq!(rec["hint"], DEFAULT_ACTION, "{rec:#}");
    assert_eq!(rec["exit"]["signal"], "SIGTERM", "{rec:#}");
}

/// Go's runtime as PID 1: the re-raise is dropped (twice), and the runtime exits with status
/// 2 at once. None of the application's cleanup ran.
#[test]
fn go_without_notify_as_pid1_is_default_action() {
    let bin = go_sleeper();
    let agent = agent(&[]);
    let (_ns, pid) = in_pid_namespace(&[bin.to_str().expect("path")]);
    assert!(
        wait_until(T, || has_mask(pid, "SigCgt", libc::SIGTERM)),
        "the Go runtime never installed its handlers"
    );
    let outcome = stop(pid, libc::SIGTERM, Duration::from_secs(2));
    assert!(outcome.exited_in_grace, "Go exits on SIGTERM even as PID 1");
    let rec = process_stop(&agent, pid);
    assert_eq!(rec["stop_signal"], "SIGTERM", "{rec:#}");
    assert_eq!(rec["diagnosis"], "default_action", "{rec:#}");
    assert_eq!(rec["hint"], DEFAULT_ACTION, "{rec:#}");
    assert_eq!(rec["exit"]["code"], 2, "{rec:#}");
    let ignored = rec["signals"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["sender"]["pid"] == pid && s["result"] == "ignored")
        .count();
    assert!(ignored >= 1, "the re-raise is ignored for a PID 1: {rec:#}");
}
