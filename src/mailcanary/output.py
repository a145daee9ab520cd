"""Human and machine renderings of probe results, printed one at a time as they finish.

The table's column widths come from the selection (probe, target, server are known before
any probe runs), so each row can be printed when its probe ends, not after the slowest.
Both speak the reader's language (`tr`): JSON keeps the contract's keys and codes and
translates only the sentences for people (`hint`, the spam explanation's `hint`); the table
translates its headings and words and counts a wide character as two columns.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from mailcanary.config import Config
from mailcanary.i18n import Translator, translator
from mailcanary.i18n.width import columns, ljust, wrap
from mailcanary.probes import PROBES
from mailcanary.result import ProbeResult

HEADINGS = ("PROBE", "TARGET", "SERVER", "RESULT", "PHASE", "TIME", "CERT")
RESULT_WIDTH = 24  # "rate_limited/rate_limited"; longer ones just push the row
ENGLISH = translator("en")


def as_json(r: ProbeResult, tr: Translator = ENGLISH, *, transcript: bool = False) -> Any:
    """The contract's object with its sentences in `tr`'s language (codes untouched)."""
    out = r.as_json(transcript=transcript)
    out["hint"] = tr.text(r.hint)
    spam = out.get("spam")
    if isinstance(spam, dict) and isinstance(spam.get("hint"), str):
        out["spam"] = {**spam, "hint": tr.text(spam["hint"])}
    return out


def json_line(result: ProbeResult, *, transcript: bool = False, tr: Translator = ENGLISH) -> str:
    return json.dumps(as_json(result, tr, transcript=transcript), ensure_ascii=False) + "\n"


def json_lines(
    results: Sequence[ProbeResult], *, transcript: bool = False, tr: Translator = ENGLISH
) -> str:
    return "".join(json_line(r, transcript=transcript, tr=tr) for r in results)


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


def headings(tr: Translator) -> tuple[str, ...]:
    return (tr("PROBE"), tr("TARGET"), tr("SERVER"), tr("RESULT"), tr("PHASE"), tr("TIME"),
            tr("CERT"))


@dataclass
class Table:
    config: Config | None
    widths: tuple[int, ...]
    transcript: bool = False
    tr: Translator = field(default=ENGLISH)

    @classmethod
    def for_probes(cls, config: Config, probes: Sequence[tuple[str, str]], *,
                   transcript: bool = False, tr: Translator = ENGLISH) -> Table:
        servers = [",".join(PROBES[k].servers(config, t)) for k, t in probes]
        head = [columns(h) for h in headings(tr)]
        widths = (
            max([head[0], *(columns(k) for k, _ in probes)]),
            max([head[1], *(columns(t) for _, t in probes)]),
            max([head[2], *(columns(s) for s in servers)]),
            max(head[3], RESULT_WIDTH), max(head[4], len("deliver")),
            max(head[5], len("000.000s")), max(head[6], columns(tr("{days}d", days=999))),
        )
        return cls(config, widths, transcript, tr)

    def _line(self, cells: Sequence[str]) -> str:
        return "  ".join(ljust(c, self.widths[j]) for j, c in enumerate(cells)).rstrip() + "\n"

    def header(self) -> str:
        return self._line(headings(self.tr))

    def _outcome(self, r: ProbeResult) -> str:
        if not r.ok:
            return f"{r.cls}/{r.reason}"  # codes: the same in every language, greppable
        if "placement" in r.extra:
            return self.tr("ok ({placement})", placement=str(r.extra["placement"]))
        return self.tr("ok")

    def _notes(self, r: ProbeResult) -> list[tuple[str, str]]:
        tr = self.tr
        notes = [(tr("detail"), r.detail), (tr("hint"), tr.text(r.hint))]
        suggestion = r.extra.get("suggestion")
        if isinstance(suggestion, dict):
            notes.append((tr("suggestion"), f"port = {suggestion.get('port')}, "
                                            f"security = \"{suggestion.get('security')}\""))
        return notes

    def row(self, r: ProbeResult) -> str:
        days = cert_days(r)
        lines = [self._line((r.probe, r.target, server_of(self.config, r), self._outcome(r),
                             r.phase or "-", f"{r.duration_seconds:.3f}s",
                             "-" if days is None else self.tr("{days}d", days=days)))]
        width = shutil.get_terminal_size((120, 24)).columns
        indent = " " * 4
        if not r.ok:
            for label, text in self._notes(r):
                wrapped = wrap(self.tr("{label}: {text}", label=label, text=text),
                               width=max(40, width - 4), subsequent_indent=indent + "  ")
                lines.extend(indent + w + "\n" if k == 0 else w + "\n"
                             for k, w in enumerate(wrapped))
        delivered = r.extra.get("delivery_seconds")
        if r.ok and isinstance(delivered, int | float):  # a canary or inbound mail: its time
            lines.append(indent + self.tr("delivered after {seconds} s",
                                          seconds=f"{delivered:.2f}") + "\n")
        if self.transcript and r.transcript:
            lines.append(indent + self.tr("transcript:") + "\n")
            lines.extend(indent + "  " + t + "\n" for t in r.transcript)
        return "".join(lines)

    def footer(self, results: Sequence[ProbeResult], missing: int = 0) -> str:
        ok, failed = sum(r.ok for r in results), len(results) - sum(r.ok for r in results)
        if missing:
            return "\n" + self.tr("{ok} ok, {failed} failed, {missing} not finished "
                                  "(interrupted)", ok=ok, failed=failed, missing=missing) + "\n"
        return "\n" + self.tr("{ok} ok, {failed} failed", ok=ok, failed=failed) + "\n"


def table(results: Sequence[ProbeResult], *, transcript: bool = False,
          config: Config | None = None, tr: Translator = ENGLISH) -> str:
    """All results at once (tests and callers that already hold them)."""
    probes = [(r.probe, r.target) for r in results]
    t = (Table.for_probes(config, probes, transcript=transcript, tr=tr) if config is not None
         else Table(None, (8, 16, 21, RESULT_WIDTH, 7, 8, 4), transcript, tr))
    return t.header() + "".join(t.row(r) for r in results) + t.footer(results)
