"""One prober per kind behind one function type, looked up in one registry.

A prober only does the protocol work and raises on trouble; the runner owns timing,
the timeout, classification and the outcome log line (as blackbox_exporter does).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from mailcanary.config import Config
from mailcanary.probes import imap, pop3, smtp
from mailcanary.probes.inbound import probe as inbound
from mailcanary.probes.roundtrip import probe as roundtrip
from mailcanary.result import ProbeContext

ProbeFn = Callable[[ProbeContext, Config, str], Awaitable[None]]
TimeoutFn = Callable[[Config, str], float]


@dataclass(frozen=True)
class ProbeKind:
    run: ProbeFn
    timeout: TimeoutFn
    reasons: tuple[str, ...]  # every reason it can report, for zero-initialised series


PROBES: dict[str, ProbeKind] = {
    "imap": ProbeKind(imap.probe, imap.timeout, imap.REASONS),
    "smtp": ProbeKind(smtp.probe, smtp.timeout, smtp.REASONS),
    "pop3": ProbeKind(pop3.probe, pop3.timeout, pop3.REASONS),
    "roundtrip": ProbeKind(roundtrip.probe, roundtrip.timeout, roundtrip.REASONS),
    "inbound": ProbeKind(inbound.probe, inbound.timeout, inbound.REASONS),
}
