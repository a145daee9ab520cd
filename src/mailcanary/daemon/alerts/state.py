"""When to notify: after `after` consecutive failures, every `repeat` while failing, once on
recovery. Pure logic on results and a clock, so it is tested without a network."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from typing import Any

from mailcanary.i18n import text
from mailcanary.result import ProbeResult


def rfc3339(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).isoformat(timespec="seconds").replace(
        "+00:00", "Z"
    )


@dataclass(frozen=True)
class AlertEvent:
    status: str  # "firing" | "resolved"
    probe: str
    target: str
    cls: str
    reason: str
    phase: str | None
    hint: str
    detail: str
    since: float  # first failure of this streak
    failures: int
    at: float  # when the event was made
    expires: float  # firing: when the alert is stale unless refreshed (Alertmanager endsAt)
    scope: str = "target"  # "server": one event for the failing targets of one server
    server: str = ""  # host:port of the target's mailbox ("" if it has none)
    provider: str = ""
    labels: tuple[tuple[str, str], ...] = ()  # the account's own labels (Alertmanager)
    targets: tuple[str, ...] = ()  # scope "server": the member targets' names
    count: int = 0  # scope "server": how many

    def payload(self) -> dict[str, Any]:
        """The contract's webhook object."""
        if self.scope == "server":
            return {
                "status": self.status, "scope": "server", "server": self.server,
                "provider": self.provider, "class": self.cls, "reason": self.reason,
                "hint": self.hint, "targets": list(self.targets), "count": self.count,
                "since": rfc3339(self.since),
            }
        return {
            "status": self.status,
            "scope": "target",
            "server": self.server,
            "provider": self.provider,
            "probe": self.probe,
            "target": self.target,
            "class": self.cls,
            "reason": self.reason,
            "phase": self.phase,
            "hint": self.hint,
            "detail": self.detail,
            "since": rfc3339(self.since),
            "failures": self.failures,
        }


@dataclass
class _Streak:
    failures: int = 0
    since: float = 0.0
    firing: bool = False
    last_sent: float = 0.0
    last: ProbeResult | None = None


class AlertTracker:
    """One sink's view of every (probe, target)."""

    def __init__(self, after: int, repeat: float, *, refresh_every_failure: bool = False) -> None:
        self.after = after
        self.repeat = repeat
        # Alertmanager forgets an alert whose endsAt passed: refresh it on every failure.
        self.refresh_every_failure = refresh_every_failure
        self.streaks: dict[tuple[str, str], _Streak] = {}

    def forget(self, probe: str, target: str) -> None:
        self.streaks.pop((probe, target), None)

    def removed(self, probe: str, target: str, now: float) -> AlertEvent | None:
        """The target left the config: a firing alert gets its resolved event, saying so."""
        streak = self.streaks.pop((probe, target), None)
        if streak is None or not streak.firing or streak.last is None:
            return None
        event = _event("resolved", streak.last, streak.since, streak.failures, now, expires=now)
        return replace(event, detail="the target was removed from the configuration "
                                     f"(last failure: {event.detail})")

    def observe(self, result: ProbeResult, now: float, ttl: float) -> AlertEvent | None:
        key = (result.probe, result.target)
        if result.ok:
            streak = self.streaks.pop(key, None)  # a healthy target keeps no state
            if streak is not None and streak.firing and streak.last is not None:
                return _event("resolved", streak.last, streak.since, streak.failures, now,
                              expires=now)
            return None
        streak = self.streaks.setdefault(key, _Streak())
        if streak.failures == 0:
            streak.since = result.finished_at
        streak.failures += 1
        streak.last = result
        due = (
            not streak.firing and streak.failures >= self.after
        ) or (
            streak.firing
            and (self.refresh_every_failure or now - streak.last_sent >= self.repeat)
        )
        if not due:
            return None
        streak.firing = True
        streak.last_sent = now
        return _event("firing", result, streak.since, streak.failures, now, expires=now + ttl)

    def firing_event(self, key: tuple[str, str], now: float, ttl: float) -> AlertEvent | None:
        """A firing event for a target past `after` (one held back or leaving a server
        incident is sent this way), from its last result."""
        streak = self.streaks.get(key)
        if streak is None or not streak.firing or streak.last is None:
            return None
        streak.last_sent = now
        return _event("firing", streak.last, streak.since, streak.failures, now,
                      expires=now + ttl)

    def dump(self) -> list[dict[str, Any]]:
        """The streaks as JSON (for `state_dir`): what a restart needs to resolve them."""
        out = []
        for (probe, target), streak in self.streaks.items():
            last = streak.last
            out.append({
                "probe": probe, "target": target, "failures": streak.failures,
                "since": streak.since, "firing": streak.firing, "last_sent": streak.last_sent,
                "last": None if last is None else {
                    "class": last.cls, "reason": last.reason, "phase": last.phase,
                    "hint": last.hint, "hint_text": text.to_json(last.hint),
                    "detail": last.detail, "finished_at": last.finished_at,
                },
            })
        return out

    def load(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            last = row.get("last")
            self.streaks[str(row["probe"]), str(row["target"])] = _Streak(
                failures=int(row["failures"]), since=float(row["since"]),
                firing=bool(row["firing"]), last_sent=float(row["last_sent"]),
                last=None if last is None else ProbeResult(
                    probe=str(row["probe"]), target=str(row["target"]), ok=False,
                    cls=str(last["class"]), reason=str(last["reason"]), phase=last["phase"],
                    detail=str(last["detail"]),
                    hint=text.from_json(last.get("hint_text"), str(last["hint"])),
                    duration_seconds=0.0,
                    phases={}, finished_at=float(last["finished_at"]),
                ),
            )


def _event(
    status: str, result: ProbeResult, since: float, failures: int, now: float, *, expires: float
) -> AlertEvent:
    return AlertEvent(
        status=status,
        probe=result.probe,
        target=result.target,
        cls=result.cls,
        reason=result.reason,
        phase=result.phase,
        hint=result.hint,
        detail=result.detail,
        since=since,
        failures=failures,
        at=now,
        expires=expires,
    )
