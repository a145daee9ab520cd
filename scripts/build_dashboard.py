"""Writes grafana/dashboards/mailcanary.json: the fleet dashboard (works at 10,000 targets).

    python scripts/build_dashboard.py          # rewrite the JSON
    python scripts/build_dashboard.py --check  # exit 1 if the JSON is not what this writes

Edit this script, not the JSON (tests/test_ship.py checks they agree). Every fleet panel
aggregates (counts by class, server, provider, an account label); per-target panels take
the `target` variable and at most `$topk` series; the per-target row is collapsed, so its
queries run only when opened. The "failing now" table's hint column maps each reason to
the generic text of mailcanary.diagnosis.hints (failure_info has no hint label).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from mailcanary.diagnosis.hints import HINTS  # noqa: E402  (after sys.path)

OUT = ROOT / "grafana" / "dashboards" / "mailcanary.json"
DS = {"type": "prometheus", "uid": "${datasource}"}
J = 'job=~"$job"'
KEY = "on (job, instance, probe, target)"
# Every configured target of the selected servers and providers.
F = f'mailcanary_target_info{{{J}, server=~"$server", provider=~"$provider"}}'
FAILING = f"({F} and {KEY} mailcanary_probe_failure_info{{{J}}})"
PROBED = f"(mailcanary_probes_total{{{J}}} > 0)"
MIN_STEP = "1m"  # the smallest step of a graph: a 1 h view at 15 s reads 4x the points
NEVER = 1e12  # "time since last success" of a target that never succeeded (sorts first)


def generic_hint(reason: str) -> str:
    text = HINTS[reason].replace("{host}:{port}", "the server's port")
    for word, generic in (("{host}", "the server"), ("{port}", "its port"),
                          ("{phase}", "the failing phase"), ("{proto_upper}", "the protocol"),
                          ("{account}", "<account>")):
        text = text.replace(word, generic)
    return text


def query(expr: str, legend: str = "", *, instant: bool = False, table: bool = False,
          ref: str = "A") -> dict[str, Any]:
    target: dict[str, Any] = {"datasource": DS, "refId": ref, "expr": expr,
                              "legendFormat": legend or "__auto", "range": not instant,
                              "instant": instant, "editorMode": "code"}
    if table:
        target["format"] = "table"
    return target


def thresholds(*steps: tuple[str, float | None]) -> dict[str, Any]:
    return {"mode": "absolute", "steps": [{"color": c, "value": v} for c, v in steps]}


class Layout:
    """Panels left to right, rows top to bottom, ids in order."""

    def __init__(self) -> None:
        self.panels: list[dict[str, Any]] = []
        self.x = self.y = self.row_h = 0
        self.next_id = 1
        self.collapsed: dict[str, Any] | None = None

    def row(self, title: str, *, collapsed: bool = False) -> None:
        self.y += self.row_h
        self.x = self.row_h = 0
        row = {"type": "row", "id": self.next_id, "title": title, "collapsed": collapsed,
               "gridPos": {"h": 1, "w": 24, "x": 0, "y": self.y}, "panels": []}
        self.next_id += 1
        self.panels.append(row)
        self.collapsed = row if collapsed else None
        self.y += 1

    def add(self, kind: str, title: str, desc: str, size: tuple[int, int],
            targets: list[dict[str, Any]], **extra: Any) -> None:
        w, h = size
        if self.x + w > 24:
            self.y += self.row_h
            self.x = self.row_h = 0
        panel = {"type": kind, "id": self.next_id, "title": title, "description": desc,
                 "datasource": DS, "gridPos": {"h": h, "w": w, "x": self.x, "y": self.y},
                 "targets": targets, "fieldConfig": {"defaults": {}, "overrides": []},
                 "options": {}}
        if kind in ("timeseries", "state-timeline", "heatmap"):
            panel["interval"] = MIN_STEP  # at most 60 points an hour per series
        panel.update(extra)
        self.next_id += 1
        self.x += w
        self.row_h = max(self.row_h, h)
        (self.collapsed["panels"] if self.collapsed else self.panels).append(panel)


def stat(unit: str = "none", steps: tuple[tuple[str, float | None], ...] = (("blue", None),),
         mappings: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "fieldConfig": {"defaults": {"unit": unit, "color": {"mode": "thresholds"},
                                     "thresholds": thresholds(*steps),
                                     "mappings": mappings or []}, "overrides": []},
        "options": {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                    "colorMode": "background", "graphMode": "none",
                    "textMode": "value_and_name", "justifyMode": "auto",
                    "orientation": "auto"},
    }


def bars(unit: str = "none", steps: tuple[tuple[str, float | None], ...] = (("red", None),),
         **defaults: Any) -> dict[str, Any]:
    return {
        "fieldConfig": {"defaults": {"unit": unit, "color": {"mode": "thresholds"},
                                     "thresholds": thresholds(*steps), **defaults},
                        "overrides": []},
        "options": {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                    "orientation": "horizontal", "displayMode": "gradient",
                    "showUnfilled": True, "valueMode": "color", "namePlacement": "auto",
                    "sizing": "auto", "minVizHeight": 16, "minVizWidth": 8,
                    "maxVizHeight": 300},
    }


def lines(unit: str = "none", **custom: Any) -> dict[str, Any]:
    return {"fieldConfig": {"defaults": {"unit": unit, "custom": custom}, "overrides": []},
            "options": {"legend": {"showLegend": True, "displayMode": "list",
                                   "placement": "bottom"},
                        "tooltip": {"mode": "multi", "sort": "desc"}}}


OK_FAIL = [{"type": "value", "options": {
    "0": {"text": "FAIL", "color": "red", "index": 0},
    "1": {"text": "OK", "color": "green", "index": 1}}}]


def overview(lay: Layout) -> None:
    lay.row("Fleet overview")
    lay.add("stat", "Targets", "Configured targets (probe, target) of the selected servers.",
            (4, 4), [query(f"count({F})", "targets", instant=True)], **stat())
    lay.add("stat", "Failing targets", "Targets whose last result failed "
            "(mailcanary_probe_failure_info). Targets not probed yet are not failing.",
            (4, 4), [query(f"count{FAILING} or vector(0)", "failing", instant=True)],
            **stat(steps=(("green", None), ("red", 1))))
    lay.add("stat", "Not probed yet", "Targets without a finished run since the daemon "
            "started (a round trip waits up to its deadline): neither ok nor failing.",
            (4, 4), [query(f"count({F} unless {KEY} {PROBED}) or vector(0)", "not probed yet",
                         instant=True)], **stat(steps=(("text", None),)))
    lay.add("stat", "In backoff", "Targets probed less often after auth or rate_limited "
            "failures (mailcanary_probe_backoff_factor > 1).", (4, 4),
            [query(f"count({F} and {KEY} (mailcanary_probe_backoff_factor{{{J}}} > 1)) "
                   "or vector(0)", "in backoff", instant=True)],
            **stat(steps=(("green", None), ("orange", 1))))
    lay.add("stat", "Servers failing", "Servers with at least one failing target.", (4, 4),
            [query(f"count(count by (server) {FAILING}) or vector(0)", "servers",
                   instant=True)], **stat(steps=(("green", None), ("red", 1))))
    lay.add("stat", "Providers failing", "Providers with at least one failing target.", (4, 4),
            [query(f"count(count by (provider) {FAILING}) or vector(0)", "providers",
                   instant=True)], **stat(steps=(("green", None), ("red", 1))))
    lay.add("bargauge", "Failing by class", "Failing targets per failure class.", (6, 8),
            [query(f"sort_desc(count by (class) ({F} * {KEY} group_left (class) "
                   f"mailcanary_probe_failure_info{{{J}}}))", "{{class}}", instant=True)],
            **bars())
    lay.add("bargauge", "Failing by server (top $topk)", "Failing targets per server "
            "(host:port), the most first.", (6, 8),
            [query(f"sort_desc(topk($topk, count by (server) {FAILING}))", "{{server}}",
                   instant=True)], **bars())
    lay.add("bargauge", "Failing by provider", "Failing targets per provider preset "
            "((none): no preset).", (6, 8),
            [query(f'sort_desc(label_replace(count by (provider) {FAILING}, "provider", '
                   '"(none)", "provider", ""))', "{{provider}}", instant=True)], **bars())
    lay.add("bargauge", "Failing by $group (top $topk)", "Failing targets per value of the "
            "account label chosen in the `group` variable (the accounts' `labels`).", (6, 8),
            [query(f"sort_desc(topk($topk, count by ($group) {FAILING}))", "{{$group}}",
                   instant=True)], **bars())
    lay.add("timeseries", "Failing targets by class (all servers)", "Failing targets over "
            "time per class, of every server and provider: joining the server selection at "
            "every step would read all 10,000 target_info series per point.", (24, 7),
            [query(f"count by (class) (mailcanary_probe_failure_info{{{J}}})", "{{class}}")],
            **lines(fillOpacity=20, stacking={"mode": "normal"}))


def failing_now(lay: Layout) -> None:
    lay.row("What fails now")
    hints = {reason: {"text": generic_hint(reason)} for reason in sorted(HINTS) if HINTS[reason]}
    since = [{"type": "value", "options": {"0": {"text": "never (since start-up)",
                                                 "color": "red"}}}]
    table = query(f'label_replace({F} * {KEY} group_left (class, reason, phase) '
                  f'mailcanary_probe_failure_info{{{J}}}, "hint", "$1", "reason", "(.+)")',
                  instant=True, table=True)
    last = query(f"max by (job, instance, probe, target) "
                 f"(mailcanary_probe_last_success_timestamp_seconds{{{J}}}) "
                 f"and {KEY} {FAILING}", instant=True, table=True, ref="B")
    lay.add(
        "table", "Failing now", "Every target whose last result failed, with its server, "
        "class/reason, a hint for the reason and when it last succeeded (never: not since "
        "the daemon started). Targets not probed yet are not listed.", (24, 12), [table, last],
        fieldConfig={"defaults": {}, "overrides": [
            {"matcher": {"id": "byName", "options": "hint"},
             "properties": [{"id": "mappings", "value": [{"type": "value",
                                                          "options": hints}]},
                            {"id": "custom.width", "value": 520}]},
            {"matcher": {"id": "byName", "options": "last success"},
             "properties": [{"id": "unit", "value": "dateTimeFromNow"},
                            {"id": "mappings", "value": since}]}]},
        options={"showHeader": True, "cellHeight": "sm", "footer": {"show": False},
                 "sortBy": [{"displayName": "server", "desc": False}]},
        transformations=[
            {"id": "merge", "options": {}},
            {"id": "organize", "options": {
                "excludeByName": {"Time": True, "__name__": True, "Value #A": True,
                                  "job": True},
                "indexByName": {"target": 0, "probe": 1, "server": 2, "provider": 3,
                                "class": 4, "reason": 5, "phase": 6, "hint": 7,
                                "Value #B": 8, "instance": 9},
                "renameByName": {"Value #B": "last success"}}}])


def _by(by: str, counter: str) -> str:
    """sum by (`by`) of a counter's increase over the dashboard's range, joined to F."""
    return (f"sum by ({by}) (increase({counter}[$__range]) * {KEY} group_left ({by}) {F})")


def _delta_by(by: str, counter: str) -> str:
    """The same from two samples a range apart (not every sample in between: 10,000
    counters over 1 h are 2.4 million samples); a counter reset in the range (a daemon
    restart) counts as no increase."""
    return (f"sum by ({by}) (clamp_min({counter} - {counter} offset $__range, 0) * {KEY} "
            f"group_left ({by}) {F})")


def availability(lay: Layout) -> None:
    lay.row("Availability and inbox placement (over the dashboard's time range)")
    for by in ("server", "provider"):
        fails = _by(by, f"mailcanary_probe_failures_total{{{J}}}")
        runs = _delta_by(by, f"mailcanary_probes_total{{{J}}}")
        lay.add("bargauge", f"Availability by {by} (worst $topk)",
                f"Share of finished runs that succeeded, per {by}, over the time range; a "
                f"{by} without a failed run in the range is at 100 % and not listed.",
                (12, 9),
                [query(f"sort(bottomk($topk, 1 - {fails} / {runs}))",
                       f"{{{{{by}}}}}", instant=True)],
                **bars("percentunit", (("red", None), ("orange", 0.95), ("green", 0.99)),
                       min=0, max=1, decimals=2))
    for by in ("server", "provider"):
        inbox = _delta_by(by, f'mailcanary_canaries_total{{{J}, placement="inbox"}}')
        every = _delta_by(by, f"mailcanary_canaries_total{{{J}}}")
        lay.add("bargauge", f"Inbox placement by {by} (worst $topk)",
                f"Share of canaries (round trips and inbound watches) that arrived in the "
                f"inbox, per receiving {by}, over the time range.", (12, 9),
                [query(f"sort(bottomk($topk, {inbox} / {every}))", f"{{{{{by}}}}}",
                       instant=True)],
                **bars("percentunit", (("red", None), ("orange", 0.9), ("green", 0.99)),
                       min=0, max=1, decimals=2))


def operations(lay: Layout) -> None:
    lay.row("Operations (the daemons themselves)")
    lay.add("timeseries", "Targets in backoff", "Targets probed less often after auth or "
            "rate_limited failures, per daemon (the factor per target: /healthz).", (8, 7),
            [query(f"count by (instance) (mailcanary_probe_backoff_factor{{{J}}} > 1)",
                   "{{instance}}")], **lines())
    lay.add("timeseries", "Skipped runs", "Scheduled runs that could not start (the previous "
            "run of the same target still ran, or too many probes waited for the server's "
            "connection slots), per daemon.", (8, 7),
            [query(f"sum by (instance) (increase(mailcanary_probe_skipped_total{{{J}}}"
                   "[$__rate_interval]))", "{{instance}}")], **lines())
    lay.add("timeseries", "Schedule lag", "Seconds from a run's due time until it started: "
            "p50 and p99 per daemon.", (8, 7),
            [query(f"histogram_quantile({q}, sum by (instance, le) (rate("
                   f"mailcanary_schedule_lag_seconds_bucket{{{J}}}[$__rate_interval])))",
                   f"{{{{instance}}}} p{int(q * 100)}", ref=ref)
             for q, ref in ((0.5, "A"), (0.99, "B"))], **lines("s"))
    lay.add("stat", "Last reload", "Whether each daemon's last configuration load worked "
            "(FAIL: it still runs the previous configuration).", (8, 6),
            [query(f"max by (instance) (mailcanary_config_last_reload_successful{{{J}}})",
                   "{{instance}}", instant=True)],
            **stat(steps=(("red", None), ("green", 1)), mappings=OK_FAIL))
    lay.add("timeseries", "Alert sink trouble", "Notifications of the built-in sinks that "
            "were retried, failed after all retries, or dropped, per daemon and sink.", (8, 6),
            [query(f"sum by (instance, sink, status) (increase("
                   f'mailcanary_alert_notifications_total{{{J}, status!="sent"}}'
                   "[$__rate_interval]))", "{{instance}} {{sink}} {{status}}")], **lines())
    lay.add("timeseries", "Series per scrape", "Samples each scrape of a daemon returns "
            "(at most 15 per target at start-up) and how long the scrape took.", (8, 6),
            [query(f"max by (instance) (scrape_samples_scraped{{{J}}})", "{{instance}} series"),
             query(f"max by (instance) (scrape_duration_seconds{{{J}}})",
                   "{{instance}} scrape seconds", ref="B")], **lines())


def _selected(metric: str, extra: str = "") -> str:
    return f'max by (probe, target) ({metric}{{{J}, target=~"$target"{extra}}})'


def _selected_at_end(metric: str) -> str:
    """The value at the end of the range: the same $topk targets at every step, chosen
    once (`@ end()` is evaluated once per query, not per step)."""
    return f'max by (probe, target) ({metric}{{{J}, target=~"$target"}} @ end())'


def per_target(lay: Layout) -> None:
    lay.row("Selected targets (the `target` variable, at most $topk series)", collapsed=True)
    probed = _selected("mailcanary_probes_total")
    lay.add("state-timeline", "Status (worst $topk)", "OK/FAIL of the last finished run of "
            "the $topk targets failing at the end of the range; targets not probed yet are "
            "left out.", (24, 8),
            [query(f"{_selected('mailcanary_probe_success')} and on (probe, target) "
                   f"bottomk($topk, {_selected_at_end('mailcanary_probe_success')} and on "
                   f"(probe, target) ({_selected_at_end('mailcanary_probes_total')} > 0))",
                   "{{probe}} {{target}}")],
            fieldConfig={"defaults": {"mappings": OK_FAIL,
                                      "thresholds": thresholds(("red", None), ("green", 1)),
                                      "color": {"mode": "thresholds"},
                                      "custom": {"fillOpacity": 80, "lineWidth": 0}},
                         "overrides": []},
            options={"showValue": "never", "mergeValues": True, "alignValue": "left",
                     "rowHeight": 0.9, "legend": {"showLegend": False}})
    last = _selected("mailcanary_probe_last_success_timestamp_seconds")
    never = [{"type": "range", "options": {"from": NEVER / 10, "to": NEVER * 10, "result": {
        "text": "never (since start-up)", "color": "red"}}}]
    lay.add("bargauge", "Time since last success (longest $topk)", "Seconds since each "
            "target last succeeded; a target that never succeeded since the daemon started "
            "shows as never (first); targets not probed yet are left out.", (12, 9),
            [query(f"sort_desc(topk($topk, (time() - ({last} > 0)) or ({last} == 0) + "
                   f"{NEVER:.0e} and on (probe, target) ({probed} > 0)))",
                   "{{probe}} {{target}}", instant=True)],
            **bars("s", (("green", None), ("orange", 600), ("red", 3600)), mappings=never))
    lay.add("timeseries", "Probe duration (slowest $topk)", "Wall time of the last finished "
            "run.", (12, 9),
            [query(f"topk($topk, {_selected('mailcanary_probe_duration_seconds')})",
                   "{{probe}} {{target}}")], **lines("s"))
    lay.add("timeseries", "Phase timings (slowest $topk)", "Seconds each phase (dns, connect, "
            "tls, greeting, starttls, token, auth, select, send, deliver, cleanup) took in "
            "the last run, stacked.", (12, 9),
            [query(f"max by (probe, target, phase) (mailcanary_probe_phase_duration_seconds"
                   f'{{{J}, target=~"$target"}}) and on (probe, target) topk($topk, '
                   f"{_selected('mailcanary_probe_duration_seconds')})",
                   "{{probe}} {{target}} {{phase}}")],
            **lines("s", fillOpacity=30, stacking={"mode": "normal"}))
    lay.add("timeseries", "Failure reasons (top $topk)", "Failed runs per (probe, target, "
            "class, reason) in each interval.", (12, 9),
            [query("topk($topk, sum by (probe, target, class, reason) (increase("
                   f'mailcanary_probe_failures_total{{{J}, target=~"$target"}}'
                   "[$__rate_interval])))", "{{probe}} {{target}} {{class}}/{{reason}}")],
            **lines())


def _delivery(probe: str) -> str:
    return (f'mailcanary_delivery_duration_seconds_bucket{{{J}, probe="{probe}", '
            'target=~"$target"}')


def delivery(lay: Layout) -> None:
    lay.row("Delivery (round trips)")
    lay.add("heatmap", "Delivery time heatmap", "Canaries delivered per delivery-time bucket "
            "(all selected routes).", (12, 9),
            [query(f"sum by (le) (increase({_delivery('roundtrip')}[$__rate_interval]))",
                   "{{le}}") | {"format": "heatmap"}],
            fieldConfig={"defaults": {"custom": {"scaleDistribution": {"type": "linear"}}},
                         "overrides": []},
            options={"calculate": False, "cellGap": 1,
                     "color": {"mode": "scheme", "scheme": "Oranges", "exponent": 0.5,
                               "steps": 64, "fill": "dark", "reverse": False,
                               "scale": "exponential"},
                     "yAxis": {"axisPlacement": "left", "unit": "s"},
                     "rowsFrame": {"layout": "auto"}, "legend": {"show": True},
                     "tooltip": {"mode": "single", "yHistogram": False},
                     "cellValues": {"unit": "short"}})
    lay.add("timeseries", "Delivery time p95 (slowest $topk routes), p50 and p99 of all",
            "95th percentile per route (the slowest), and the median and 99th percentile of "
            "all selected routes.", (12, 9),
            [query(f"topk($topk, histogram_quantile(0.95, sum by (probe, target, le) "
                   f"(rate({_delivery('roundtrip')}[$__rate_interval]))))",
                   "{{target}} p95"),
             query(f"histogram_quantile(0.5, sum by (le) (rate({_delivery('roundtrip')}"
                   "[$__rate_interval])))", "all p50", ref="B"),
             query(f"histogram_quantile(0.99, sum by (le) (rate({_delivery('roundtrip')}"
                   "[$__rate_interval])))", "all p99", ref="C")], **lines("s"))
    lay.add("timeseries", "Canary placement", "Canaries of the selected routes per placement "
            "(inbox, spam, other, missing) in each interval.", (24, 8),
            [query("sum by (placement) (increase(mailcanary_canaries_total"
                   f'{{{J}, probe="roundtrip", target=~"$target"}}[$__rate_interval]))',
                   "{{placement}}")], **lines(fillOpacity=30, stacking={"mode": "normal"}))


def inbound(lay: Layout) -> None:
    lay.row("Inbound mail (your app's sign-up, reset and 2FA mail)")
    sel = f'{J}, probe="inbound", target=~"$target"'
    lay.add("stat", "Inbound watches", "1 when the last run of the inbound watch succeeded: "
            "the app's mail arrived in INBOX within the SLO.", (8, 8),
            [query(f"max by (target) (mailcanary_probe_success{{{sel}}})", "{{target}}",
                   instant=True)],
            **stat(steps=(("red", None), ("green", 1)), mappings=OK_FAIL))
    lay.add("timeseries", "Inbound delivery time (trigger to arrival)", "p50 and p95 per "
            "watch.", (16, 8),
            [query(f"histogram_quantile({q}, sum by (target, le) (rate("
                   f"mailcanary_delivery_duration_seconds_bucket{{{sel}}}[$__rate_interval])))",
                   f"{{{{target}}}} p{int(q * 100)}", ref=ref)
             for q, ref in ((0.5, "A"), (0.95, "B"))], **lines("s"))
    lay.add("timeseries", "Inbound placement", "inbox, spam, other, missing per watch and "
            "interval.", (12, 9),
            [query(f"sum by (target, placement) (increase(mailcanary_canaries_total{{{sel}}}"
                   "[$__rate_interval]))", "{{target}} {{placement}}")], **lines())
    lay.add("timeseries", "Inbound failure reasons", "trigger/trigger_failed, delivery/lost, "
            "delivery/delayed, spam/spam_folder (and login failures of the mailbox) per "
            "watch.", (12, 9),
            [query(f"sum by (target, class, reason) (increase(mailcanary_probe_failures_total"
                   f"{{{sel}}}[$__rate_interval]))", "{{target}} {{class}}/{{reason}}")],
            **lines())


def _bars_over_time(unit: str = "short") -> dict[str, Any]:
    return {"fieldConfig": {"defaults": {"unit": unit, "min": 0, "custom": {
        "drawStyle": "bars", "fillOpacity": 80, "stacking": {"mode": "normal", "group": "A"}}},
        "overrides": []},
        "options": {"legend": {"displayMode": "table", "placement": "right", "showLegend": True},
                    "tooltip": {"mode": "multi", "sort": "desc"}}}


def deliverability(lay: Layout) -> None:
    """Domain checks and what the receiving side did with the canaries (issue 17)."""
    lay.row("Deliverability")
    domain = f'{J}, probe="domain", target=~"$target"'
    lay.add("table", "Domain checks", "Each [[domains]] entry: 1 when every check (mx, "
            "mx_tls, spf, dmarc, dkim, mta_sts, tls_rpt, dnsbl) passed on its last run; a "
            "failing one shows the first failing check's class and reason.", (12, 8),
            [query(f"max by (target) (mailcanary_probe_success{{{domain}}})", "{{target}}",
                   instant=True, table=True),
             query(f"max by (target, class, reason) (mailcanary_probe_failure_info{{{domain}}})",
                   "{{target}}", instant=True, table=True, ref="B")],
            transformations=[{"id": "merge", "options": {}}, {"id": "organize", "options": {
                "excludeByName": {"Time": True, "Value #B": True},
                "renameByName": {"Value #A": "ok", "target": "domain"}}}],
            fieldConfig={"defaults": {}, "overrides": [{
                "matcher": {"id": "byName", "options": "ok"},
                "properties": [{"id": "custom.cellOptions", "value": {"type": "color-background"}},
                               {"id": "mappings", "value": OK_FAIL}]}]},
            options={"showHeader": True, "cellHeight": "sm"})
    route = f'{J}, probe="roundtrip", target=~"$target"'
    lay.add("timeseries", "Refused canaries by reason (top $topk)", "Round trips refused "
            "after the sender's server accepted them (a bounce came back: phase deliver) or "
            "at submission, per class/reason, in each interval. The current bounces are in "
            "the failure info (phase deliver).", (12, 8),
            [query("topk($topk, sum by (target, reason) (increase(mailcanary_probe_failures_total"
                   f'{{{route}, class=~"rejected|quota"}}[$__rate_interval])))',
                   "{{target}} {{reason}}"),
             query("topk($topk, count by (target, reason) (mailcanary_probe_failure_info"
                   f'{{{route}, phase="deliver", class=~"rejected|quota|server|rate_limited"}}))',
                   "bouncing now: {{target}} {{reason}}", ref="B")], **_bars_over_time())
    lay.add("timeseries", "Authentication results (SPF, DKIM, DMARC)", "What the receiving "
            "side's Authentication-Results said about each delivered canary or watched "
            "message, per method and result, in each interval. Anything but pass on dkim or "
            "dmarc makes spam placement likelier.", (12, 8),
            [query("sum by (method, result) (increase(mailcanary_canary_auth_results_total"
                   f'{{{J}, target=~"$target"}}[$__rate_interval]))', "{{method}}={{result}}")],
            **_bars_over_time())
    spam = (f'sum by (target) (increase(mailcanary_canaries_total{{{route}, placement="spam"}}'
            f"[24h])) / clamp_min(sum by (target) (increase(mailcanary_canaries_total{{{route}}}"
            "[24h])), 1)")
    lay.add("timeseries", "Spam placement by route (worst $topk)", "Share of each route's "
            "canaries that landed in the junk folder over the last 24 hours.", (12, 8),
            [query(f"topk($topk, {spam})", "{{target}}")],
            fieldConfig={"defaults": {"unit": "percentunit", "min": 0, "max": 1, "custom": {}},
                         "overrides": []},
            options={"legend": {"displayMode": "table", "placement": "right",
                                "showLegend": True},
                     "tooltip": {"mode": "multi", "sort": "desc"}})


def tls_and_build(lay: Layout) -> None:
    lay.row("TLS and build")
    lay.add("bargauge", "Certificate days left (soonest $topk servers)", "Days until the "
            "certificate each server presents expires (the earliest any target saw). "
            "Targets without a certificate are left out.", (16, 8),
            [query(f"sort(bottomk($topk, (min by (server) ("
                   f"(mailcanary_tls_cert_expiry_timestamp_seconds{{{J}}} > 0) * {KEY} "
                   f"group_left (server) {F}) - time()) / 86400))", "{{server}}",
                   instant=True)],
            **bars(steps=(("red", None), ("orange", 3), ("green", 14)), decimals=1, min=0))
    lay.add("table", "Build info", "Version of each scraped mailcanary instance.", (8, 8),
            [query(f"max by (job, instance, version) (mailcanary_build_info{{{J}}})",
                   instant=True, table=True)],
            options={"showHeader": True, "cellHeight": "sm", "footer": {"show": False}},
            transformations=[{"id": "organize", "options": {
                "excludeByName": {"Time": True, "Value": True},
                "renameByName": {"job": "Job", "instance": "Instance",
                                 "version": "Version"}}}])


def variable(name: str, label: str, definition: str, *, all_value: str = ".*",
             regex: str = "", multi: bool = True) -> dict[str, Any]:
    return {"name": name, "label": label, "type": "query", "datasource": DS,
            "definition": definition,
            "query": {"qryType": 1, "query": definition,
                      "refId": "PrometheusVariableQueryEditor-VariableQuery"},
            "current": {}, "hide": 0, "includeAll": multi, "allValue": all_value if multi
            else None, "multi": multi, "options": [], "refresh": 2, "regex": regex,
            "skipUrlSync": False, "sort": 1}


def templating() -> dict[str, Any]:
    info = f'mailcanary_target_info{{{J}, server=~"$server", provider=~"$provider"}}'
    group = variable("group", "Group by label", "label_names(mailcanary_target_info)",
                     regex="/^(?!(__name__|job|instance|probe|target|server)$).+/",
                     multi=False)
    group["current"] = {"text": "provider", "value": "provider"}
    topk = {"name": "topk", "label": "Per-target panels: at most", "type": "custom",
            "query": "10,20,50,100", "current": {"text": "20", "value": "20"},
            "options": [{"text": v, "value": v, "selected": v == "20"}
                        for v in ("10", "20", "50", "100")],
            "hide": 0, "includeAll": False, "multi": False, "skipUrlSync": False}
    return {"list": [
        {"name": "datasource", "label": "Data source", "type": "datasource",
         "query": "prometheus", "current": {}, "hide": 0, "includeAll": False,
         "multi": False, "options": [], "refresh": 1, "regex": "", "skipUrlSync": False},
        variable("job", "Job", "label_values(mailcanary_build_info, job)", all_value=".+"),
        variable("server", "Server", f'label_values(mailcanary_target_info{{{J}}}, server)'),
        variable("provider", "Provider",
                 f'label_values(mailcanary_target_info{{{J}}}, provider)'),
        group, topk,
        variable("target", "Target / route", f"label_values({info}, target)"),
    ]}


def build() -> dict[str, Any]:
    lay = Layout()
    for part in (overview, failing_now, availability, operations, per_target, delivery,
                 inbound, deliverability, tls_and_build):
        part(lay)
    return {
        "uid": "mailcanary", "title": "mailcanary",
        "description": "A fleet of IMAP/SMTP/POP3 probes, round trips and inbound watches: "
        "counts by class, server, provider and label; what fails now; per-target panels "
        "behind the target variable.",
        "tags": ["mailcanary", "mail", "imap", "smtp"], "timezone": "browser",
        "editable": True, "graphTooltip": 1, "schemaVersion": 39, "version": 2,
        "refresh": "1m", "time": {"from": "now-6h", "to": "now"}, "timepicker": {},
        "fiscalYearStartMonth": 0, "liveNow": False, "weekStart": "", "links": [],
        "annotations": {"list": [{
            "builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"},
            "enable": True, "hide": True, "iconColor": "rgba(0, 211, 255, 1)",
            "name": "Annotations & Alerts", "type": "dashboard"}]},
        "templating": templating(),
        "panels": lay.panels,
    }


def render() -> str:
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"


def main() -> int:
    text = render()
    if "--check" in sys.argv[1:]:
        if OUT.read_text(encoding="utf-8") != text:
            print(f"{OUT} is not what scripts/build_dashboard.py writes", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
