"""Human and machine renderings of probe results, printed one at a time as they finish.

The table's column widths come from the selection (probe, target, server are known before
any probe runs), so each row can be printed when its probe ends, not after the slowest.
"""

from __future__ import annotations

import json
import shutil
import textwrap
import time
from collections.abc import Sequence
from dataclasses import dataclass

from mailcanary.config import Config
from mailcanary.probes import PROBES
from mailcanary.result import ProbeResult

HEADINGS = ("PROBE", "TARGET", "SERVER", "RESULT", "PHASE", "TIME", "CERT")
RESULT_WIDTH = 24  # "rate_limited/rate_limited"; longer ones just push the row


def json_line(result: ProbeResult, *, transcript: bool = False) -> str:
    return json.dumps(result.as_json(transcript=transcript), ensure_ascii=False) + "\n"


def json_lines(results: Sequence[ProbeResult], *, transcript: bool = False) -> str:
    return "".join(json_line(r, transcript=transcript) for r in results)


def cert_days(result: ProbeResult, now: float | None = None) -> int | None:
    """Whole days until the server certificate expires (negative: expired), if TLS."""
    if result.tls is None or result.tls.not_after_timestamp is None:
        return None
    return int((result.tls.not_after_timestamp - (now or time.time())) // 86400)


def server_of(config: Config | None, result: ProbeResult) -> str:
    server = result.extra.get("server")
    if isinstance(server, str):
        return server
    if config is None:
        return "-"
    kind = PROBES.get(result.probe)
    try:
        return ",".join(kind.servers(config, result.target)) if kind else "-"
    except LookupError:
        return "-"


@dataclass
class Table:
    config: Config | None
    widths: tuple[int, ...]
    transcript: bool = False

    @classmethod
    def for_probes(cls, config: Config, probes: Sequence[tuple[str, str]], *,
                   transcript: bool = False) -> Table:
        servers = [",".join(PROBES[k].servers(config, t)) for k, t in probes]
        widths = (
            max([len(HEADINGS[0]), *(len(k) for k, _ in probes)]),
            max([len(HEADINGS[1]), *(len(t) for _, t in probes)]),
            max([len(HEADINGS[2]), *(len(s) for s in servers)]),
            RESULT_WIDTH, len("deliver"), len("000.000s"), len(HEADINGS[6]),
        )
        return cls(config, widths, transcript)

    def _line(self, cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(self.widths[j]) for j, c in enumerate(cells)).rstrip() + "\n"

    def header(self) -> str:
        return self._line(HEADINGS)

    def row(self, r: ProbeResult) -> str:
        outcome = "ok" if r.ok else f"{r.cls}/{r.reason}"
        if "placement" in r.extra and r.ok:
            outcome = f"ok ({r.extra['placement']})"
        days = cert_days(r)
        lines = [self._line((r.probe, r.target, server_of(self.config, r), outcome,
                             r.phase or "-", f"{r.duration_seconds:.3f}s",
                             "-" if days is None else f"{days}d"))]
        width = shutil.get_terminal_size((120, 24)).columns
        indent = " " * 4
        if not r.ok:
            notes = [("detail", r.detail), ("hint", r.hint)]
            suggestion = r.extra.get("suggestion")
            if isinstance(suggestion, dict):
                notes.append(("suggestion", f"port = {suggestion.get('port')}, "
                                            f"security = \"{suggestion.get('security')}\""))
            for label, text in notes:
                wrapped = textwrap.wrap(
                    f"{label}: {text}", width=max(40, width - 4), subsequent_indent=indent + "  "
                )
                lines.extend(indent + w + "\n" if k == 0 else w + "\n"
                             for k, w in enumerate(wrapped))
        delivered = r.extra.get("delivery_seconds")
        if r.ok and isinstance(delivered, int | float):  # a canary or inbound mail: its time
            lines.append(f"{indent}delivered after {delivered:.2f} s\n")
        if self.transcript and r.transcript:
            lines.append(indent + "transcript:\n")
            lines.extend(indent + "  " + t + "\n" for t in r.transcript)
        return "".join(lines)

    def footer(self, results: Sequence[ProbeResult], missing: int = 0) -> str:
        ok = sum(r.ok for r in results)
        tail = f", {missing} not finished (interrupted)" if missing else ""
        return f"\n{ok} ok, {len(results) - ok} failed{tail}\n"


def table(results: Sequence[ProbeResult], *, transcript: bool = False,
          config: Config | None = None) -> str:
    """All results at once (tests and callers that already hold them)."""
    probes = [(r.probe, r.target) for r in results]
    t = (Table.for_probes(config, probes, transcript=transcript) if config is not None
         else Table(None, (8, 16, 21, RESULT_WIDTH, 7, 8, 4), transcript))
    return t.header() + "".join(t.row(r) for r in results) + t.footer(results)
