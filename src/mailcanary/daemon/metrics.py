"""What /metrics shows: the last scheduled probe of every configured target.

The state lives in plain dicts updated by the scheduler; the per-target and per-route
families are written from it on every scrape by `exposition.render_chunks` (fast, in
slices), the daemon's few own families by `MetricsCollector` (prometheus_client), so a
target removed by a reload disappears from the exposition at once.

Before a target's first probe ends its series already exist: success 0, duration 0,
last_success 0, TLS expiry 0 ("unknown": the dashboard and alert rules filter ``> 0``),
skipped 0, backoff factor 1, a login probe's phase durations 0 (its ``token`` phase aside),
`mailcanary_target_info` (server, provider, the account's labels), the configured interval,
and for a route every placement at 0 and an empty delivery histogram: at most 15 series
per target (an IMAP login target with STARTTLS has exactly 15).
`mailcanary_probe_failure_info` has one series per target whose last result failed. A failure counter per class/reason appears at the first
such failure (the contract allows it): pre-setting every reason cost 33 series per target,
two thirds of a 1,000-account scrape. An excerpt of the exposition::

    # HELP mailcanary_probe_success 1 if the last scheduled probe succeeded, 0 if it failed ...
    # TYPE mailcanary_probe_success gauge
    mailcanary_probe_success{probe="imap",target="alice"} 1.0
    # TYPE mailcanary_probe_failures_total counter
    mailcanary_probe_failures_total{probe="imap",target="alice",class="auth",reason="invalid_credentials"} 1.0
    # TYPE mailcanary_delivery_duration_seconds histogram
    mailcanary_delivery_duration_seconds_bucket{probe="roundtrip",target="alice-to-bob",le="0.05"} 0
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
from mailcanary.probes.kind import Whereabouts
from mailcanary.result import ProbeResult

PLACEMENTS = ("inbox", "spam", "other", "missing")
# Authentication-Results (RFC 8601) methods and results that become label values; any
# other result word a receiving server writes is counted as "other".
AUTH_METHODS = ("spf", "dkim", "dmarc")
AUTH_RESULTS = frozenset({"pass", "fail", "softfail", "neutral", "none", "temperror",
                          "permerror", "policy", "hardfail", "bestguesspass"})
# Mail delivery takes from tens of milliseconds (same server) to an hour (greylisting, queues).
DELIVERY_BUCKETS = (
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
)
# From start-up, per run of the scheduler: due time to start (seconds).
LAG_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# Which phases a target pre-sets to 0 and whether it has a delivery histogram (label
# probe, target = the route's or watch's name) is its kind's to say (`ProbeKind.preset_phases`,
# `ProbeKind.delivery`); the other phases appear with the first result, so that no target
# has more than 15 series at start-up.


@dataclass(slots=True)  # 20,000 of them at 10,000 accounts: no __dict__ each
class TargetSeries:
    """Everything exported for one (probe, target)."""

    probe: str
    target: str
    reasons: tuple[str, ...]
    delivery: bool = False  # its placements and delivery seconds go to `routes[target]`
    where: Whereabouts = field(default_factory=Whereabouts)  # mailcanary_target_info
    interval: float = 0.0  # configured, before backoff: mailcanary_probe_interval_seconds
    success: float = 0.0
    duration: float = 0.0
    last_success: float = 0.0
    tls_expiry: float = 0.0
    probes: int = 0
    skipped: int = 0
    backoff: float = 1.0
    paused: bool = False  # logins paused after repeated auth failures (daemon/backoff.py)
    phases: dict[str, float] = field(default_factory=dict)
    failures: dict[tuple[str, str], int] = field(default_factory=dict)
    auth: dict[tuple[str, str], int] = field(default_factory=dict)  # (method, result)
    last: ProbeResult | None = None


@dataclass
class RouteSeries:
    """The delivery histogram and placement counters of one route."""

    route: str  # the route's or inbound watch's name (names are unique across both)
    probe: str = "roundtrip"
    buckets: list[int] = field(default_factory=lambda: [0] * len(DELIVERY_BUCKETS))
    count: int = 0
    total: float = 0.0
    placements: dict[str, int] = field(default_factory=lambda: dict.fromkeys(PLACEMENTS, 0))

    @property
    def lbl(self) -> str:
        return f'probe="{self.probe}",target="{self.route}"'

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
        self.lag_buckets = [0] * len(LAG_BUCKETS)
        self.lag_count = 0
        self.lag_sum = 0.0

    def observe_lag(self, seconds: float) -> None:
        index = bisect.bisect_left(LAG_BUCKETS, seconds)
        for i in range(index, len(self.lag_buckets)):
            self.lag_buckets[i] += 1
        self.lag_count += 1
        self.lag_sum += seconds

    def count_skip(self, probe: str, target: str) -> None:
        series = self.targets.get((probe, target))
        if series is not None:
            series.skipped += 1

    def ensure(
        self, probe: str, target: str, reasons: Iterable[str], phases: Iterable[str] = (),
        *, delivery: bool = False, where: Whereabouts | None = None, interval: float = 0.0,
    ) -> None:
        """A target's series; `phases`: the ones pre-set to 0. `where` and `interval`
        are updated on every call (a reload may change an account's labels)."""
        series = self.targets.get((probe, target))
        if series is None:
            series = self.targets[probe, target] = TargetSeries(
                probe, target, tuple(reasons), delivery, phases=dict.fromkeys(phases, 0.0))
        if where is not None:
            series.where = where
        series.interval = interval or series.interval
        if delivery and target not in self.routes:
            self.routes[target] = RouteSeries(target, probe)

    def forget(self, probe: str, target: str) -> None:
        series = self.targets.pop((probe, target), None)
        if series is not None and series.delivery:
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
        if "replayed" not in result.extra:  # replayed: counted already
            _count_auth(series, result.extra.get("auth_results"))
        route = self.routes.get(result.target) if series.delivery else None
        if route is not None and "replayed" not in result.extra:  # replayed: counted already
            placement = result.extra.get("placement")
            if isinstance(placement, str):
                route.placements[placement] = route.placements.get(placement, 0) + 1
            delivery = result.extra.get("delivery_seconds")
            if isinstance(delivery, int | float) and not isinstance(delivery, bool):
                route.observe(float(delivery))

    def count_notification(self, sink: str, status: str) -> None:
        self.notifications[sink, status] = self.notifications.get((sink, status), 0) + 1


def _count_auth(series: TargetSeries, seen: object) -> None:
    """One count per method of a delivered message's Authentication-Results."""
    if not isinstance(seen, dict):
        return
    for method in AUTH_METHODS:
        result = seen.get(method)
        if isinstance(result, str):
            key = (method, result if result in AUTH_RESULTS else "other")
            series.auth[key] = series.auth.get(key, 0) + 1


class MetricsCollector(Collector):
    """The daemon's own families (few series) from `MetricsState` on every collect()."""

    def __init__(self, state: MetricsState) -> None:
        self.state = state

    def collect(self) -> Iterator[Metric]:
        yield from self._daemon_families()

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
        lag = HistogramMetricFamily(
            "mailcanary_schedule_lag_seconds",
            "Seconds from a scheduled run's due time until it started (skipped runs aside).",
        )
        buckets = [(_le(b), float(c)) for b, c in zip(LAG_BUCKETS, self.state.lag_buckets,
                                                      strict=True)]
        buckets.append(("+Inf", float(self.state.lag_count)))
        lag.add_metric([], buckets, sum_value=self.state.lag_sum)
        yield lag
        paused = GaugeMetricFamily(
            "mailcanary_probe_paused",
            "1 while a target's logins are paused after [defaults] auth_pause_after "
            "consecutive auth failures (until its secret or config changes); absent otherwise.",
            labels=["probe", "target"],
        )
        for series in list(self.state.targets.values()):
            if series.paused:
                paused.add_metric([series.probe, series.target], 1.0)
        yield paused
        sweep_time = GaugeMetricFamily(
            "mailcanary_sweep_last_success_timestamp_seconds",
            "Unix time the last sweep of the receiving mailboxes finished without error.",
        )
        sweep_time.add_metric([], self.state.sweep_success_time)
        yield sweep_time


def _le(bound: float) -> str:
    return repr(float(bound))
