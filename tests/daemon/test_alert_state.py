"""The alert state machine on its own: after N, repeat, resolved, per (probe, target)."""

from __future__ import annotations

from mailcanary.config import AlertConfig
from mailcanary.daemon.alerts import AlertTracker
from mailcanary.daemon.alerts.engine import sink_labels
from mailcanary.result import ProbeResult


def result(ok: bool, at: float, target: str = "alice") -> ProbeResult:
    return ProbeResult(
        probe="imap", target=target, ok=ok, cls="ok" if ok else "network",
        reason="ok" if ok else "connection_refused", phase=None if ok else "connect",
        detail="" if ok else "refused", hint="" if ok else "start it", duration_seconds=0.1,
        phases={}, finished_at=at,
    )


def test_fires_after_n_repeats_and_resolves_once() -> None:
    tracker = AlertTracker(after=3, repeat=100)
    events = [tracker.observe(result(False, t), t, ttl=60) for t in (0, 10, 20, 30, 130)]
    assert [e.status if e else None for e in events] == [None, None, "firing", None, "firing"]
    fired = events[2]
    assert fired is not None and fired.failures == 3 and fired.since == 0
    assert fired.payload()["since"] == "1970-01-01T00:00:00Z"
    resolved = tracker.observe(result(True, 140), 140, ttl=60)
    assert resolved is not None and resolved.status == "resolved" and resolved.failures == 5
    assert tracker.observe(result(True, 150), 150, ttl=60) is None


def test_recovery_before_firing_is_silent_and_targets_are_separate() -> None:
    tracker = AlertTracker(after=2, repeat=100)
    assert tracker.observe(result(False, 0), 0, ttl=60) is None
    assert tracker.observe(result(True, 1), 1, ttl=60) is None
    assert tracker.observe(result(False, 2), 2, ttl=60) is None
    assert tracker.observe(result(False, 3, "bob"), 3, ttl=60) is None  # bob's first
    event = tracker.observe(result(False, 4), 4, ttl=60)
    assert event is not None and event.target == "alice" and event.since == 2


def test_alertmanager_refreshes_on_every_failure() -> None:
    tracker = AlertTracker(after=1, repeat=3600, refresh_every_failure=True)
    first = tracker.observe(result(False, 0), 0, ttl=60)
    second = tracker.observe(result(False, 1), 1, ttl=60)
    assert first is not None and second is not None and second.expires == 61


def test_sink_labels_unique() -> None:
    sinks = [AlertConfig(kind="webhook", url="http://127.0.0.1/a"),
             AlertConfig(kind="slack", url="http://127.0.0.1/b"),
             AlertConfig(kind="webhook", url="http://127.0.0.1/c")]
    assert sink_labels(sinks) == ["webhook1", "slack", "webhook2"]
