"""Terminal columns for text that may be Japanese: a wide character takes two columns, and
Japanese has no spaces to break lines at, so `textwrap` alone would misalign and overflow."""

from __future__ import annotations

import re
import textwrap
import unicodedata

# Characters that must not begin a line (Japanese line-breaking rules, kinsoku shori).
_NO_LINE_START = set("、。，．・：；？！ー）」』】〕〉》’”ぁぃぅぇぉっゃゅょゎァィゥェォッャュョヮ")
_UNIT = re.compile(r"\s+|[\x21-\x7e]+|.", re.DOTALL)


def columns(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def ljust(text: str, width: int) -> str:
    return text + " " * max(0, width - columns(text))


def _units(text: str) -> list[str]:
    """Break opportunities: an ASCII word stays whole; a wide character stands alone but
    takes the punctuation that may not start a line with it."""
    out: list[str] = []
    for unit in _UNIT.findall(text):
        if out and unit in _NO_LINE_START:
            out[-1] += unit
        else:
            out.append(unit)
    return out


def wrap(text: str, width: int, subsequent_indent: str = "") -> list[str]:
    """Lines of at most `width` columns (a long ASCII word may overflow, as textwrap's
    break_on_hyphens=False would keep a URL whole)."""
    if columns(text) == len(text):
        return textwrap.wrap(text, width=width, subsequent_indent=subsequent_indent)
    lines: list[str] = []
    line, used = "", 0
    for word in _units(text):
        unit = " " if word.isspace() else word
        size = columns(unit)
        if line and used + size > width:
            lines.append(line.rstrip())
            line, used = subsequent_indent, columns(subsequent_indent)
            if unit == " ":
                continue
        line += unit
        used += size
    if line.strip():
        lines.append(line.rstrip())
    return lines
