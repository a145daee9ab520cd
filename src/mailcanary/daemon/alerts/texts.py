"""What an alert says, the same for every sink: a one-line summary and a readable body."""

from __future__ import annotations

from mailcanary.daemon.alerts.state import AlertEvent, rfc3339


class SinkError(Exception):
    pass


def summary(event: AlertEvent) -> str:
    state = "FIRING" if event.status == "firing" else "RESOLVED"
    if event.scope == "server":
        return (f"[mailcanary {state}] server {event.server}: {event.count} targets "
                f"{event.cls}/{event.reason}")
    return (
        f"[mailcanary {state}] {event.probe} {event.target}: {event.cls}/{event.reason}"
        + (f" in phase {event.phase}" if event.phase else "")
    )


def readable(event: AlertEvent) -> str:
    """The text Slack, e-mail and Apprise show: what, since when, what to do."""
    lines = [summary(event)]
    if event.scope == "server":
        where = f" ({event.provider})" if event.provider else ""
        lines.append(f"server {event.server}{where}: {event.count} targets "
                     + ("failing" if event.status == "firing" else "recovered")
                     + f" since {rfc3339(event.since)}: {', '.join(event.targets[:20])}"
                     + (f" and {event.count - 20} more" if event.count > 20 else ""))
    elif event.status == "firing":
        lines.append(f"failing since {rfc3339(event.since)} ({event.failures} probes in a row)")
    else:
        lines.append(
            f"recovered after {event.failures} failed probes since {rfc3339(event.since)}"
        )
    if event.hint:
        lines.append(f"hint: {event.hint}")
    if event.detail:
        lines.append(f"detail: {event.detail}")
    return "\n".join(lines)
