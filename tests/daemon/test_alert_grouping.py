"""Server incidents on their own: the grouping logic on results and a clock (no network)."""

from __future__ import annotations

from mailcanary.daemon.alerts.grouping import ServerGroups
from mailcanary.daemon.alerts.state import AlertEvent, AlertTracker
from mailcanary.probes.kind import Whereabouts
from mailcanary.result import ProbeResult

A = Whereabouts("mail-a.example:993", "gmail", (("team", "sales"),))
B = Whereabouts("mail-b.example:993", "")
TTL = 30.0  # held back at most ttl / 3 = 10 s


def result(target: str, ok: bool, at: float, cls: str = "network",
           reason: str = "connection_refused") -> ProbeResult:
    return ProbeResult(
        probe="imap", target=target, ok=ok, cls="ok" if ok else cls,
        reason="ok" if ok else reason, phase=None if ok else "connect",
        detail="" if ok else "refused", hint="" if ok else "start it", duration_seconds=0.1,
        phases={}, finished_at=at,
    )


class Sink:
    """A tracker and its server groups, fed like the engine feeds them."""

    def __init__(self, after: int = 2, min_targets: int = 3) -> None:
        self.tracker = AlertTracker(after, repeat=1000.0)
        self.groups = ServerGroups(self.tracker, min_targets)
        self.sent: list[AlertEvent] = []

    def feed(self, target: str, ok: bool, at: float, where: Whereabouts = A,
             **kw: str) -> list[AlertEvent]:
        res = result(target, ok, at, **kw)
        event = self.tracker.observe(res, at, TTL)
        out = self.groups.process(res, where, event, at, TTL)
        self.sent += out
        return out

    def rounds(self, targets: list[str], ok: bool, start: float, n: int,
               where: Whereabouts = A) -> None:
        """`n` runs of every target, spread over each second as a schedule does."""
        for r in range(n):
            for i, target in enumerate(targets):
                self.feed(target, ok, start + r + i / (len(targets) + 1), where)


def test_forty_failing_alike_make_one_server_event_and_one_resolved() -> None:
    sink = Sink()
    names = [f"a{i:02d}" for i in range(40)]
    sink.rounds(names, False, 0, 5)
    assert [(e.scope, e.status) for e in sink.sent] == [("server", "firing")]
    fired = sink.sent[0]
    payload = fired.payload()
    assert payload["server"] == "mail-a.example:993" and payload["provider"] == "gmail"
    assert payload["class"] == "network" and payload["reason"] == "connection_refused"
    assert payload["hint"] == "start it" and payload["since"] == "1970-01-01T00:00:00Z"
    # The third target past `after` formed it; the rest joined silently.
    assert payload["count"] == 3
    assert set(sink.groups.incidents["mail-a.example:993", "network"].members) == {
        ("imap", n) for n in names}
    sink.rounds(names[:39], True, 10, 1)
    assert len(sink.sent) == 1  # one member still failing: still firing
    sink.feed(names[39], True, 12)
    resolved = sink.sent[-1]
    assert (resolved.scope, resolved.status, resolved.count) == ("server", "resolved", 40)
    assert set(resolved.payload()["targets"]) == set(names)
    assert len(sink.sent) == 2


def test_below_the_threshold_targets_page_alone_and_resolve() -> None:
    sink = Sink(min_targets=6)
    names = [f"b{i}" for i in range(5)]
    sink.rounds(names, False, 0, 3, B)
    firing = [e for e in sink.sent if e.status == "firing"]
    assert sorted(e.target for e in firing) == names
    assert all(e.scope == "target" and e.server == B.server for e in firing)
    assert firing[0].payload()["scope"] == "target"
    sink.rounds(names, True, 5, 1, B)
    assert sorted(e.target for e in sink.sent if e.status == "resolved") == names


def test_a_held_target_pages_when_the_others_recover() -> None:
    """Three fail once, one of them stays down: the group cannot form, so after being held
    back the one still failing pages on its own."""
    sink = Sink()
    for t in ("x", "y", "z"):
        sink.feed(t, False, 0)
    assert sink.feed("x", False, 1) == []  # held: y and z fail the same way
    out = sink.feed("y", True, 1.5)  # the group can no longer form: x goes out
    assert [(e.target, e.status, e.scope) for e in out] == [("x", "firing", "target")]
    assert [(e.target, e.status) for e in sink.feed("x", True, 3)] == [("x", "resolved")]


def test_a_hold_ends_after_a_third_of_the_alert_lifetime() -> None:
    sink = Sink()
    for t in ("x", "y", "z"):
        sink.feed(t, False, 0)
    sink.feed("x", False, 1)
    assert sink.feed("x", False, 5) == []
    out = sink.feed("x", False, 11.5)  # 1 + TTL / 3 passed; y, z still at their first
    assert [(e.target, e.status) for e in out] == [("x", "firing")]


def test_different_classes_and_servers_do_not_group() -> None:
    sink = Sink()
    sink.rounds(["p", "q"], False, 0, 3)
    sink.rounds(["r"], False, 0, 3, B)
    for at in range(3):
        sink.feed("s", False, at, cls="tls", reason="certificate_expired")
    assert sorted(e.target for e in sink.sent) == ["p", "q", "r", "s"]
    assert {e.scope for e in sink.sent} == {"target"}


def test_members_silent_then_a_class_change_pages_for_the_target() -> None:
    sink = Sink()
    sink.rounds(["a", "b", "c"], False, 0, 3)
    assert [e.scope for e in sink.sent] == ["server"]
    # c now fails differently: it leaves the incident and pages on its own.
    out = sink.feed("c", False, 3, cls="auth", reason="invalid_credentials")
    assert [(e.scope, e.target, e.cls) for e in out] == [("target", "c", "auth")]


def test_zero_turns_grouping_off() -> None:
    sink = Sink(min_targets=0)
    sink.rounds([f"t{i}" for i in range(5)], False, 0, 2)
    assert len(sink.sent) == 5 and {e.scope for e in sink.sent} == {"target"}


def test_incidents_survive_a_restart_and_resolve() -> None:
    sink = Sink()
    names = ["a", "b", "c", "d"]
    sink.rounds(names, False, 0, 3)
    saved_targets, saved_servers = sink.tracker.dump(), sink.groups.dump()
    again = Sink()
    again.tracker.load(saved_targets)
    again.groups.load(saved_servers, dict.fromkeys((("imap", n) for n in names), A))
    again.rounds(names, False, 10, 1)
    assert again.sent == []  # still one incident, already sent
    again.rounds(names, True, 20, 1)
    assert [(e.scope, e.status, e.count) for e in again.sent] == [("server", "resolved", 4)]


def test_removed_members_resolve_the_incident() -> None:
    sink = Sink()
    sink.rounds(["a", "b", "c"], False, 0, 2)
    for n in ("a", "b", "c"):
        event = sink.tracker.removed("imap", n, 5)
        sink.sent += sink.groups.removed(("imap", n), event, 5)
    assert [(e.scope, e.status) for e in sink.sent] == [("server", "firing"),
                                                        ("server", "resolved")]
    assert "removed" in sink.sent[-1].detail
