"""One severity per condition, the same for the built-in alertmanager sink and the
Prometheus rules in grafana/alerts/mailcanary.rules.yml (tests/daemon/test_alert_severity.py
holds the two together; docs/runbooks.md has the table).

Critical pages someone: a whole server failing, round trips losing canaries, your app's
own mail (inbound watches) failing. Everything about one account (a rejected password,
a slow or spam-foldered canary, a certificate problem) is a warning: when it is really the
server, the server-wide alert says so. A critical target alert needs two failed runs in a
row in both places (the sinks' default `after = 2`; the rules' "longer than one run").
"""

from __future__ import annotations

CRITICAL = "critical"
WARNING = "warning"
# Inbound watches: the classes that mean users do not get the app's mail.
_INBOUND_CRITICAL = frozenset({"trigger", "delivery", "spam"})


def severity(probe: str, cls: str, reason: str, scope: str = "target") -> str:
    """The severity of a failing (probe, class, reason), or of a server-wide event."""
    if scope == "server":
        return CRITICAL
    if probe == "roundtrip" and (cls, reason) == ("delivery", "lost"):
        return CRITICAL
    if probe == "inbound" and cls in _INBOUND_CRITICAL:
        return CRITICAL
    return WARNING
