"""The text exposition of the per-target and per-route series, written directly.

prometheus_client builds a Metric object and a Sample tuple per series and formats each
with generic escaping: at 20,000 targets that is seconds of CPU. Our label values are
names matched by ``[A-Za-z0-9_.-]+`` or fixed words, so they need no escaping (an
account's own `labels` values, on `mailcanary_target_info` only, are escaped), and lines
are formatted straight from the state. `render_chunks` yields the text in slices so the
caller can give the event loop back between them: a scrape never stalls a probe.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from mailcanary.daemon.metrics import DELIVERY_BUCKETS, MetricsState, RouteSeries, TargetSeries

CHUNK = 500  # series objects per slice

Lines = Callable[[str, str, "TargetSeries", list[str]], None]

_LAST = "Values come from the last scheduled probe, not from the scrape."
_TARGET_FAMILIES: tuple[tuple[str, str, str], ...] = (
    ("mailcanary_probe_success", "gauge",
     f"1 if the last scheduled probe succeeded, 0 if it failed or has not run yet. {_LAST}"),
    ("mailcanary_probe_duration_seconds", "gauge",
     f"How long the last scheduled probe took (0 before the first). {_LAST}"),
    ("mailcanary_probe_phase_duration_seconds", "gauge",
     f"Seconds each phase of the last scheduled probe took (0: not reached). {_LAST}"),
    ("mailcanary_probes_total", "counter", "Scheduled probes run since start-up."),
    ("mailcanary_probe_failures_total", "counter",
     "Failed scheduled probes since start-up, by failure class and reason (a series "
     "appears at the first such failure)."),
    ("mailcanary_probe_last_success_timestamp_seconds", "gauge",
     f"Unix time the last successful probe ended (0: none since start-up). {_LAST}"),
    ("mailcanary_tls_cert_expiry_timestamp_seconds", "gauge",
     f"Unix time the server certificate expires (0: not seen yet). {_LAST}"),
    ("mailcanary_probe_backoff_factor", "gauge",
     "How many times the configured interval the probe now waits after auth or "
     "rate_limited failures, so the account is not locked (only while > 1; absent: 1)."),
    ("mailcanary_probe_skipped_total", "counter",
     "Scheduled runs that could not start: the previous run still went on, or too many "
     "probes already waited for the server's connection slots."),
    ("mailcanary_canary_auth_results_total", "counter",
     "Delivered canaries and watched messages by what the receiving side's "
     "Authentication-Results said, per method (spf, dkim, dmarc); a series appears when "
     "first seen."),
    ("mailcanary_target_info", "gauge",
     "Always 1: where a target lives (server host:port, provider preset, the account's "
     "labels); join with group_left on probe, target."),
    ("mailcanary_probe_failure_info", "gauge",
     f"1 while the target's last result failed: its class, reason and phase. {_LAST}"),
    ("mailcanary_probe_interval_seconds", "gauge",
     "The configured interval between scheduled probes (before any backoff)."),
)


def _num(value: float) -> str:
    """Integers without ".0", others to the microsecond: a third of the bytes of repr()."""
    if abs(value) < 1e15 and value == int(value):
        return str(int(value))
    return repr(round(value, 6))


def _one(value: Callable[[TargetSeries], float]) -> Lines:
    """A family with one line per target: its value."""
    def lines(name: str, lbl: str, s: TargetSeries, out: list[str]) -> None:
        out.append(f"{name}{{{lbl}}} {_num(value(s))}")
    return lines


def _phases(name: str, lbl: str, s: TargetSeries, out: list[str]) -> None:
    out += [f'{name}{{{lbl},phase="{p}"}} {_num(v)}' for p, v in sorted(s.phases.items())]


def _failures(name: str, lbl: str, s: TargetSeries, out: list[str]) -> None:
    out += [f'{name}{{{lbl},class="{c}",reason="{r}"}} {_num(n)}'
            for (c, r), n in sorted(s.failures.items())]


def _backoff(name: str, lbl: str, s: TargetSeries, out: list[str]) -> None:
    if s.backoff != 1:
        out.append(f"{name}{{{lbl}}} {_num(s.backoff)}")


def _auth(name: str, lbl: str, s: TargetSeries, out: list[str]) -> None:
    out += [f'{name}{{{lbl},method="{m}",result="{r}"}} {_num(n)}'
            for (m, r), n in sorted(s.auth.items())]


def _info(name: str, lbl: str, s: TargetSeries, out: list[str]) -> None:
    out.append(f"{name}{{{lbl},{_info_labels(s)}}} 1")


def _failure_info(name: str, lbl: str, s: TargetSeries, out: list[str]) -> None:
    last = s.last
    if last is not None and not last.ok:
        out.append(f'{name}{{{lbl},class="{last.cls}",reason="{last.reason}",'
                   f'phase="{last.phase or ""}"}} 1')


# One writer per entry of _TARGET_FAMILIES, in its order. A writer appends its family's
# lines of one target to `out`; the label pair is built once per target and scrape (a
# dispatch on the family number and the labels rebuilt for each of 13 families were half
# of a 10,000-account scrape's CPU).
_WRITERS: tuple[Lines, ...] = (
    _one(lambda s: s.success), _one(lambda s: s.duration), _phases,
    _one(lambda s: s.probes), _failures, _one(lambda s: s.last_success),
    _one(lambda s: s.tls_expiry), _backoff, _one(lambda s: s.skipped), _auth, _info,
    _failure_info, _one(lambda s: s.interval),
)


def _label(s: TargetSeries) -> str:
    return f'probe="{s.probe}",target="{s.target}"'


def _escape(value: str) -> str:
    """The exposition format's escapes; only free-form values need them."""
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _info_labels(s: TargetSeries) -> str:
    where = s.where
    extra = "".join(f',{name}="{_escape(value)}"' for name, value in where.labels)
    return f'server="{_escape(where.server)}",provider="{where.provider}"{extra}'


def _header(name: str, kind: str, help_text: str) -> list[str]:
    return [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]


def histogram_lines(
    name: str, label: str, *, buckets: Sequence[float], counts: Sequence[int], total: float,
    count: int,
) -> list[str]:
    lines = []
    for bound, n in zip(buckets, counts, strict=True):
        lines.append(f'{name}_bucket{{{label}le="{float(bound)!r}"}} {_num(n)}')
    lines.append(f'{name}_bucket{{{label}le="+Inf"}} {_num(count)}')
    open_label = "{" + label.rstrip(",") + "}" if label else ""
    lines.append(f"{name}_count{open_label} {_num(count)}")
    lines.append(f"{name}_sum{open_label} {_num(total)}")
    return lines


def render_chunks(state: MetricsState) -> Iterator[str]:
    """The per-target families, then the per-route ones, in slices of text."""
    targets = sorted(state.targets.values(), key=lambda s: (s.target, s.probe))
    labels = [_label(s) for s in targets]
    for (name, kind, help_text), write in zip(_TARGET_FAMILIES, _WRITERS, strict=True):
        out = _header(name, kind, help_text)
        for start in range(0, len(targets), CHUNK):
            for series, lbl in zip(targets[start:start + CHUNK], labels[start:start + CHUNK],
                                   strict=True):
                write(name, lbl, series, out)
            yield "\n".join(out) + "\n"
            out = []
        if out:
            yield "\n".join(out) + "\n"
    routes = sorted(state.routes.values(), key=lambda r: r.route)
    yield from _route_chunks(state, routes)


def _route_chunks(state: MetricsState, routes: list[RouteSeries]) -> Iterator[str]:
    out = _header("mailcanary_delivery_duration_seconds", "histogram",
                  "Seconds from the SMTP server's acceptance of a canary until it was seen "
                  "in the recipient's mailbox.")
    for route in routes:
        out += histogram_lines(
            "mailcanary_delivery_duration_seconds", f'{route.lbl},',
            buckets=DELIVERY_BUCKETS, counts=route.buckets, total=route.total, count=route.count,
        )
    yield "\n".join(out) + "\n"
    out = _header("mailcanary_canaries_total", "counter",
                  "Canaries checked since start-up, by where they were found (missing: not "
                  "seen before the deadline).")
    for route in routes:
        for placement, count in sorted(route.placements.items()):
            out.append(f'mailcanary_canaries_total{{{route.lbl},'
                       f'placement="{placement}"}} {_num(count)}')
    out += _header("mailcanary_late_canaries_total", "counter",
                   "Canaries found after their probe had given up on them (already counted "
                   "as lost); counted once here, never as a second loss.")
    for route in routes:
        out.append(f'mailcanary_late_canaries_total{{{route.lbl}}} '
                   f"{_num(state.late.get(route.route, 0))}")
    yield "\n".join(out) + "\n"
