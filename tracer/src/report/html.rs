//! The HTML of `sigtrace report`: one self-contained file (inline CSS, inline SVG, a little
//! inline JavaScript, no fetches: a Content-Security-Policy forbids any) that opens from a
//! laptop or a ticket. A summary with the fixes ranked by the time they would save, a legend,
//! a swimlane timeline (one lane per pod, container or host process, grouped by workload, with
//! container/process sub-lanes; bars coloured by diagnosis; marks for every signal, the preStop
//! phase and the grace deadline; hover titles, click for details, zoom and horizontal scroll),
//! and the details of every stop). The lanes and the details are drawn by the page's script
//! from the embedded data ([`super::data`]), only those in view on a large report, so that a
//! fleet's report stays small and opens at once.
use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::data::Data;
use super::records::{Stop, StopKind};
use crate::engine::Diagnosis;
use crate::event::WallTime;

/// Diagnosis colours (one home for the report; the terminal uses ANSI colours).
pub fn color(diagnosis: Diagnosis) -> &'static str {
    match diagnosis {
        Diagnosis::Graceful => "#2e9d4f",
        Diagnosis::DefaultAction => "#8fbf4f",
        Diagnosis::ForceKilled => "#d4a017",
        Diagnosis::OrphanKilled => "#9b59b6",
        Diagnosis::OomKilled => "#7d3c98",
        Diagnosis::SlowHandler => "#e67e22",
        Diagnosis::SlowPrestop => "#f39c12",
        Diagnosis::IgnoredByPid1 => "#c0392b",
        Diagnosis::ShellNotForwarding => "#e74c3c",
        Diagnosis::WrongSignal => "#d35400",
        Diagnosis::SignalIgnored => "#a93226",
        Diagnosis::SignalBlocked => "#922b21",
    }
}

/// Escapes text for HTML and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn secs(s: f64) -> String {
    if s >= 120.0 {
        format!("{:.1} min", s / 60.0)
    } else {
        format!("{s:.1} s")
    }
}

fn time(us: i64) -> String {
    WallTime::from_ns(us.saturating_mul(1000)).to_string()
}

/// Time the stop waited for SIGKILL: from its start to the grace deadline, when killed.
fn waited_s(s: &Stop) -> f64 {
    match (s.killed, s.deadline_us) {
        (true, Some(d)) => (d - s.started_us).max(0) as f64 / 1e6,
        _ => 0.0,
    }
}

/// One row of "what to change": stops of a group with one diagnosis.
#[derive(Default)]
struct Fix<'a> {
    stops: usize,
    killed: usize,
    /// Time they spent waiting for SIGKILL: what fixing them would save.
    saved_s: f64,
    hint: Option<&'a str>,
}

const LABEL_W: f64 = 260.0;
const PLOT_W: f64 = 1100.0;

/// Everything the page shows.
pub struct Page<'a> {
    pub title: &'a str,
    pub stops: &'a [Stop],
    pub notes: &'a [String],
}

impl Page<'_> {
    pub fn render(&self) -> String {
        let mut stops: Vec<&Stop> = self.stops.iter().collect();
        stops.sort_by(|a, b| {
            (&a.group, a.started_us, &a.label).cmp(&(&b.group, b.started_us, &b.label))
        });
        let mut h = String::with_capacity(4096 + stops.len() * 1200);
        h.push_str(HEAD);
        let _ = write!(
            h,
            "<title>{}</title></head><body data-ready=\"0\">",
            esc(self.title)
        );
        let _ = write!(h, "<h1>{}</h1>", esc(self.title));
        self.summary(&mut h, &stops);
        legend(&mut h, &stops);
        timeline(&mut h, &stops);
        h.push_str("<script>");
        h.push_str(SCRIPT);
        h.push_str("</script>");
        h.push_str("</body></html>\n");
        h
    }

    fn summary(&self, h: &mut String, stops: &[&Stop]) {
        h.push_str("<section id=\"summary\"><h2>Summary</h2>");
        let (first, last) = span(stops);
        let nodes: std::collections::BTreeSet<&str> =
            stops.iter().map(|s| s.node.as_str()).collect();
        let waited: f64 = stops.iter().map(|s| waited_s(s)).sum();
        let killed = stops.iter().filter(|s| s.killed).count();
        let _ =
            write!(
            h,
            "<p id=\"totals\"><b data-stops=\"{}\">{}</b> stops ({} pods, {} containers, {} host \
             processes) on {} node(s), {} to {}. <b>{killed}</b> ended in SIGKILL; time spent \
             waiting for SIGKILL: <b id=\"waited\" data-seconds=\"{waited:.3}\">{}</b>.</p>",
            stops.len(),
            stops.len(),
            stops.iter().filter(|s| s.kind == StopKind::Pod).count(),
            stops.iter().filter(|s| s.kind == StopKind::Container).count(),
            stops.iter().filter(|s| s.kind == StopKind::Process).count(),
            nodes.len(),
            if stops.is_empty() { "-".into() } else { time(first) },
            if stops.is_empty() { "-".into() } else { time(last) },
            secs(waited),
        );
        if !self.notes.is_empty() {
            h.push_str("<div id=\"notes\"><b>Input notes:</b><ul>");
            for n in self.notes {
                let _ = write!(h, "<li>{}</li>", esc(n));
            }
            h.push_str("</ul></div>");
        }
        fixes(h, stops);
        tables(h, stops);
        h.push_str("</section>");
    }
}

/// The fixes, ranked by the time they would save.
fn fixes(h: &mut String, stops: &[&Stop]) {
    let mut fixes: BTreeMap<(&str, Diagnosis), Fix> = BTreeMap::new();
    let mut per_group: BTreeMap<&str, usize> = BTreeMap::new();
    for s in stops {
        *per_group.entry(s.group.as_str()).or_default() += 1;
        if matches!(s.diagnosis, Diagnosis::Graceful | Diagnosis::DefaultAction) {
            continue;
        }
        let e = fixes.entry((s.group.as_str(), s.diagnosis)).or_insert(Fix {
            hint: s.hint.as_deref(),
            ..Fix::default()
        });
        e.stops += 1;
        e.killed += usize::from(s.killed);
        e.saved_s += waited_s(s);
    }
    let mut ranked: Vec<_> = fixes.into_iter().collect();
    ranked.sort_by(|a, b| {
        b.1.saved_s
            .total_cmp(&a.1.saved_s)
            .then(b.1.stops.cmp(&a.1.stops))
    });
    h.push_str("<h3>What to change, by the time it would save</h3><ol id=\"fixes\">");
    if ranked.is_empty() {
        h.push_str("<li>Nothing: every stop was graceful or ended by the default action.</li>");
    }
    for ((group, diag), fix) in ranked.iter().take(20) {
        let (n, k, saved, hint) = (&fix.stops, &fix.killed, &fix.saved_s, &fix.hint);
        let _ = write!(
            h,
            "<li data-saved=\"{saved:.3}\"><b>{}</b>: {n} of {} stops <span class=\"diag\" \
             style=\"color:{}\">{}</span>{}{} &mdash; ~{} waiting for SIGKILL</li>",
            esc(group),
            per_group.get(group).copied().unwrap_or(*n),
            color(*diag),
            esc(diag.as_str()),
            if *k > 0 {
                format!(", {k} killed")
            } else {
                String::new()
            },
            hint.map(|h| format!(": {}", esc(h))).unwrap_or_default(),
            secs(*saved),
        );
    }
    h.push_str("</ol>");
}

/// The tables by workload and by diagnosis.
fn tables(h: &mut String, stops: &[&Stop]) {
    h.push_str("<div class=\"tables\"><table id=\"by-workload\"><tr><th>workload / container</th><th>stops</th><th>killed</th><th>median</th><th>max</th><th>diagnoses</th></tr>");
    let mut groups: BTreeMap<&str, Vec<&Stop>> = BTreeMap::new();
    for s in stops {
        groups.entry(s.group.as_str()).or_default().push(s);
    }
    for (g, v) in &groups {
        let mut d: Vec<f64> = v.iter().map(|s| s.duration_s).collect();
        d.sort_by(f64::total_cmp);
        let mut diags: BTreeMap<Diagnosis, usize> = BTreeMap::new();
        for s in v {
            *diags.entry(s.diagnosis).or_default() += 1;
        }
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(g),
            v.len(),
            v.iter().filter(|s| s.killed).count(),
            secs(d[d.len() / 2]),
            secs(d[d.len() - 1]),
            diags
                .iter()
                .map(|(k, n)| format!("{} {n}", esc(k.as_str())))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    h.push_str("</table><table id=\"by-diagnosis\"><tr><th>diagnosis</th><th>stops</th></tr>");
    let mut diags: BTreeMap<Diagnosis, usize> = BTreeMap::new();
    for s in stops {
        *diags.entry(s.diagnosis).or_default() += 1;
    }
    for (d, n) in diags {
        let _ = write!(
            h,
            "<tr><td><i class=\"sw\" style=\"background:{}\"></i>{}</td><td>{n}</td></tr>",
            color(d),
            esc(d.as_str())
        );
    }
    h.push_str("</table></div>");
}

fn span(stops: &[&Stop]) -> (i64, i64) {
    let first = stops.iter().map(|s| s.started_us).min().unwrap_or(0);
    let last = stops
        .iter()
        .map(|s| s.ended_us.unwrap_or(s.started_us).max(s.started_us))
        .max()
        .unwrap_or(first);
    (first, last)
}

fn legend(h: &mut String, stops: &[&Stop]) {
    let present: std::collections::BTreeSet<Diagnosis> =
        stops.iter().map(|s| s.diagnosis).collect();
    h.push_str("<section id=\"legend\"><h2>Legend</h2>");
    for &d in Diagnosis::ALL {
        let name = d.as_str();
        let _ = write!(
            h,
            "<span class=\"legend-item{}\" data-diagnosis=\"{name}\"><i class=\"sw\" style=\"background:{}\"></i>{name}</span>",
            if present.contains(&d) { " present" } else { "" },
            color(d)
        );
    }
    h.push_str(
        "<span class=\"legend-item\"><i class=\"sw prestop\"></i>preStop hook</span>\
         <span class=\"legend-item\"><i class=\"mk\"></i>signal (hover for which)</span>\
         <span class=\"legend-item\"><i class=\"dl\"></i>grace deadline (SIGKILL)</span></section>",
    );
}

fn timeline(h: &mut String, stops: &[&Stop]) {
    let (first, last) = span(stops);
    let range_s = ((last - first) as f64 / 1e6).max(0.001);
    let scale = PLOT_W / range_s; // px per second
    let data = Data::new(stops, first);
    let height = data.height;
    let _ = write!(
        h,
        "<section id=\"timeline\"><h2>Timeline</h2><div class=\"controls\">\
         <button id=\"zoom-out\" type=\"button\">&minus;</button><button id=\"zoom-in\" type=\"button\">+</button>\
         <span id=\"scale\"></span> Click a bar for its details.</div><div class=\"scroll\">\
         <svg id=\"lanes\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{:.0}\" height=\"{height:.0}\" data-scale=\"{scale:.6}\" data-label-w=\"{LABEL_W}\" data-range=\"{range_s:.6}\">",
        LABEL_W + PLOT_W + 20.0
    );
    // Axis: ten ticks. The lanes are drawn by the page's script from the data below.
    for k in 0..=10 {
        let ts = range_s * k as f64 / 10.0;
        let _ = write!(
            h,
            "<g class=\"tick t\" data-t0=\"{ts:.6}\"><line x1=\"{0:.2}\" x2=\"{0:.2}\" y1=\"18\" y2=\"{height:.0}\"/><text x=\"{0:.2}\" y=\"12\">+{1}</text></g>",
            LABEL_W + ts * scale,
            secs(ts),
        );
    }
    h.push_str("<g id=\"rows\"></g></svg></div></section>");
    let _ = write!(
        h,
        "<section id=\"details\"><h2>Details</h2><p id=\"details-note\"></p><div id=\"detail-list\"></div></section>\
         <script type=\"application/json\" id=\"stops-data\">{}</script>",
        data.to_script_json()
    );
}

const HEAD: &str = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<style>\
body{font:14px/1.4 system-ui,sans-serif;margin:16px 24px;color:#222}\
h1{font-size:20px}h2{font-size:17px;margin-top:24px}h3{font-size:15px}\
table{border-collapse:collapse;margin:8px 16px 8px 0;font-size:13px}\
td,th{border:1px solid #ddd;padding:2px 6px;text-align:left;vertical-align:top}\
.tables{display:flex;flex-wrap:wrap;align-items:flex-start}\
.sw{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:-1px;border-radius:2px}\
.sw.prestop{background:repeating-linear-gradient(45deg,#f39c12,#f39c12 3px,#fff 3px,#fff 6px)}\
.legend-item{margin-right:14px;white-space:nowrap;opacity:.55}.legend-item.present{opacity:1;font-weight:600}\
.mk{display:inline-block;width:2px;height:12px;background:#111;margin-right:4px}\
.dl{display:inline-block;width:0;height:12px;border-left:2px dashed #c0392b;margin-right:4px}\
.scroll{overflow-x:auto;border:1px solid #ddd}svg text{font-size:11px}\
svg .group{font-weight:700;font-size:12px}svg .node{fill:#888}svg .part-label{fill:#555;font-size:9px}\
svg .tick line{stroke:#eee}svg .tick text{fill:#888;font-size:10px}\
svg .bar{cursor:pointer;stroke:#0003}svg .bar:hover{stroke:#000}\
svg .prestop{fill:#f39c12;opacity:.45}svg .mark{stroke:#111;stroke-width:1.5}\
svg .deadline{stroke:#c0392b;stroke-width:2;stroke-dasharray:3 2}\
details{margin:4px 0}details[open]{background:#fafafa}.hint{color:#a04000}\
#notes{background:#fff6e0;border:1px solid #e8c36a;padding:4px 10px}\
</style>";

/// The page's script: lanes in view and details on demand, from the data (see [`Data`]).
const SCRIPT: &str = include_str!("page.js");
