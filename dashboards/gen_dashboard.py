#!/usr/bin/env python3
"""Generates dashboards/sigtrace.json (the Grafana dashboard) from the panel list below, with
Grafana's own typed builders (PyPI `grafana-foundation-sdk`, pinned in deploy/tools.sh).

Edit this file, then run `target/pyenv/bin/python dashboards/gen_dashboard.py` (the virtualenv
`bash dashboards/check.sh` sets up); check.sh fails when sigtrace.json is not what this script
writes.
"""
import json
import os

from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import heatmap as hb
from grafana_foundation_sdk.builders import prometheus as pb
from grafana_foundation_sdk.builders import stat as sb
from grafana_foundation_sdk.builders import table as tb
from grafana_foundation_sdk.builders import timeseries as tsb
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common as mc
from grafana_foundation_sdk.models import dashboard as md
from grafana_foundation_sdk.models import prometheus as mp

# Per-workload and per-namespace series are filtered by both variables; series without a
# namespace label (signals, agent health) by node only. `=~".*"` also matches a missing or
# empty label (host processes have namespace="").
NS = 'namespace=~"$namespace", node=~"$node"'
# Series with a workload label (Kubernetes pods) are filtered by the workload variable too.
WL = NS + ', workload=~"$workload"'
NODE = 'node=~"$node"'
RI = "$__rate_interval"


def new_or_increase(metric, sel, window):
    """Count of events in `window`, including series born inside it.

    With a `pod` label most per-workload series are created at 1 when the pod stops and never
    change again, so increase() alone shows nothing for them: series that did not exist one
    window ago count with their whole value, older ones with their increase.
    """
    return (
        f"({metric}{{{sel}}} unless {metric}{{{sel}}} offset {window})"
        f" or increase({metric}{{{sel}}}[{window}])"
    )


_next_id = [0]


def pid():
    _next_id[0] += 1
    return _next_id[0]


DS = md.DataSourceRef(type_val="prometheus", uid="${datasource}")


def target(expr, legend="", instant=False, fmt=None):
    t = pb.Dataquery().datasource(DS).expr(expr).legend_format(legend)
    t = t.instant() if instant else t.range()
    if fmt or instant:
        t = t.format(mp.PromQueryFormat(fmt or "table"))
    return t


def refs(targets):
    return [t.ref_id(chr(ord("A") + i)) for i, t in enumerate(targets)]


def gp(x, y, w, h):
    return md.GridPos(x=x, y=y, w=w, h=h)


def common_panel(panel, title, desc, targets, pos, unit):
    return (
        panel.id(pid())
        .title(title)
        .description(desc)
        .datasource(DS)
        .grid_pos(pos)
        .unit(unit)
        .targets(refs(targets))
    )


def timeseries(title, desc, targets, pos, unit="short", stack=False, bars=False, decimals=None):
    p = (
        common_panel(tsb.Panel(), title, desc, targets, pos, unit)
        .min(0)
        .draw_style(mc.GraphDrawStyle.BARS if bars else mc.GraphDrawStyle.LINE)
        .line_width(1)
        .fill_opacity(60 if bars else 15)
        .show_points(mc.VisibilityMode.NEVER)
        .span_nulls(False)
        .stacking(
            cb.StackingConfig()
            .mode(mc.StackingMode.NORMAL if stack else mc.StackingMode.NONE)
            .group("A")
        )
        .legend(
            cb.VizLegendOptions()
            .display_mode(mc.LegendDisplayMode.TABLE)
            .placement(mc.LegendPlacement.RIGHT)
            .calcs(["sum", "max"])
            .show_legend(True)
        )
        .tooltip(cb.VizTooltipOptions().mode(mc.TooltipDisplayMode.MULTI).sort(mc.SortOrder.DESCENDING))
    )
    if decimals is not None:
        p = p.decimals(decimals)
    return p


def table(title, desc, targets, pos, unit="short", hide=("Time",)):
    return (
        common_panel(tb.Panel(), title, desc, targets, pos, unit)
        .show_header(True)
        .sort_by([cb.TableSortByFieldState().display_name("Value").desc(True)])
        .with_transformation(
            md.DataTransformerConfig(
                id_val="organize", options={"excludeByName": {h: True for h in hide}}
            )
        )
    )


def stat(title, desc, targets, pos, unit="short"):
    return (
        common_panel(sb.Panel(), title, desc, targets, pos, unit)
        .reduce_options(cb.ReduceDataOptions().calcs(["lastNotNull"]).fields("").values(False))
        .color_mode(mc.BigValueColorMode.VALUE)
        .graph_mode(mc.BigValueGraphMode.AREA)
        .text_mode(mc.BigValueTextMode.AUTO)
    )


def heatmap(title, desc, targets, pos):
    return (
        hb.Panel()
        .id(pid())
        .title(title)
        .description(desc)
        .datasource(DS)
        .grid_pos(pos)
        .targets(refs(targets))
        .calculate(False)
        .y_axis(hb.YAxisConfig().axis_placement(mc.AxisPlacement.LEFT).unit("s"))
        .rows_frame(hb.RowsHeatmapOptions().layout(mc.HeatmapCellLayout.LE))
        .color(
            hb.HeatmapColorOptions()
            .mode("scheme")
            .scheme("Oranges")
            .exponent(0.5)
            .steps(64)
            .fill("dark-orange")
        )
        .cell_gap(1)
        .show_tooltip()
        .show_y_histogram()
        .show_legend()
        .exemplars_color("rgba(255,0,255,0.7)")
        .scale_distribution(cb.ScaleDistributionConfig().type(mc.ScaleDistribution.LINEAR))
    )


def row(title, y):
    return ("row", db.Row(title).id(pid()).grid_pos(md.GridPos(x=0, y=y, w=24, h=1)))


CSTOPS = "sigtrace_container_stops_total"
panels = []
y = 0

# ---- Shutdowns --------------------------------------------------------------------------
panels.append(row("Shutdowns", y)); y += 1
panels.append(timeseries(
    "Shutdowns per minute by diagnosis",
    "Every process shutdown on the selected nodes (container and host processes), per minute, "
    "by sigtrace's diagnosis. Anything but graceful/default_action deserves a look: see the "
    "dashboard README for the fix of each diagnosis.",
    [target(f"60 * sum by (diagnosis) (rate(sigtrace_process_stops_total{{{NS}}}[{RI}]))", "{{diagnosis}}")],
    gp(0, y, 12, 8), unit="short", stack=True))
panels.append(timeseries(
    "Container stops by diagnosis",
    "Container stops in each interval (count, not a rate), by diagnosis. Counts pods whose series "
    "appear for the first time too (see README: per-pod series start at 1).",
    [target(f"sum by (diagnosis) ({new_or_increase(CSTOPS, NS, RI)})", "{{diagnosis}}")],
    gp(12, y, 12, 8), unit="short", stack=True, bars=True, decimals=0))
y += 8
panels.append(table(
    "Container stops in range by diagnosis and outcome",
    "Container stops during the dashboard's time range. outcome: exited (exit code), signaled "
    "(ended by a non-KILL signal), killed (SIGKILL).",
    [target(f"sort_desc(sum by (diagnosis, outcome) ({new_or_increase(CSTOPS, NS, '$__range')}))",
            instant=True)],
    gp(0, y, 8, 8), unit="short"))
panels.append(timeseries(
    "Stop duration p50 / p90 / p99",
    "Time from the first stop signal to the end of the last process, from the "
    "sigtrace_stop_duration_seconds histogram (kind = container | process).",
    [target(f"histogram_quantile({q}, sum by (le, kind) (rate(sigtrace_stop_duration_seconds_bucket{{{NS}}}[{RI}])))",
            f"p{int(q * 100)} {{{{kind}}}}") for q in (0.5, 0.9, 0.99)],
    gp(8, y, 16, 8), unit="s"))
y += 8
panels.append(heatmap(
    "Container stop duration (heatmap)",
    "Container stops per duration bucket and interval. A band at the grace period "
    "(30 s on Kubernetes, 10 s on Docker) means stops that waited for SIGKILL.",
    [target(
        f'sum by (le) (increase(sigtrace_stop_duration_seconds_bucket{{{NS}, kind="container"}}[{RI}]))',
        "{{le}}", fmt="heatmap")],
    gp(0, y, 24, 9)))
y += 9

# ---- Overruns and kills -----------------------------------------------------------------
panels.append(row("Grace overruns and kills", y)); y += 1
overruns = new_or_increase("sigtrace_grace_overruns_total", NS, "$__range")
overrun_s = new_or_increase("sigtrace_grace_overrun_seconds_total", NS, "$__range")
panels.append(table(
    "Top workloads by grace overruns",
    "Containers that needed SIGKILL after the grace period, during the time range (top 10).",
    [target(f"topk(10, sum by (namespace, pod, container) ({overruns}) > 0)", instant=True)],
    gp(0, y, 12, 8)))
panels.append(table(
    "Top workloads by overrun seconds",
    "Seconds past the grace period those containers would have needed (sum over the time "
    "range, top 10): how much to raise terminationGracePeriodSeconds, or cut from cleanup.",
    [target(f"topk(10, sum by (namespace, pod, container) ({overrun_s}) > 0)", instant=True)],
    gp(12, y, 12, 8), unit="s"))
y += 8
panels.append(timeseries(
    "OOM kills vs grace overruns vs force kills",
    "Three different reasons for exit code 137: the OOM killer (raise the limit / fix the leak), "
    "a grace-period overrun (the app did not stop in time), a forced kill (docker kill, "
    "--grace-period=0 --force).",
    [target(f"sum({new_or_increase('sigtrace_oom_kills_total', NS, RI)})", "OOM kills"),
     target(f"sum({new_or_increase('sigtrace_grace_overruns_total', NS, RI)})", "grace overruns"),
     target(f"sum({new_or_increase('sigtrace_force_kills_total', NS, RI)})", "force kills")],
    gp(0, y, 12, 8), bars=True, decimals=0))
bad = 'diagnosis!~"graceful|default_action"'
panels.append(table(
    "Top workloads by unclean stops",
    "Containers whose stops during the time range were not graceful, by diagnosis (top 15). "
    "ignored_by_pid1: handle the signal or use an init; shell_not_forwarding: exec the app or use "
    "tini; wrong_signal: set STOPSIGNAL; slow_handler: shorten cleanup or raise the grace period.",
    [target(f"topk(15, sum by (namespace, pod, container, diagnosis) "
            f"({new_or_increase(CSTOPS, NS + ', ' + bad, '$__range')}) > 0)", instant=True)],
    gp(12, y, 12, 8)))
y += 8

# ---- Workloads (Kubernetes) -------------------------------------------------------------
panels.append(row("Workloads (Kubernetes pods)", y)); y += 1
pods_range = new_or_increase("sigtrace_pod_stops_total", WL, "$__range")
panels.append(table(
    "Pod stops in range by workload and diagnosis",
    "Pods deleted during the time range (all containers and the sandbox gone), by workload "
    "(Deployment, StatefulSet, ... derived from the pod name, or from labels where the runtime "
    "keeps them) and by the diagnosis of the pod's least clean container.",
    [target(f"sort_desc(sum by (namespace, workload, workload_type, diagnosis) ({pods_range}))",
            instant=True)],
    gp(0, y, 12, 8)))
panels.append(timeseries(
    "Pod termination time p50 / p90 by workload",
    "First stop signal to the end of the pod's sandbox, from sigtrace_pod_termination_seconds. "
    "A workload sitting at its terminationGracePeriodSeconds waits for SIGKILL on every rollout.",
    [target(f"histogram_quantile({q}, sum by (le, namespace, workload) "
            f"(rate(sigtrace_pod_termination_seconds_bucket{{{WL}}}[{RI}])))",
            f"p{int(q * 100)} {{{{namespace}}}}/{{{{workload}}}}") for q in (0.5, 0.9)],
    gp(12, y, 12, 8), unit="s"))
y += 8
panels.append(timeseries(
    "Container stops by workload",
    "Container stops of Kubernetes pods in each interval, by workload and diagnosis.",
    [target(f'sum by (namespace, workload, diagnosis) '
            f'({new_or_increase(CSTOPS, WL + ", workload!=" + chr(34) + chr(34), RI)})',
            "{{namespace}}/{{workload}} {{diagnosis}}")],
    gp(0, y, 12, 8), bars=True, decimals=0))
panels.append(timeseries(
    "preStop hook duration p90 by workload",
    "Run time of preStop exec hooks (sigtrace_prestop_duration_seconds). kubelet subtracts it "
    "from terminationGracePeriodSeconds before the app gets SIGTERM: a hook near the grace "
    "leaves the app nothing (diagnosis slow_prestop).",
    [target(f"histogram_quantile(0.9, sum by (le, namespace, workload) "
            f"(rate(sigtrace_prestop_duration_seconds_bucket{{{WL}}}[{RI}])))",
            "p90 {{namespace}}/{{workload}}")],
    gp(0, y + 8, 12, 8), unit="s"))
panels.append(table(
    "Workloads by overrun seconds and teardown kills",
    "Per workload over the time range: seconds its containers ran past the grace period, and "
    "containers SIGKILLed at sandbox teardown without a stop signal before.",
    [target(f"topk(10, sum by (namespace, workload) "
            f"({new_or_increase('sigtrace_grace_overrun_seconds_total', WL, '$__range')}) > 0)",
            instant=True),
     target(f"topk(10, sum by (namespace, workload) "
            f"({new_or_increase('sigtrace_teardown_kills_total', WL, '$__range')}) > 0)",
            instant=True)],
    gp(12, y, 12, 8)))
y += 16

# ---- Signals ----------------------------------------------------------------------------
panels.append(row("Signals", y)); y += 1
panels.append(timeseries(
    "Signals by result",
    "Signals generated per second on the selected nodes, by what the kernel did: delivered, "
    "ignored (e.g. dropped for a PID-namespace init without handler), already_pending, overflow, "
    "lose_info. Not filtered by namespace (the metric has no namespace label).",
    [target(f"sum by (result) (rate(sigtrace_signals_total{{{NODE}}}[{RI}]))", "{{result}}")],
    gp(0, y, 8, 8), unit="ops", stack=True))
panels.append(timeseries(
    "Signals by sender class",
    "Who sends signals: runtime (runc/crun/shim), container_init, same_container, "
    "other_container, kernel (OOM, orphan kills), host.",
    [target(f"sum by (sender_class) (rate(sigtrace_signals_total{{{NODE}}}[{RI}]))", "{{sender_class}}")],
    gp(8, y, 8, 8), unit="ops", stack=True))
panels.append(timeseries(
    "Signals not delivered, by signal",
    "Signals the kernel ignored, found already pending, or could not queue.",
    [target(f'sum by (signal, result) (rate(sigtrace_signals_total{{{NODE}, result!="delivered"}}[{RI}]))',
            "{{signal}} {{result}}")],
    gp(16, y, 8, 8), unit="ops"))
y += 8

# ---- Agent health -----------------------------------------------------------------------
panels.append(row("Agent health", y)); y += 1
panels.append(stat(
    "Agents reporting",
    "sigtrace agents with a build_info series on the selected nodes.",
    [target(f"count(sigtrace_build_info{{{NODE}}})", "agents")],
    gp(0, y, 4, 8)))
panels.append(timeseries(
    "Events read per second",
    "Kernel events read from the ring buffer, per agent.",
    [target(f"sum by (node, instance) (rate(sigtrace_events_read_total{{{NODE}}}[{RI}]))", "{{node}} {{instance}}")],
    gp(4, y, 10, 8), unit="ops"))
panels.append(timeseries(
    "Events lost / decode errors per second",
    "Should stay at zero. Lost events: ring buffer full (raise --ring-kib or give the agent CPU); "
    "decode errors: an event the user-space decoder rejected.",
    [target(f"sum by (node, instance) (rate(sigtrace_events_lost_total{{{NODE}}}[{RI}]))", "lost {{node}} {{instance}}"),
     target(f"sum by (node, instance) (rate(sigtrace_decode_errors_total{{{NODE}}}[{RI}]))", "decode errors {{node}} {{instance}}")],
    gp(14, y, 10, 8), unit="ops"))
y += 8
panels.append(timeseries(
    "Tracked processes / containers",
    "State held by each agent (capped by --max-processes).",
    [target(f"sum by (node, instance) (sigtrace_tracked_processes{{{NODE}}})", "processes {{node}} {{instance}}"),
     target(f"sum by (node, instance) (sigtrace_tracked_containers{{{NODE}}})", "containers {{node}} {{instance}}")],
    gp(0, y, 8, 8)))
panels.append(timeseries(
    "Evictions per second",
    "State evicted because a cap was reached, by what was evicted.",
    [target(f"sum by (what) (rate(sigtrace_evictions_total{{{NODE}}}[{RI}]))", "{{what}}")],
    gp(8, y, 8, 8), unit="ops"))
panels.append(timeseries(
    "Metadata misses / unresolved cgroups / label sets dropped per second",
    "Metadata misses: a container whose runtime state (pod, namespace, name) could not be read. "
    "Unresolved cgroups: a traced process's cgroup whose path could not be found (gone before "
    "the agent looked and its creation not seen): no container for it. "
    "Label sets dropped: per-container series refused by --metrics-max-series.",
    [target(f"sum by (node, instance) (rate(sigtrace_metadata_misses_total{{{NODE}}}[{RI}]))", "metadata misses {{node}} {{instance}}"),
     target(f"sum by (node, instance) (rate(sigtrace_cgroups_unresolved_total{{{NODE}}}[{RI}]))", "unresolved cgroups {{node}} {{instance}}"),
     target(f"sum by (node, instance) (rate(sigtrace_label_sets_overflow_total{{{NODE}}}[{RI}]))", "label sets dropped {{node}} {{instance}}")],
    gp(16, y, 8, 8), unit="ops"))
y += 8
panels.append(timeseries(
    "Signals counted only, by signal",
    "Signals outside --signals: counted in the kernel, not emitted as events.",
    [target(f"sum by (signal) (rate(sigtrace_signals_counted_only_total{{{NODE}}}[{RI}]))", "{{signal}}")],
    gp(0, y, 10, 8), unit="ops"))
panels.append(table(
    "Build info",
    "Agent version and kernel per node.",
    [target(f"sigtrace_build_info{{{NODE}}}", instant=True)],
    gp(10, y, 14, 8), hide=("Time", "Value", "__name__")))
y += 8




def query_var(name, label, query):
    return (
        db.QueryVariable(name)
        .label(label)
        .datasource(DS)
        .query(query)
        .refresh(md.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .multi(True)
        .include_all(True)
        .all_value(".*")
        .current(md.VariableOption(selected=True, text=["All"], value=["$__all"]))
        .sort(md.VariableSort.ALPHABETICAL_ASC)
    )


def build():
    d = (
        db.Dashboard("sigtrace: process and container shutdowns")
        .uid("sigtrace-shutdowns")
        .description(
            "Why processes and containers stop the way they do: diagnoses, stop durations, "
            "grace-period overruns, OOM and forced kills, signals, and sigtrace's own health."
        )
        .tags(["sigtrace", "kubernetes", "ebpf"])
        .editable()
        .tooltip(md.DashboardCursorSync.CROSSHAIR)
        .version(1)
        .time("now-6h", "now")
        .timezone("browser")
        .refresh("1m")
        .with_variable(db.DatasourceVariable("datasource").label("Data source").type("prometheus"))
        .with_variable(query_var("node", "Node", "label_values(sigtrace_build_info, node)"))
        .with_variable(
            query_var("namespace", "Namespace", "label_values(sigtrace_process_stops_total, namespace)")
        )
        .with_variable(
            query_var("workload", "Workload", "label_values(sigtrace_container_stops_total, workload)")
        )
    )
    for p in panels:
        if isinstance(p, tuple):
            d = d.with_row(p[1])
        else:
            d = d.with_panel(p)
    model = d.build()
    # The builders write schema 36; these panels' JSON is that of 39 (Grafana 10.x).
    model.schema_version = 39
    return model


if __name__ == "__main__":
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sigtrace.json")
    with open(out, "w") as f:
        json.dump(build(), f, cls=JSONEncoder, indent=2)
        f.write("\n")
    print(f"wrote {out}: {len(panels)} panels")
