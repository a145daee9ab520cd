"""One severity per condition: the Prometheus rule that fires for a failing (probe, class,
reason) carries the severity the built-in alertmanager sink sends for it (over a real
HTTP receiver)."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from mailcanary.daemon.alerts.severity import severity
from mailcanary.daemon.alerts.sinks import AlertmanagerSink
from mailcanary.daemon.alerts.state import AlertEvent
from tests.helpers.receivers import receiver

RULES = Path(__file__).resolve().parents[2] / "grafana" / "alerts" / "mailcanary.rules.yml"

# The rule that fires for each condition (probe, class, reason).
CONDITIONS: list[tuple[str, tuple[str, str, str]]] = [
    ("MailcanaryTargetFailing", ("imap", "network", "connection_refused")),
    ("MailcanaryTargetFailing", ("smtp", "tls", "cert_expired")),
    ("MailcanaryTargetFailing", ("pop3", "server", "unavailable")),
    ("MailcanaryAuthFailing", ("imap", "auth", "invalid_credentials")),
    ("MailcanaryAuthFailing", ("smtp", "auth", "basic_auth_disabled")),
    ("MailcanaryCanaryLost", ("roundtrip", "delivery", "lost")),
    ("MailcanaryCanaryInSpam", ("roundtrip", "spam", "spam_folder")),
    ("MailcanaryDeliverySlow", ("roundtrip", "delivery", "delayed")),
    ("MailcanaryInboundMailFailing", ("inbound", "trigger", "trigger_failed")),
    ("MailcanaryInboundMailFailing", ("inbound", "delivery", "lost")),
    ("MailcanaryInboundMailFailing", ("inbound", "spam", "spam_folder")),
]
SELECTOR = re.compile(r"mailcanary_probe_failure_info\{([^}]*)\}")
MATCHER = re.compile(r'(\w+)\s*(=~|=)\s*"([^"]*)"')


def _rules() -> dict[str, dict[str, Any]]:
    doc = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    return {r["alert"]: r for g in doc["groups"] for r in g["rules"] if "alert" in r}


def _selects(expr: str, probe: str, cls: str, reason: str) -> bool:
    """Whether the rule's failure_info selector (if any) admits this condition."""
    values = {"probe": probe, "class": cls, "reason": reason}
    for matchers in SELECTOR.findall(expr):
        for label, op, value in MATCHER.findall(matchers):
            got = values.get(label, "")
            if (op == "=" and got != value) or (op == "=~" and not re.fullmatch(value, got)):
                return False
    return True


@pytest.mark.parametrize(("alert", "condition"), CONDITIONS)
def test_rule_severity_is_the_sinks(alert: str, condition: tuple[str, str, str]) -> None:
    rule = _rules()[alert]
    assert _selects(rule["expr"], *condition), (alert, condition)
    assert rule["labels"]["severity"] == severity(*condition), (alert, condition)


def test_server_down_is_critical_in_both() -> None:
    assert _rules()["MailcanaryServerDown"]["labels"]["severity"] == "critical"
    assert severity("imap", "network", "connection_refused", scope="server") == "critical"


async def test_alertmanager_sink_sends_the_rules_severity() -> None:
    rules = _rules()
    now = time.time()
    async with receiver() as rec:
        sink = AlertmanagerSink(rec.url)
        try:
            for _, (probe, cls, reason) in CONDITIONS:
                await sink.send(AlertEvent(
                    status="firing", probe=probe, target="t", cls=cls, reason=reason,
                    phase="auth", hint="", detail="", since=now, failures=2, at=now,
                    expires=now + 60,
                ))
        finally:
            await sink.aclose()
    sent = [alert["labels"]["severity"] for body in rec.bodies("/api/v2/alerts")
            for alert in body]
    expected = [rules[alert]["labels"]["severity"] for alert, _ in CONDITIONS]
    assert sent == expected
    assert "critical" in sent and "warning" in sent
