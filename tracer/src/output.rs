//! The terminal and JSON sinks: how engine output is shown to a person (an aligned live
//! timeline with one summary line per finished shutdown, diagnosis in colour) or to a program
//! (one JSON object per line). Honours NO_COLOR and non-TTY output.
use std::io::{IsTerminal, Write};

use crate::decode::{CgroupCreated, Clock, KernelRecord};
use crate::driver::{Consumer, FeedError, Input};
use crate::engine::{
    ContainerStop, Diagnosis, Output, PodStop, ProcessStop, SignalOrigin, TimelineEvent,
    TimelineWhat,
};
use crate::event::WallTime;

/// How records are printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Human timeline.
    Terminal { color: bool },
    /// One JSON object per finished record.
    Json,
}

impl Format {
    /// `--json`, else the terminal format, coloured when stdout is a terminal and NO_COLOR is
    /// not set.
    pub fn detect(json: bool) -> Self {
        if json {
            return Format::Json;
        }
        Format::Terminal {
            color: Self::colour_for(
                std::io::stdout().is_terminal(),
                std::env::var_os("NO_COLOR").as_deref(),
            ),
        }
    }

    /// Colour for a terminal, unless `NO_COLOR` is set to anything but the empty string.
    pub fn colour_for(terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
        terminal && no_color.is_none_or(|v| v.is_empty())
    }
}

/// Where the engine's output goes: the [`Printer`], the summary, the report's
/// collector, a filter in front of another sink, or a benchmark's counter.
pub trait OutputSink {
    fn output(&mut self, o: &Output) -> std::io::Result<()>;
    fn flush(&mut self) -> std::io::Result<()>;
}

impl<W: Write> OutputSink for Printer<W> {
    fn output(&mut self, o: &Output) -> std::io::Result<()> {
        Printer::output(self, o)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Printer::flush(self)
    }
}

pub struct Printer<W: Write> {
    out: W,
    format: Format,
    containers_only: bool,
    /// The node every JSON record names (`"node"`), when known.
    node: Option<String>,
}

pub(crate) const RESET: &str = "\x1b[0m";
const DIM: &str = "\x1b[2m";
pub(crate) const BOLD: &str = "\x1b[1m";

pub(crate) fn diagnosis_color(d: Diagnosis) -> &'static str {
    match d {
        Diagnosis::Graceful => "\x1b[32m", // green
        Diagnosis::DefaultAction | Diagnosis::ForceKilled => "\x1b[33m", // yellow
        Diagnosis::OomKilled | Diagnosis::OrphanKilled => "\x1b[35m", // magenta
        _ => "\x1b[31m",                   // red
    }
}

/// "ns/pod/name", the docker name, or the short id; "host" without a container.
fn place(c: Option<&crate::container::ContainerInfo>) -> String {
    match c {
        None => "host".to_string(),
        Some(c) => match (&c.namespace, &c.pod) {
            (Some(ns), Some(pod)) => format!("{ns}/{pod}/{}", c.label()),
            _ => c.label().to_string(),
        },
    }
}

/// One line of the terminal timeline (without colour): the only rendering of a
/// [`TimelineEvent`] for people.
pub fn timeline_line(t: &TimelineEvent) -> String {
    let who = format!("{}({})", t.comm, t.pid);
    let what = match &t.what {
        TimelineWhat::Generate {
            signal,
            sender,
            result,
            disposition,
            forwarded,
            escalation,
            origin,
            ..
        } => {
            let mut s = format!(
                "{:<8} {}({}) → {who}  {}, {}",
                signal.name(),
                sender.comm,
                sender.pid,
                result.as_str(),
                disposition.as_str()
            );
            if *forwarded {
                s.push_str("  [forwarded]");
            }
            if *escalation {
                s.push_str("  [escalation]");
            }
            match origin {
                SignalOrigin::User => {}
                SignalOrigin::Kernel => s.push_str("  [kernel]"),
                SignalOrigin::NamespaceTeardown => s.push_str("  [namespace teardown]"),
            }
            s
        }
        TimelineWhat::Deliver {
            signal,
            tid,
            disposition,
            converted_from,
        } => match converted_from {
            Some(orig) => format!(
                "{:<8} {who} dies of {orig} (default action, delivered as {signal})",
                orig.name()
            ),
            None => format!(
                "{:<8} delivered to {who} tid {tid} → {}",
                signal.name(),
                disposition.as_str()
            ),
        },
        TimelineWhat::Exit { exit, after_s } => format!(
            "{:<8} {who} {} after {after_s:.3}s",
            "exit",
            exit_text(Some(exit))
        ),
        TimelineWhat::OomVictim { invoker_pid } => format!(
            "{:<8} {who} chosen by the OOM killer (allocation by pid {invoker_pid})",
            "OOM"
        ),
    };
    format!(
        "{}  {:<28} {what}",
        clock_time(t.time),
        place(t.container.as_deref())
    )
}

/// "HH:MM:SS.mmm" of a time.
fn clock_time(t: WallTime) -> String {
    let rfc3339 = t.to_string();
    rfc3339.get(11..23).unwrap_or(&rfc3339).to_string()
}

fn exit_text(exit: Option<&crate::engine::ExitEntry>) -> String {
    match exit {
        None => "still running".to_string(),
        Some(e) => match (e.code, e.signal) {
            (Some(c), _) => format!("exited {c}"),
            (None, Some(s)) => format!(
                "killed by {s} ({}{})",
                128 + s.0,
                if e.core_dumped { ", core dumped" } else { "" }
            ),
            (None, None) => "exited".to_string(),
        },
    }
}

impl<W: Write> Printer<W> {
    pub fn new(out: W, format: Format, containers_only: bool) -> Self {
        Self {
            out,
            format,
            containers_only,
            node: None,
        }
    }

    /// JSON records name `node` (their first field).
    pub fn with_node(mut self, node: Option<String>) -> Self {
        self.set_node(node);
        self
    }

    /// The node of the records from now on.
    pub fn set_node(&mut self, node: Option<String>) {
        self.node = node;
    }

    /// One record as a JSON line, with the node first when known.
    fn json(&mut self, record: &impl serde::Serialize) -> std::io::Result<()> {
        match &self.node {
            None => serde_json::to_writer(&mut self.out, record)?,
            Some(node) => {
                #[derive(serde::Serialize)]
                struct WithNode<'a, R> {
                    node: &'a str,
                    #[serde(flatten)]
                    record: &'a R,
                }
                serde_json::to_writer(&mut self.out, &WithNode { node, record })?
            }
        }
        writeln!(self.out)
    }

    fn paint(&self, color: &str, text: &str) -> String {
        match self.format {
            Format::Terminal { color: true } => format!("{color}{text}{RESET}"),
            _ => text.to_string(),
        }
    }

    pub fn output(&mut self, o: &Output) -> std::io::Result<()> {
        match o {
            Output::Timeline(t) => self.timeline(t),
            Output::ProcessStop(p) => self.process_stop(p),
            Output::ContainerStop(c) => self.container_stop(c),
            Output::PodStop(p) => self.pod_stop(p),
        }
    }

    fn timeline(&mut self, t: &TimelineEvent) -> std::io::Result<()> {
        if self.format == Format::Json || (self.containers_only && t.container.is_none()) {
            return Ok(());
        }
        writeln!(self.out, "{}", self.paint(DIM, &timeline_line(t)))
    }

    fn process_stop(&mut self, p: &ProcessStop) -> std::io::Result<()> {
        if self.containers_only && p.container.is_none() {
            return Ok(());
        }
        if self.format == Format::Json {
            return self.json(p);
        }
        let d = self.paint(diagnosis_color(p.diagnosis), p.diagnosis.as_str());
        let mut line = format!(
            "{}  {:<28} {} {}({}) stopped in {:.3}s: {}",
            clock_time(p.time),
            place(p.container.as_deref()),
            self.paint(BOLD, "STOP"),
            p.comm,
            p.pid,
            p.duration_s,
            exit_text(p.exit.as_ref()),
        );
        if p.overrun {
            line.push_str(&format!(", grace overrun by {:.3}s", p.overrun_s));
        }
        if p.near_overrun {
            line.push_str(", near the grace period");
        }
        line.push_str(&format!("  {d}"));
        if let Some(h) = &p.hint {
            line.push_str(&format!(" — {h}"));
        }
        if !p.complete {
            line.push_str(&format!(
                " (incomplete: {})",
                p.incomplete_reason.as_deref().unwrap_or("events lost")
            ));
        }
        writeln!(self.out, "{line}")
    }

    fn container_stop(&mut self, c: &ContainerStop) -> std::io::Result<()> {
        if self.format == Format::Json {
            return self.json(c);
        }
        let d = self.paint(diagnosis_color(c.diagnosis), c.diagnosis.as_str());
        let mut line = format!(
            "{}  {:<28} {} container {} ({}) stopped in {:.3}s, {} process(es)",
            clock_time(c.started),
            place(Some(&c.container)),
            self.paint(BOLD, "CONTAINER STOP"),
            c.container.short_id(),
            c.container.runtime,
            c.duration_s,
            c.processes.len(),
        );
        if c.killed {
            line.push_str(", SIGKILL needed");
        }
        if let Some(g) = c.grace_s {
            line.push_str(&format!(", grace {g:.1}s"));
        }
        if let Some(p) = &c.prestop {
            let ran = c
                .prestop_s
                .map_or_else(String::new, |d| format!(" {d:.1}s"));
            let running = if p.end.is_none() || p.killed {
                " (outlived the grace)"
            } else {
                ""
            };
            line.push_str(&format!(", preStop {}{ran}{running}", p.comm));
            if let (Some(e), Some(t)) = (c.effective_grace_s, c.termination_grace_s) {
                let inferred = if c.termination_grace_source.as_deref() == Some("inferred") {
                    " inferred"
                } else {
                    ""
                };
                line.push_str(&format!(", app had {e:.1}s of {t:.1}s{inferred} grace"));
            }
        } else if let Some(hook) = c.container.prestop_hook.as_ref() {
            // A declared hook no exec shows: kubelet's own sleep, or an HTTP request.
            match (hook, c.prestop_s) {
                (crate::container::DeclaredHook::None, _) => {}
                (crate::container::DeclaredHook::HttpGet { .. }, _) => line.push_str(&format!(
                    ", preStop {} (its duration is not visible)",
                    hook.describe()
                )),
                (_, Some(d)) => {
                    line.push_str(&format!(", preStop {} ran {d:.1}s", hook.describe()));
                }
                (_, None) => line.push_str(&format!(", preStop {}", hook.describe())),
            }
        }
        if c.overrun_s > 0.0 {
            line.push_str(&format!(", overrun {:.3}s", c.overrun_s));
        }
        line.push_str(&format!("  {d}"));
        if let Some(h) = &c.hint {
            line.push_str(&format!(" — {h}"));
        }
        writeln!(self.out, "{line}")
    }

    fn pod_stop(&mut self, p: &PodStop) -> std::io::Result<()> {
        if self.format == Format::Json {
            return self.json(p);
        }
        let d = self.paint(diagnosis_color(p.diagnosis), p.diagnosis.as_str());
        let workload = p
            .workload
            .as_ref()
            .map(|w| format!(" ({} {})", w.kind.as_str(), w.name))
            .unwrap_or_default();
        let mut line = format!(
            "{}  {:<28} {} {}{workload} stopped in {:.3}s, {} container(s)",
            clock_time(p.started),
            p.label(),
            self.paint(BOLD, "POD STOP"),
            p.pod.as_deref().unwrap_or(&p.pod_uid),
            p.duration_s,
            p.containers.len(),
        );
        if let Some(c) = &p.held_up_by {
            line.push_str(&format!(", held up by {c} ({:.3}s)", p.held_up_s));
        }
        if !p.killed_at_teardown.is_empty() {
            line.push_str(&format!(
                ", SIGKILLed at sandbox teardown without a stop signal: {}",
                p.killed_at_teardown.join(", ")
            ));
        }
        line.push_str(&format!("  {d}"));
        if let Some(h) = &p.hint {
            line.push_str(&format!(" — {h}"));
        }
        writeln!(self.out, "{line}")
    }

    pub fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }

    /// The writer back.
    pub fn into_inner(self) -> W {
        self.out
    }
}

/// `run --raw`: every decoded kernel event as one JSON line, no correlation.
pub struct RawPrinter<W: Write> {
    out: W,
    clock: Clock,
}

impl<W: Write> RawPrinter<W> {
    pub fn new(out: W, clock: Clock) -> Self {
        Self { out, clock }
    }
}

impl<W: Write> Consumer for RawPrinter<W> {
    fn input(&mut self, input: Input<'_>) -> Result<(), FeedError> {
        let line = match input {
            Input::Kernel(bytes, _) if CgroupCreated::is(bytes) => {
                let c = CgroupCreated::try_from(bytes)?;
                serde_json::to_writer(
                    &mut self.out,
                    &serde_json::json!({"event": "cgroup_created", "mono_ns": c.mono_ns,
                        "cgroup_id": c.cgroup_id, "path": c.path}),
                )
            }
            Input::Kernel(bytes, clock) => {
                let ev = KernelRecord::try_from(bytes)?.into_event(&clock.unwrap_or(self.clock));
                serde_json::to_writer(&mut self.out, &ev)
            }
            Input::Lost { count, mono_ns } => serde_json::to_writer(
                &mut self.out,
                &serde_json::json!({"event": "lost", "mono_ns": mono_ns, "count": count}),
            ),
            Input::Tick { .. } => return Ok(self.out.flush().map_err(anyhow::Error::from)?),
            Input::Container { .. } | Input::Session(_) | Input::Warning(_) | Input::Gone(_) => {
                return Ok(())
            }
        };
        line.map_err(anyhow::Error::from)?;
        self.out.write_all(b"\n").map_err(anyhow::Error::from)?;
        Ok(())
    }

    fn finish(&mut self) -> anyhow::Result<()> {
        self.out.flush()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
