"""The Deliverability row of the dashboard and its alert rules (issue 17); the rules'
promtool unit tests and runbook sections are checked with every rule in tests/test_ship.py."""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD = ROOT / "grafana" / "dashboards" / "mailcanary.json"
RULES = ROOT / "grafana" / "alerts" / "mailcanary.rules.yml"


def test_deliverability_row_queries() -> None:
    panels = json.loads(DASHBOARD.read_text(encoding="utf-8"))["panels"]
    titles = [p["title"] for p in panels]
    row = titles.index("Deliverability")
    below = panels[row + 1:row + 5]
    exprs = "\n".join(t["expr"] for p in below for t in p["targets"])
    for fragment in (
        'mailcanary_probe_success{job=~"$job", probe="domain"',
        'mailcanary_probe_failure_info{job=~"$job", probe="domain"',
        'mailcanary_probe_failure_info{job=~"$job", probe="roundtrip", target=~"$target", '
        'phase="deliver"',
        "sum by (method, result) (increase(mailcanary_canary_auth_results_total{",
        'placement="spam"}[24h])) / clamp_min(sum by (target) (increase(mailcanary_canaries_total',
    ):
        assert fragment in exprs, fragment
    row_y = panels[row]["gridPos"]["y"]
    assert all(p["gridPos"]["y"] > row_y for p in below)


def test_deliverability_rules_have_their_own_group() -> None:
    text = RULES.read_text(encoding="utf-8")
    group = text.split("  - name: mailcanary.deliverability\n", 1)[1]
    for alert in ("MailcanaryDomainBlocklisted", "MailcanaryDomainAuthBroken",
                  "MailcanaryMxCertificateExpiring"):
        assert f"- alert: {alert}\n" in group, alert
