"""When to notify: after `after` consecutive failures, every `repeat` while failing, once on
recovery. Pure logic on results and a clock, so it is tested without a network."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

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

    def payload(self) -> dict[str, Any]:
        """The contract's webhook object."""
        return {
            "status": self.status,
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

    def observe(self, result: ProbeResult, now: float, ttl: float) -> AlertEvent | None:
        key = (result.probe, result.target)
        streak = self.streaks.setdefault(key, _Streak())
        if result.ok:
            was_firing, last = streak.firing, streak.last
            failures, since = streak.failures, streak.since
            self.streaks[key] = _Streak()
            if was_firing and last is not None:
                return _event("resolved", last, since, failures, now, expires=now)
            return None
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
