"""Checks of the operational assets: systemd unit, Prometheus rules, Grafana dashboard.

These depend only on the project's contract (metric names and labels), not on the daemon.
A test that needs an external tool (promtool, systemd-analyze) is skipped, with the reason,
only when that tool is not installed.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mailcanary.diagnosis.hints import HINTS

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "systemd" / "mailcanary.service"
RULES = ROOT / "grafana" / "alerts" / "mailcanary.rules.yml"
RULES_TEST = ROOT / "grafana" / "alerts" / "mailcanary.rules.test.yml"
RUNBOOKS = ROOT / "docs" / "runbooks.md"
DASHBOARD = ROOT / "grafana" / "dashboards" / "mailcanary.json"
CONTRACT = ROOT.parent / "shared" / "CONTRACT.md"

MAX_EXPOSURE = 2.0

# The contract's Metrics table: name -> (type, labels). Kept here so the test also runs
# where the contract file is not beside the repository; checked against it when it is.
METRICS: dict[str, tuple[str, frozenset[str]]] = {
    "mailcanary_probe_success": ("gauge", frozenset({"probe", "target"})),
    "mailcanary_probe_duration_seconds": ("gauge", frozenset({"probe", "target"})),
    "mailcanary_probe_phase_duration_seconds": (
        "gauge",
        frozenset({"probe", "target", "phase"}),
    ),
    "mailcanary_probes_total": ("counter", frozenset({"probe", "target"})),
    "mailcanary_probe_failures_total": (
        "counter",
        frozenset({"probe", "target", "class", "reason"}),
    ),
    "mailcanary_probe_last_success_timestamp_seconds": (
        "gauge",
        frozenset({"probe", "target"}),
    ),
    "mailcanary_tls_cert_expiry_timestamp_seconds": ("gauge", frozenset({"probe", "target"})),
    "mailcanary_delivery_duration_seconds": ("histogram", frozenset({"probe", "target"})),
    "mailcanary_canaries_total": ("counter", frozenset({"probe", "target", "placement"})),
    "mailcanary_build_info": ("gauge", frozenset({"version"})),
    "mailcanary_probe_skipped_total": ("counter", frozenset({"probe", "target"})),
    "mailcanary_schedule_lag_seconds": ("histogram", frozenset()),
}
# Version 3 ("Fleet view") metrics, given in the contract's prose; target_info also carries
# the accounts' own labels (any name), so its labels are not checked.
V3_METRICS: dict[str, tuple[str, frozenset[str]]] = {
    "mailcanary_target_info": ("gauge", frozenset({"probe", "target", "server", "provider"})),
    "mailcanary_probe_failure_info": (
        "gauge",
        frozenset({"probe", "target", "class", "reason", "phase"}),
    ),
    "mailcanary_probe_interval_seconds": ("gauge", frozenset({"probe", "target"})),
}
OPEN_LABELS = frozenset({"mailcanary_target_info"})
# The daemon's own families (docs/daemon.md), not in the contract's table.
DAEMON_METRICS: dict[str, tuple[str, frozenset[str]]] = {
    "mailcanary_probe_backoff_factor": ("gauge", frozenset({"probe", "target"})),
    "mailcanary_canary_auth_results_total": (
        "counter", frozenset({"probe", "target", "method", "result"})),
    "mailcanary_probe_paused": ("gauge", frozenset({"probe", "target"})),
    "mailcanary_config_last_reload_successful": ("gauge", frozenset()),
    "mailcanary_config_last_reload_success_timestamp_seconds": ("gauge", frozenset()),
    "mailcanary_alert_notifications_total": ("counter", frozenset({"sink", "status"})),
}
KNOWN = METRICS | V3_METRICS | DAEMON_METRICS
# Labels Prometheus adds to every scraped series.
TARGET_LABELS = frozenset({"job", "instance"})
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")

METRIC_RE = re.compile(r"\bmailcanary_[a-z0-9_]+")
SELECTOR_RE = re.compile(r"\b(mailcanary_[a-z0-9_]+)\s*\{([^}]*)\}")
MATCHER_RE = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)\s*\"")

# Grafana variables and their stand-ins for a PromQL parse.
GRAFANA_VARS = {
    "${datasource}": "",
    "$__rate_interval": "5m",
    "$__interval": "1m",
    "$__range": "1h",
    "$job": ".*",
    "$target": ".*",
    "$server": ".*",
    "$provider": ".*",
    "$group": "provider",
    "$topk": "20",
}
# label_replace's "$1" is PromQL's, not a Grafana variable.
GRAFANA_VAR_RE = re.compile(r"\$(?!1\")")


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (Debian: prometheus / systemd packages)")
    return path


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)


def _base_metric(name: str) -> str:
    if name in KNOWN:
        return name
    for suffix in HISTOGRAM_SUFFIXES:
        base = name.removesuffix(suffix)
        if base != name and KNOWN.get(base, ("", frozenset()))[0] == "histogram":
            return base
    return name


def _dashboard() -> dict[str, Any]:
    data = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _panels(dash: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dash["panels"]:
        yield panel
        yield from panel.get("panels", [])  # panels inside collapsed rows


def _dashboard_exprs(dash: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in _panels(dash) for t in p.get("targets", [])]


def _variable_queries(dash: dict[str, Any]) -> list[str]:
    queries = []
    for var in dash["templating"]["list"]:
        if var["type"] == "query":
            query = var["query"]
            queries.append(query["query"] if isinstance(query, dict) else query)
    return queries


def _substitute(expr: str) -> str:
    for var, value in GRAFANA_VARS.items():
        expr = expr.replace(var, value)
    assert not GRAFANA_VAR_RE.search(expr), f"unknown Grafana variable left in {expr!r}"
    return expr


# ----------------------------------------------------------------------- contract


def test_hard_coded_metrics_match_the_contract() -> None:
    if not CONTRACT.exists():
        pytest.skip(f"{CONTRACT} not present; the hard-coded metric list is used alone")
    text = CONTRACT.read_text(encoding="utf-8")
    section = text.split("## Metrics", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\|\s*`(mailcanary_[a-z0-9_]+)`\s*\|([^|]*)\|([^|]*)\|", section, re.M)
    assert rows, "no metrics table found in the contract"
    contract = {  # "probe, target (v3; was `route`)", "(none): ...": notes are no labels
        name: (kind.strip(), frozenset(
            x.strip() for x in re.sub(r"\(.*?\)|:.*", "", labels).split(",") if x.strip()
        ))
        for name, kind, labels in rows
    }
    for name, (kind, labels) in METRICS.items():
        assert name in contract, f"{name} is no longer in the contract"
        assert contract[name][0].startswith(kind), (name, contract[name][0], kind)
        assert contract[name][1] == labels, (name, contract[name][1], labels)


def test_v3_metrics_are_in_the_contract() -> None:
    if not CONTRACT.exists():
        pytest.skip(f"{CONTRACT} not present")
    text = CONTRACT.read_text(encoding="utf-8").split("## Version 3 additions", 1)[1]
    for name, (_, labels) in V3_METRICS.items():
        match = re.search(rf"`{name}\{{([^}}]*)\}}", text)
        assert match, f"{name} is not in the contract's Version 3 additions"
        assert labels <= {x.strip() for x in match.group(1).split(",")}, name


def _check_metric_use(text: str, where: str) -> None:
    for name in METRIC_RE.findall(text):
        assert _base_metric(name) in KNOWN, f"{where}: {name} is not a known metric"
    for name, matchers in SELECTOR_RE.findall(text):
        if _base_metric(name) in OPEN_LABELS:
            continue
        allowed = KNOWN[_base_metric(name)][1] | TARGET_LABELS
        if name.endswith("_bucket"):
            allowed |= {"le"}
        for label in MATCHER_RE.findall(matchers):
            assert label in allowed, f"{where}: {name} has no label {label!r}"


def test_rules_use_only_contract_metrics() -> None:
    _check_metric_use(RULES.read_text(encoding="utf-8"), RULES.name)


def test_dashboard_uses_only_contract_metrics() -> None:
    dash = _dashboard()
    exprs = _dashboard_exprs(dash) + _variable_queries(dash)
    assert exprs
    for expr in exprs:
        _check_metric_use(expr, DASHBOARD.name)


# ----------------------------------------------------------------------- dashboard


def test_dashboard_structure() -> None:
    dash = _dashboard()
    assert dash["uid"] == "mailcanary"
    assert 36 <= dash["schemaVersion"] <= 41
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert variables["job"]["type"] == "query"
    assert "label_values(mailcanary_build_info, job)" in _variable_queries(dash)
    assert variables["target"]["multi"] is True
    ids = [p["id"] for p in _panels(dash)]
    assert len(ids) == len(set(ids)), "panel ids must be unique"


def test_every_panel_uses_the_datasource_variable_and_job() -> None:
    dash = _dashboard()
    data_panels = [p for p in _panels(dash) if p["type"] != "row"]
    assert len(data_panels) >= 10
    for panel in data_panels:
        title = panel["title"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, title
        assert panel["targets"], f"{title}: no queries"
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}", title
            assert 'job=~"$job"' in target["expr"], f"{title}: {target['expr']}"
    for var in dash["templating"]["list"]:
        if var["type"] == "query":
            assert var["datasource"]["uid"] == "${datasource}", var["name"]


def test_dashboard_has_the_required_queries() -> None:
    exprs = "\n".join(_dashboard_exprs(_dashboard()))
    failing = (
        'mailcanary_target_info{job=~"$job", server=~"$server", provider=~"$provider"} and '
        'on (job, instance, probe, target) mailcanary_probe_failure_info{job=~"$job"}'
    )
    for fragment in (
        # the overview: counts by class, server, provider and an account label
        f"count by (server) ({failing})",
        f"count by (provider) ({failing})",
        f"count by ($group) ({failing})",
        "count by (class) (mailcanary_target_info{",
        "unless on (job, instance, probe, target) (mailcanary_probes_total{",
        # failing now, with when it last succeeded
        "group_left (class, reason, phase) mailcanary_probe_failure_info{",
        "max by (job, instance, probe, target) (mailcanary_probe_last_success_timestamp_seconds",
        # availability and inbox placement per server/provider
        "sum by (server) (increase(mailcanary_probe_failures_total{",
        'sum by (server) (clamp_min(mailcanary_probes_total{job=~"$job"} - '
        'mailcanary_probes_total{job=~"$job"} offset $__range, 0)',
        "sum by (provider) (increase(mailcanary_probe_failures_total{",
        'sum by (server) (clamp_min(mailcanary_canaries_total{job=~"$job", placement="inbox"} -',
        'sum by (provider) (clamp_min(mailcanary_canaries_total{job=~"$job", placement="inbox"} -',
        # operations
        "mailcanary_probe_backoff_factor{",
        "increase(mailcanary_probe_skipped_total{",
        "mailcanary_schedule_lag_seconds_bucket{",
        "mailcanary_config_last_reload_successful{",
        "mailcanary_alert_notifications_total{",
        "scrape_samples_scraped{",
        # per target, behind the variables
        "topk($topk, sum by (probe, target, class, reason) (increase("
        "mailcanary_probe_failures_total{",
        "mailcanary_probe_phase_duration_seconds{",
        "topk($topk, max by (probe, target) (mailcanary_probe_duration_seconds{",
        "sum by (le) (increase(mailcanary_delivery_duration_seconds_bucket{",
        "histogram_quantile(0.95, sum by (probe, target, le)",
        "mailcanary_tls_cert_expiry_timestamp_seconds{",
        "mailcanary_build_info{",
        'mailcanary_probe_success{job=~"$job", probe="inbound"',
        'sum by (target, class, reason) (increase(mailcanary_probe_failures_total{job=~"$job", '
        'probe="inbound"',
        'sum by (target, placement) (increase(mailcanary_canaries_total{job=~"$job", '
        'probe="inbound"',
    ):
        assert fragment in exprs, fragment
    assert "route" not in exprs


PER_TARGET = re.compile(r"by \((?:[a-z, ]*, )?target\b")


def test_per_target_panels_are_limited() -> None:
    """At 10,000 targets no panel draws a series per target unless `$topk` bounds it: the
    failing-now table lists only failing targets, inbound watches and domains are few."""
    for panel in _panels(_dashboard()):
        for target in panel.get("targets", []):
            expr = target["expr"]
            if not PER_TARGET.search(expr) or re.search(r'probe="(inbound|domain)"', expr):
                continue
            if panel["title"] == "Failing now":
                assert "mailcanary_probe_failure_info" in expr
                continue
            assert re.search(r"\b(topk|bottomk)\(\$topk,", expr), (panel["title"], expr)


def test_dashboard_is_what_the_script_builds() -> None:
    result = _run(sys.executable, str(ROOT / "scripts" / "build_dashboard.py"), "--check")
    assert result.returncode == 0, result.stderr


def test_failing_now_hints_cover_every_reason() -> None:
    panel = next(p for p in _panels(_dashboard()) if p["title"] == "Failing now")
    override = next(o for o in panel["fieldConfig"]["overrides"]
                    if o["matcher"]["options"] == "hint")
    mapped = override["properties"][0]["value"][0]["options"]
    assert set(mapped) == {r for r, text in HINTS.items() if text}
    assert all("{" not in m["text"] for m in mapped.values())


def test_dashboard_promql_parses(tmp_path: Path) -> None:
    """promtool parses every dashboard query for real, as recording rules."""
    promtool = _tool("promtool")
    dash = _dashboard()
    exprs = _dashboard_exprs(dash)
    exprs += [re.sub(r"^label_(?:values\((.*),\s*\w+|names\((.*))\)$", r"\1\2", q)
              for q in _variable_queries(dash)]
    rules = [
        {"record": f"mailcanary_dashboard_check:expr{i}", "expr": _substitute(expr)}
        for i, expr in enumerate(exprs)
    ]
    path = tmp_path / "dashboard.rules.yml"
    # JSON is YAML: no YAML library needed.
    path.write_text(json.dumps({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = _run(promtool, "check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout


# ----------------------------------------------------------------------- rules


def test_promtool_check_rules() -> None:
    promtool = _tool("promtool")
    result = _run(promtool, "check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_test_rules() -> None:
    promtool = _tool("promtool")
    result = _run(promtool, "test", "rules", str(RULES_TEST))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_rules_have_for_severity_and_annotations() -> None:
    text = RULES.read_text(encoding="utf-8")
    blocks = re.split(r"^\s*- alert: ", text, flags=re.M)[1:]
    names = {b.split("\n", 1)[0].strip() for b in blocks}
    assert names >= {
        "MailcanaryTargetFailing",
        "MailcanaryAuthFailing",
        "MailcanaryCanaryLost",
        "MailcanaryCanaryInSpam",
        "MailcanaryDeliverySlow",
        "MailcanaryCertificateExpiring",
        "MailcanaryProbesStale",
        "MailcanaryDown",
        "MailcanaryInboundMailFailing",
        "MailcanaryServerDown",
        "MailcanaryAuthBackoff",
        "MailcanaryAuthPaused",
        "MailcanarySkippedRuns",
        "MailcanaryReloadFailed",
        "MailcanaryAlertSinkFailing",
        "MailcanaryAlertsDropped",
    }
    headings = set(re.findall(r"^## (\S+)$", RUNBOOKS.read_text(encoding="utf-8"), re.M))
    for block in blocks:
        name = block.split("\n", 1)[0].strip()
        assert re.search(r"^\s+for: \d+[smh]$", block, re.M), f"{name}: no for:"
        assert re.search(r"^\s+severity: (warning|critical)$", block, re.M), name
        assert "summary:" in block, name
        assert "description:" in block, name
        # Every rule links its runbook section (GitHub's anchor of "## Name").
        assert f"runbook_url: docs/runbooks.md#{name.lower()}\n" in block, name
        assert name in headings, f"{name} has no section in docs/runbooks.md"
    tests = RULES_TEST.read_text(encoding="utf-8")
    for name in names:
        assert f"alertname: {name}" in tests, f"{name} has no unit test"


# ----------------------------------------------------------------------- systemd


def test_systemd_security_exposure() -> None:
    analyze = _tool("systemd-analyze")
    result = _run(analyze, "security", "--offline=true", "--no-pager", str(UNIT))
    out = result.stdout + result.stderr
    match = re.search(r"Overall exposure level for mailcanary\.service: (\d+\.\d+)", out)
    assert match, out
    assert float(match.group(1)) <= MAX_EXPOSURE, out


def test_systemd_unit_contents() -> None:
    text = UNIT.read_text(encoding="utf-8")
    settings = [
        line.strip()
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith(("#", ";", "["))
    ]
    for required in (
        "Type=notify",
        "DynamicUser=yes",
        "StateDirectory=mailcanary",
        "ConfigurationDirectory=mailcanary",
        "EnvironmentFile=-/etc/default/mailcanary",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "WatchdogSec=60",
        "Restart=on-failure",
        "TimeoutStopSec=15",
        "MemoryDenyWriteExecute=yes",
        "CapabilityBoundingSet=",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
        "UMask=0077",
    ):
        assert required in settings, required
    assert not any(s.startswith(("IPAddressDeny=", "PrivateNetwork=")) for s in settings)
    # One line for every secret: a directory (systemd/README.md step 4).
    assert [s for s in settings if s.startswith("LoadCredential")] == [
        "LoadCredential=mailcanary:/etc/mailcanary/secrets"]
    # Every hardening setting is explained by a comment right above it.
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if "--- Hardening" in line)
    for i in range(start + 1, len(lines)):
        line = lines[i]
        if line.startswith("["):
            break
        if line and not line.startswith("#"):
            assert lines[i - 1].startswith("#"), f"no comment explains {line!r}"
