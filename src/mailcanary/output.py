"""Human and machine renderings of probe results."""

from __future__ import annotations

import json
import shutil
import textwrap
from collections.abc import Sequence

from mailcanary.result import ProbeResult


def json_lines(results: Sequence[ProbeResult], *, transcript: bool = False) -> str:
    return "".join(
        json.dumps(r.as_json(transcript=transcript), ensure_ascii=False) + "\n" for r in results
    )


def table(results: Sequence[ProbeResult], *, transcript: bool = False) -> str:
    width = shutil.get_terminal_size((120, 24)).columns
    rows = [("PROBE", "TARGET", "RESULT", "PHASE", "TIME")]
    for r in results:
        outcome = "ok" if r.ok else f"{r.cls}/{r.reason}"
        if "placement" in r.extra and r.ok:
            outcome = f"ok ({r.extra['placement']})"
        rows.append((r.probe, r.target, outcome, r.phase or "-", f"{r.duration_seconds:.3f}s"))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = []
    for i, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(widths[j]) for j, cell in enumerate(row)).rstrip())
        if i == 0:
            continue
        r = results[i - 1]
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
                lines.extend(indent + w if k == 0 else w for k, w in enumerate(wrapped))
        if transcript and r.transcript:
            lines.append(indent + "transcript:")
            lines.extend(indent + "  " + t for t in r.transcript)
    ok = sum(r.ok for r in results)
    lines.append("")
    lines.append(f"{ok} ok, {len(results) - ok} failed")
    return "\n".join(lines) + "\n"
