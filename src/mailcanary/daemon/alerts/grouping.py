"""Server incidents: one event when many targets of one server fail alike, not one each.

One expired certificate or one provider outage fails every account on that server. When
at least `server_min_targets` targets with the same `server` are past their `after` with
the same `class`, the sink gets one `scope: "server"` event; its members send no target
events for that class while it fires, later ones join it silently, and it resolves (one
event) when none of its members fails with that class any more.

A target that becomes due while enough targets of its server already fail the same way
(past `after` or not yet) is held back for up to one run of the others (`hold`): in an
outage the others reach `after` within about one interval, and a page per target before
the incident forms is what grouping is for. A held target that the incident does not
absorb is sent when the hold ends or the group can no longer form.

Pure logic on the tracker's streaks and a clock, like state.py.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

from mailcanary.daemon.alerts.state import AlertEvent, AlertTracker
from mailcanary.probes.kind import Whereabouts
from mailcanary.result import ProbeResult

Key = tuple[str, str]  # (probe, target)
Group = tuple[str, str]  # (server, class)


@dataclass
class Incident:
    server: str
    cls: str
    since: float
    members: dict[Key, None] = field(default_factory=dict)  # in joining order
    failing: set[Key] = field(default_factory=set)  # members still failing with `cls`
    last_sent: float = 0.0
    last: AlertEvent | None = None  # the last event sent (a resolved one repeats it)


@dataclass
class _Place:
    group: Group
    due: bool  # past `after`
    provider: str


class ServerGroups:
    """One sink's server incidents, fed after its tracker with every result."""

    def __init__(self, tracker: AlertTracker, min_targets: int) -> None:
        self.tracker = tracker
        self.min_targets = min_targets  # 0: never group
        self.places: dict[Key, _Place] = {}
        self.failing: dict[Group, set[Key]] = {}
        self.due: dict[Group, set[Key]] = {}
        self.incidents: dict[Group, Incident] = {}
        self.held: dict[Key, float] = {}  # target held back -> until when
        self.sent: set[Key] = set()  # targets whose firing target event went out

    # ------------------------------------------------------------------ feeding

    def process(
        self, result: ProbeResult, where: Whereabouts, event: AlertEvent | None, now: float,
        ttl: float,
    ) -> list[AlertEvent]:
        """The events to send for this result (the tracker's `event` and any server one)."""
        key = (result.probe, result.target)
        if event is not None:
            event = replace(event, server=where.server, provider=where.provider,
                            labels=where.labels)
        out = self._move(key, None if result.ok else where, now, ttl)
        out += self._target_event(key, event, now, ttl)
        out += self._release(now, ttl)
        return out

    def removed(self, key: Key, event: AlertEvent | None, now: float) -> list[AlertEvent]:
        out = self._move(key, None, now, 0.0, removed=True)
        return out + self._target_event(key, event, now, 0.0)

    def _move(self, key: Key, where: Whereabouts | None, now: float, ttl: float, *,
              removed: bool = False) -> list[AlertEvent]:
        """Put the target where its result says (no group when ok or without a server)."""
        out: list[AlertEvent] = []
        old = self.places.pop(key, None)
        if old is not None:
            _discard(self.failing, old.group, key)
            _discard(self.due, old.group, key)
        streak = self.tracker.streaks.get(key)
        place = None
        if where is not None and where.server and streak is not None and streak.last:
            place = _Place((where.server, streak.last.cls), streak.firing, where.provider)
            self.places[key] = place
            self.failing.setdefault(place.group, set()).add(key)
            if place.due:
                self.due.setdefault(place.group, set()).add(key)
        if old is not None and (place is None or place.group != old.group):
            incident = self.incidents.get(old.group)
            if incident is not None:
                incident.failing.discard(key)
                if not incident.failing:
                    out.append(self._resolve(old.group, now, removed=removed))
        if place is not None and place.due:
            out += self._join_or_form(key, place.group, now, ttl)
        return out

    def _join_or_form(self, key: Key, group: Group, now: float,
                      ttl: float) -> list[AlertEvent]:
        incident = self.incidents.get(group)
        if incident is not None:  # joins silently
            incident.members[key] = None
            incident.failing.add(key)
            self.held.pop(key, None)
            return []
        due = self.due.get(group, set())
        if self.min_targets <= 0 or len(due) < self.min_targets:
            return []
        members = sorted(due, key=lambda k: self.tracker.streaks[k].since)
        incident = self.incidents[group] = Incident(
            group[0], group[1], since=min(self.tracker.streaks[k].since for k in members),
            members=dict.fromkeys(members), failing=set(members),
        )
        for member in members:
            self.held.pop(member, None)
        return [self._server_event(incident, "firing", now, ttl)]

    def _target_event(
        self, key: Key, event: AlertEvent | None, now: float, ttl: float
    ) -> list[AlertEvent]:
        place = self.places.get(key)
        if event is not None and event.status == "resolved":
            self.held.pop(key, None)
            if key in self.sent:  # an alert that went out always resolves
                self.sent.discard(key)
                return [event]
            return []
        incident = self.incidents.get(place.group) if place is not None else None
        if incident is not None and key in incident.members:
            if event is not None:
                return self._refresh(incident, now, ttl)
            return []
        if event is None and (place is None or not place.due or key in self.sent
                              or key in self.held):
            return []
        if place is not None and key not in self.sent and self._may_form(place.group):
            self.held.setdefault(key, now + ttl / 3)  # one more run of the others
            return []
        self.held.pop(key, None)
        if event is None:  # due but never sent: left an incident, or changed class
            event = self._with_where(self.tracker.firing_event(key, now, ttl), place)
        if event is None:
            return []
        self.sent.add(key)
        return [event]

    def _may_form(self, group: Group) -> bool:
        return 0 < self.min_targets <= len(self.failing.get(group, ()))

    def _release(self, now: float, ttl: float) -> list[AlertEvent]:
        """Held targets whose hold ended, or whose group can no longer form."""
        out: list[AlertEvent] = []
        for key, until in list(self.held.items()):
            place = self.places.get(key)
            if place is None:
                self.held.pop(key)
                continue
            if until > now and self._may_form(place.group):
                continue
            self.held.pop(key)
            event = self._with_where(self.tracker.firing_event(key, now, ttl), place)
            if event is not None:
                self.sent.add(key)
                out.append(event)
        return out

    def _with_where(self, event: AlertEvent | None, place: _Place | None) -> AlertEvent | None:
        if event is None or place is None:
            return event
        return replace(event, server=place.group[0], provider=place.provider)

    # ------------------------------------------------------------------ server events

    def _refresh(self, incident: Incident, now: float, ttl: float) -> list[AlertEvent]:
        """A member's repeat (or Alertmanager refresh) becomes the incident's, at most
        every `repeat` (refreshing sinks: every third of the alert's lifetime)."""
        every = ttl / 3 if self.tracker.refresh_every_failure else self.tracker.repeat
        if now - incident.last_sent < every:
            return []
        return [self._server_event(incident, "firing", now, ttl)]

    def _resolve(self, group: Group, now: float, *, removed: bool = False) -> AlertEvent:
        incident = self.incidents.pop(group)
        event = self._server_event(incident, "resolved", now, ttl=0.0)
        if removed:
            event = replace(event, detail="the last failing target was removed from the "
                                          "configuration")
        return event

    def _server_event(self, incident: Incident, status: str, now: float,
                      ttl: float) -> AlertEvent:
        lasts = [s.last for k in incident.members
                 if (s := self.tracker.streaks.get(k)) is not None and s.last is not None]
        reasons = Counter(r.reason for r in lasts if r.cls == incident.cls)
        reason = reasons.most_common(1)[0][0] if reasons else (
            incident.last.reason if incident.last else "")
        example = next((r for r in lasts if r.reason == reason), None)
        providers = Counter(self.places[k].provider for k in incident.members
                            if k in self.places)
        base = incident.last
        event = AlertEvent(
            status=status, probe="", target="", cls=incident.cls, reason=reason,
            phase=example.phase if example else (base.phase if base else None),
            hint=example.hint if example else (base.hint if base else ""),
            detail=example.detail if example else (base.detail if base else ""),
            since=incident.since, failures=0, at=now,
            expires=now + (ttl or 3600.0) if status == "firing" else now,
            scope="server", server=incident.server,
            provider=providers.most_common(1)[0][0] if providers else (
                base.provider if base else ""),
            targets=tuple(sorted(t for _, t in incident.members)), count=len(incident.members),
        )
        incident.last, incident.last_sent = event, now
        return event

    # ------------------------------------------------------------------ persistence

    def dump(self) -> dict[str, Any]:
        return {
            "sent": [list(k) for k in sorted(self.sent)],
            "incidents": [
                {"server": i.server, "class": i.cls, "since": i.since,
                 "last_sent": i.last_sent, "members": [list(k) for k in i.members],
                 "failing": [list(k) for k in sorted(i.failing)],
                 "last": None if i.last is None else i.last.payload()}
                for i in self.incidents.values()
            ],
        }

    def load(self, data: dict[str, Any] | None, where: dict[Key, Whereabouts]) -> None:
        """After a restart: the incidents still open (they must resolve) and which targets
        had a target event sent. `None`: a file from before grouping (all were sent)."""
        if data is None:
            self.sent = {k for k, s in self.tracker.streaks.items() if s.firing}
            data = {}
        else:
            self.sent = {(str(p), str(t)) for p, t in data.get("sent", [])}
        for key, streak in self.tracker.streaks.items():
            here = where.get(key)
            if here is None or not here.server or streak.last is None:
                continue
            place = _Place((here.server, streak.last.cls), streak.firing, here.provider)
            self.places[key] = place
            self.failing.setdefault(place.group, set()).add(key)
            if place.due:
                self.due.setdefault(place.group, set()).add(key)
        for row in data.get("incidents", []):
            incident = _incident(row)
            self.incidents[incident.server, incident.cls] = incident


def _discard(sets: dict[Group, set[Key]], group: Group, key: Key) -> None:
    members = sets.get(group)
    if members is not None:
        members.discard(key)
        if not members:
            del sets[group]


def _incident(row: dict[str, Any]) -> Incident:
    last = row.get("last") or {}
    members = [(str(p), str(t)) for p, t in row["members"]]
    incident = Incident(
        str(row["server"]), str(row["class"]), float(row["since"]),
        members=dict.fromkeys(members),
        failing={(str(p), str(t)) for p, t in row["failing"]},
        last_sent=float(row["last_sent"]),
    )
    incident.last = AlertEvent(
        status="firing", probe="", target="", cls=incident.cls,
        reason=str(last.get("reason", "")), phase=None, hint=str(last.get("hint", "")),
        detail="", since=incident.since, failures=0, at=incident.last_sent,
        expires=incident.last_sent, scope="server", server=incident.server,
        provider=str(last.get("provider", "")), targets=tuple(t for _, t in members),
        count=len(members),
    )
    return incident
