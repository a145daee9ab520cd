"""What an alert says, the same for every sink: a one-line summary and a readable body,
in the daemon's language (`[daemon] language`): codes stay codes, the words around them and
the hint are translated through the catalog."""

from __future__ import annotations

from collections.abc import Callable

from mailcanary.daemon.alerts.state import AlertEvent, rfc3339
from mailcanary.i18n import Translator, translator

ENGLISH = translator("en")
# The language of every notification, asked when it is sent (a reload may change it).
Language = Callable[[], Translator]


class SinkError(Exception):
    pass


def english() -> Translator:
    return ENGLISH


def summary(event: AlertEvent, tr: Translator = ENGLISH) -> str:
    """One line (a mail's subject, a notification's title)."""
    params = {"probe": event.probe, "target": event.target, "server": event.server,
              "count": event.count, "problem": f"{event.cls}/{event.reason}",
              "phase": event.phase or ""}
    firing = event.status == "firing"
    if event.scope == "server":
        if firing:
            return tr("[mailcanary FIRING] server {server}: {count} targets {problem}", **params)
        return tr("[mailcanary RESOLVED] server {server}: {count} targets {problem}", **params)
    if firing:
        if event.phase:
            return tr("[mailcanary FIRING] {probe} {target}: {problem} in phase {phase}", **params)
        return tr("[mailcanary FIRING] {probe} {target}: {problem}", **params)
    if event.phase:
        return tr("[mailcanary RESOLVED] {probe} {target}: {problem} in phase {phase}", **params)
    return tr("[mailcanary RESOLVED] {probe} {target}: {problem}", **params)


def _server_line(event: AlertEvent, tr: Translator) -> str:
    server = event.server + (f" ({event.provider})" if event.provider else "")
    targets = ", ".join(event.targets[:20])
    if event.count > 20:
        targets = tr("{targets} and {more} more", targets=targets, more=event.count - 20)
    params = {"server": server, "count": event.count, "since": rfc3339(event.since),
              "targets": targets}
    if event.status == "firing":
        return tr("server {server}: {count} targets failing since {since}: {targets}", **params)
    return tr("server {server}: {count} targets recovered since {since}: {targets}", **params)


def readable(event: AlertEvent, tr: Translator = ENGLISH) -> str:
    """The text Slack, e-mail and Apprise show: what, since when, what to do."""
    lines = [summary(event, tr)]
    since = rfc3339(event.since)
    if event.scope == "server":
        lines.append(_server_line(event, tr))
    elif event.status == "firing":
        lines.append(tr("failing since {since} ({failures} probes in a row)", since=since,
                        failures=event.failures))
    else:
        lines.append(tr("recovered after {failures} failed probes since {since}",
                        failures=event.failures, since=since))
    if event.hint:
        lines.append(tr("hint: {hint}", hint=event.hint))
    if event.detail:
        lines.append(tr("detail: {detail}", detail=event.detail))
    return "\n".join(lines)
