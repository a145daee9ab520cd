"""`check --nagios`: the monitoring-plugin conventions, for Nagios, Icinga, Checkmk (MRPE).

One line, ``MAILCANARY <STATE> - <summary> | <perfdata>``, and the exit code of the state:
0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN. CRITICAL: a probe failed. WARNING: none failed,
but a server certificate expires within `--cert-warning-days` or a canary was only
`delayed`. UNKNOWN: the plugin itself could not judge (bad config, usage, interrupted,
a bug of ours). Perfdata: ``'<probe>_<target>'=<seconds>s;<warn>;<crit>;0;`` per probe,
the thresholds where the config gives them (a login's timeout; a route's slo and
deadline on the delivery time), and the certificate's days left against the warning days.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mailcanary.config import Config
    from mailcanary.result import ProbeResult

OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3
STATES = ("OK", "WARNING", "CRITICAL", "UNKNOWN")
SHOWN = 3  # targets named in the summary; the rest are counted


def status_line(state: int, summary: str, perfdata: Sequence[str] = ()) -> str:
    line = f"MAILCANARY {STATES[state]} - {summary}"
    return f"{line} | {' '.join(perfdata)}" if perfdata else line


def unknown(summary: str) -> int:
    print(status_line(UNKNOWN, summary))
    return UNKNOWN


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.6g}"


def perfdata(config: Config, results: Sequence[ProbeResult], warn_days: int) -> list[str]:
    from mailcanary.output import cert_days

    out = []
    for r in results:
        label = f"{r.probe}_{r.target}"
        crit: float | None = None
        if r.probe in ("imap", "smtp", "pop3"):
            crit = config.timeout_of(config.account(r.target))
        out.append(f"'{label}'={r.duration_seconds:.3f}s;;{_number(crit)};0;")
        delivery = r.extra.get("delivery_seconds")
        if isinstance(delivery, int | float) and r.probe == "roundtrip":
            route = config.route(r.target)
            out.append(f"'{label}_delivery'={delivery:.3f}s;{_number(route.slo)};"
                       f"{_number(route.deadline)};0;")
        days = cert_days(r)
        if days is not None:
            out.append(f"'{label}_cert_days'={days};{warn_days}:;0:;;")
    return out


def judge(results: Sequence[ProbeResult], warn_days: int) -> tuple[int, str]:
    """The state and the summary words."""
    from mailcanary.output import cert_days

    def named(found: list[str]) -> str:
        more = f" and {len(found) - SHOWN} more" if len(found) > SHOWN else ""
        return ", ".join(found[:SHOWN]) + more

    failed = [f"{r.probe} {r.target} {r.cls}/{r.reason}" for r in results
              if not r.ok and r.reason not in ("delayed", "internal_error")]
    if failed:
        return CRITICAL, f"{len(failed)} of {len(results)} probes failed: {named(failed)}"
    internal = [f"{r.probe} {r.target}" for r in results if r.reason == "internal_error"]
    if internal:
        return UNKNOWN, f"internal error (a bug in mailcanary) in {named(internal)}"
    warnings = [f"{r.probe} {r.target} canary delayed" for r in results
                if r.reason == "delayed"]
    for r in results:
        days = cert_days(r)
        if days is not None and days < warn_days:
            warnings.append(f"{r.probe} {r.target} certificate expires in {days} day(s)")
    if warnings:
        return WARNING, f"{len(warnings)} warning(s): {named(warnings)}"
    return OK, f"{len(results)} probes ok"


Runner = Callable[["Config", Sequence[tuple[str, str]]], Coroutine[Any, Any, list["ProbeResult"]]]


def nagios_check(config: Config, probes: Sequence[tuple[str, str]], warn_days: int,
                 run_check: Runner) -> int:
    if not probes:
        return unknown("nothing to probe in this selection")
    try:
        results = asyncio.run(run_check(config, probes))
    except KeyboardInterrupt:
        return unknown("interrupted before every probe finished")
    state, summary = judge(results, warn_days)
    print(status_line(state, summary, perfdata(config, results, warn_days)))
    sys.stdout.flush()
    return state
