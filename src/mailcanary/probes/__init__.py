"""Every probe kind, in one registry: name -> its `ProbeKind` (probes/kind.py).

A prober only does the protocol work and raises on trouble; the runner owns timing,
the timeout, classification and the outcome log line (as blackbox_exporter does). Adding a
kind is one folder that builds its `ProbeKind` and one line here.
"""

from __future__ import annotations

from mailcanary.probes import imap, pop3, smtp
from mailcanary.probes.domain import kind as domain
from mailcanary.probes.inbound import kind as inbound
from mailcanary.probes.kind import ProbeKind
from mailcanary.probes.roundtrip import kind as roundtrip

PROBES: dict[str, ProbeKind] = {
    "imap": imap.KIND,
    "smtp": smtp.KIND,
    "pop3": pop3.KIND,
    "roundtrip": roundtrip.KIND,
    "inbound": inbound.KIND,
    "domain": domain.KIND,
}

__all__ = ["PROBES", "ProbeKind"]
