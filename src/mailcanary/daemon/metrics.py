"""What /metrics shows: the last scheduled probe of every configured target.

The state lives in plain dicts updated by the scheduler; `MetricsCollector.collect()` builds
fresh metric families from it on every scrape, so a target removed by a reload disappears
from the exposition at once (prometheus_client's own Gauge objects would keep its series).

Before a target's first probe ends its series already exist: success 0, duration 0,
last_success 0, phase durations 0, TLS expiry 0 ("unknown": the dashboard and alert rules
filter ``> 0``), every failure class/reason of the probe kind at 0, and for a route every
placement at 0 and an empty delivery histogram. An excerpt of the exposition::

    # HELP mailcanary_probe_success 1 if the last scheduled probe succeeded, 0 if it failed ...
    # TYPE mailcanary_probe_success gauge
    mailcanary_probe_success{probe="imap",target="alice"} 1.0
    # TYPE mailcanary_probe_failures_total counter
    mailcanary_probe_failures_total{class="auth",probe="imap",reason="invalid_credentials",target="alice"} 0.0
    # TYPE mailcanary_delivery_duration_seconds histogram
    mailcanary_delivery_duration_seconds_bucket{le="0.05",route="alice-to-bob"} 0.0
"""  # noqa: E501  (the exposition excerpt is quoted verbatim)

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from mailcanary import __version__
from mailcanary.diagnosis import CLASS_OF
from mailcanary.result import PHASES, ProbeResult

PLACEMENTS = ("inbox", "spam", "other", "missing")
# Mail delivery takes from tens of milliseconds (same server) to an hour (greylisting, queues).
DELIVERY_BUCKETS = (
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
)
# The phases each kind goes through; a kind not listed (a later one) gets every phase.
_LOGIN_PHASES = ("dns", "connect", "tls", "greeting", "starttls", "token", "auth")
PHASES_OF: dict[str, tuple[str, ...]] = {
    "imap": (*_LOGIN_PHASES, "select"),
    "smtp": _LOGIN_PHASES,
    "pop3": (*_LOGIN_PHASES, "select"),
    "roundtrip": tuple(p for p in PHASES if p != "trigger"),
    "inbound": (*_LOGIN_PHASES, "select", "trigger", "deliver", "cleanup"),
}

# Kinds with a delivery histogram and placement counter (route = route or inbound watch name).
DELIVERY_KINDS = ("roundtrip", "inbound")

_LAST = "Values come from the last scheduled probe, not from the scrape."


@dataclass
class TargetSeries:
    """Everything exported for one (probe, target)."""

    probe: str
    target: str
    reasons: tuple[str, ...]
    success: float = 0.0
    duration: float = 0.0
    last_success: float = 0.0
    tls_expiry: float = 0.0
    probes: int = 0
    backoff: float = 1.0
    phases: dict[str, float] = field(default_factory=dict)
    failures: dict[tuple[str, str], int] = field(default_factory=dict)
    last: ProbeResult | None = None

    def __post_init__(self) -> None:
        for phase in PHASES_OF.get(self.probe, PHASES):
            self.phases.setdefault(phase, 0.0)
        for reason in self.reasons:
            if reason != "ok":
                self.failures.setdefault((CLASS_OF.get(reason, "unknown"), reason), 0)


@dataclass
class RouteSeries:
    """The delivery histogram and placement counters of one route."""

    route: str
    buckets: list[int] = field(default_factory=lambda: [0] * len(DELIVERY_BUCKETS))
    count: int = 0
    total: float = 0.0
    placements: dict[str, int] = field(default_factory=lambda: dict.fromkeys(PLACEMENTS, 0))

    def observe(self, seconds: float) -> None:
        index = bisect.bisect_left(DELIVERY_BUCKETS, seconds)
        for i in range(index, len(self.buckets)):
            self.buckets[i] += 1
        self.count += 1
        self.total += seconds


class MetricsState:
    """The daemon's mutable metric state; the event loop is its only writer."""

    def __init__(self) -> None:
        self.targets: dict[tuple[str, str], TargetSeries] = {}
        self.routes: dict[str, RouteSeries] = {}
        self.reload_ok = 1.0
        self.reload_success_time = 0.0
        self.notifications: dict[tuple[str, str], int] = {}
        self.swept = 0  # canaries the periodic sweep deleted
        self.late: dict[str, int] = {}  # route -> canaries found after their probe gave up
        self.sweep_success_time = 0.0

    def ensure(self, probe: str, target: str, reasons: Iterable[str]) -> None:
        if (probe, target) not in self.targets:
            self.targets[probe, target] = TargetSeries(probe, target, tuple(reasons))
        if probe in DELIVERY_KINDS and target not in self.routes:
            self.routes[target] = RouteSeries(target)

    def forget(self, probe: str, target: str) -> None:
        self.targets.pop((probe, target), None)
        if probe in DELIVERY_KINDS:
            self.routes.pop(target, None)

    def record(self, result: ProbeResult) -> None:
        series = self.targets.get((result.probe, result.target))
        if series is None:  # removed by a reload while it ran
            return
        series.last = result
        series.probes += 1
        series.success = 1.0 if result.ok else 0.0
        series.duration = result.duration_seconds
        if result.ok:
            series.last_success = result.finished_at
        else:
            key = (result.cls, result.reason)
            series.failures[key] = series.failures.get(key, 0) + 1
        for phase in series.phases:
            series.phases[phase] = 0.0
        series.phases.update(result.phases)
        if result.tls is not None and result.tls.not_after_timestamp is not None:
            series.tls_expiry = result.tls.not_after_timestamp
        route = self.routes.get(result.target) if result.probe in DELIVERY_KINDS else None
        if route is not None and "replayed" not in result.extra:  # replayed: counted already
            placement = result.extra.get("placement")
            if isinstance(placement, str):
                route.placements[placement] = route.placements.get(placement, 0) + 1
            delivery = result.extra.get("delivery_seconds")
            if isinstance(delivery, int | float) and not isinstance(delivery, bool):
                route.observe(float(delivery))

    def count_notification(self, sink: str, status: str) -> None:
        self.notifications[sink, status] = self.notifications.get((sink, status), 0) + 1


class MetricsCollector(Collector):
    """Fresh metric families from `MetricsState` on every collect()."""

    def __init__(self, state: MetricsState) -> None:
        self.state = state

    def collect(self) -> Iterator[Metric]:
        yield from self._target_families()
        yield from self._route_families()
        yield from self._daemon_families()

    def _target_families(self) -> Iterator[Metric]:
        """The per-(probe, target) series of the contract, plus the backoff factor."""
        pt = ["probe", "target"]
        targets = sorted(self.state.targets.values(), key=lambda s: (s.target, s.probe))
        success = GaugeMetricFamily(
            "mailcanary_probe_success",
            f"1 if the last scheduled probe succeeded, 0 if it failed or has not run yet. {_LAST}",
            labels=pt,
        )
        duration = GaugeMetricFamily(
            "mailcanary_probe_duration_seconds",
            f"How long the last scheduled probe took (0 before the first). {_LAST}",
            labels=pt,
        )
        phase = GaugeMetricFamily(
            "mailcanary_probe_phase_duration_seconds",
            f"Seconds each phase of the last scheduled probe took (0: not reached). {_LAST}",
            labels=[*pt, "phase"],
        )
        total = CounterMetricFamily(
            "mailcanary_probes", "Scheduled probes run since start-up.", labels=pt
        )
        failures = CounterMetricFamily(
            "mailcanary_probe_failures",
            "Failed scheduled probes since start-up, by failure class and reason.",
            labels=[*pt, "class", "reason"],
        )
        last_success = GaugeMetricFamily(
            "mailcanary_probe_last_success_timestamp_seconds",
            f"Unix time the last successful probe ended (0: none since start-up). {_LAST}",
            labels=pt,
        )
        tls = GaugeMetricFamily(
            "mailcanary_tls_cert_expiry_timestamp_seconds",
            f"Unix time the server certificate expires (0: not seen yet). {_LAST}",
            labels=pt,
        )
        backoff = GaugeMetricFamily(
            "mailcanary_probe_backoff_factor",
            "How many times the configured interval the probe now waits (1: normal; >1 after "
            "auth or rate_limited failures, so the account is not locked).",
            labels=pt,
        )
        for s in targets:
            labels = [s.probe, s.target]
            success.add_metric(labels, s.success)
            duration.add_metric(labels, s.duration)
            for name, seconds in sorted(s.phases.items()):
                phase.add_metric([*labels, name], seconds)
            total.add_metric(labels, s.probes)
            for (cls, reason), count in sorted(s.failures.items()):
                failures.add_metric([*labels, cls, reason], count)
            last_success.add_metric(labels, s.last_success)
            tls.add_metric(labels, s.tls_expiry)
            backoff.add_metric(labels, s.backoff)
        yield from (success, duration, phase, total, failures, last_success, tls, backoff)

    def _route_families(self) -> Iterator[Metric]:
        """Delivery histogram and placement counters, per route."""
        delivery = HistogramMetricFamily(
            "mailcanary_delivery_duration_seconds",
            "Seconds from the SMTP server's acceptance of a canary until it was seen in the "
            "recipient's mailbox.",
            labels=["route"],
        )
        canaries = CounterMetricFamily(
            "mailcanary_canaries",
            "Canaries checked since start-up, by where they were found (missing: not seen "
            "before the deadline).",
            labels=["route", "placement"],
        )
        for route in sorted(self.state.routes.values(), key=lambda r: r.route):
            buckets = [(_le(b), float(c)) for b, c in zip(DELIVERY_BUCKETS, route.buckets,
                                                          strict=True)]
            buckets.append(("+Inf", float(route.count)))
            delivery.add_metric([route.route], buckets, sum_value=route.total)
            for placement, count in sorted(route.placements.items()):
                canaries.add_metric([route.route, placement], count)
        yield from (delivery, canaries)

    def _daemon_families(self) -> Iterator[Metric]:
        """The daemon's own state: build, reloads, alert notifications, the sweep."""
        build = GaugeMetricFamily(
            "mailcanary_build_info", "Always 1; the version label says which mailcanary runs.",
            labels=["version"],
        )
        build.add_metric([__version__], 1.0)
        yield build
        reload_ok = GaugeMetricFamily(
            "mailcanary_config_last_reload_successful",
            "1 if the last configuration load (start-up or SIGHUP) succeeded, 0 if it failed "
            "and the previous configuration is still in use.",
        )
        reload_ok.add_metric([], self.state.reload_ok)
        yield reload_ok
        reload_time = GaugeMetricFamily(
            "mailcanary_config_last_reload_success_timestamp_seconds",
            "Unix time of the last successful configuration load.",
        )
        reload_time.add_metric([], self.state.reload_success_time)
        yield reload_time
        notes = CounterMetricFamily(
            "mailcanary_alert_notifications",
            "Alert notifications by sink and outcome (sent, retried, failed, dropped).",
            labels=["sink", "status"],
        )
        for (sink, status), count in sorted(self.state.notifications.items()):
            notes.add_metric([sink, status], count)
        yield notes
        swept = CounterMetricFamily(
            "mailcanary_sweep_canaries_removed",
            "Canaries of this installation deleted by the start-up and periodic sweep.",
        )
        swept.add_metric([], self.state.swept)
        yield swept
        late = CounterMetricFamily(
            "mailcanary_late_canaries",
            "Canaries found after their probe had given up on them (already counted as "
            "lost); counted once here, never as a second loss.",
            labels=["route"],
        )
        for route_name in sorted(self.state.routes):
            late.add_metric([route_name], self.state.late.get(route_name, 0))
        yield late
        sweep_time = GaugeMetricFamily(
            "mailcanary_sweep_last_success_timestamp_seconds",
            "Unix time the last sweep of the receiving mailboxes finished without error.",
        )
        sweep_time.add_metric([], self.state.sweep_success_time)
        yield sweep_time


def _le(bound: float) -> str:
    return repr(float(bound))
