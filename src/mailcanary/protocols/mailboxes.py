"""LIST replies as folders, and which of them is the Junk folder.

RFC 6154 SPECIAL-USE says it (``\\Junk``); servers without it get the names people and
providers actually use, compared on the decoded (modified UTF-7) last path component.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from mailcanary.protocols import mutf7

JUNK_NAMES = ("junk", "spam", "junk e-mail", "junk email", "bulk mail", "迷惑メール")
GMAIL_SPAM = "[gmail]/spam"
ALL_MAIL_FLAGS = ("\\all", "\\archive")


@dataclass(frozen=True)
class Folder:
    name: str  # decoded, for people
    wire: str  # as the server spells it (modified UTF-7), for commands
    flags: frozenset[str]  # lower-case, e.g. "\\junk", "\\noselect"
    delimiter: str | None

    @property
    def selectable(self) -> bool:
        return not ({"\\noselect", "\\nonexistent"} & self.flags)

    @property
    def leaf(self) -> str:
        if self.delimiter and self.delimiter in self.name:
            return self.name.rsplit(self.delimiter, 1)[1]
        return self.name

    @property
    def is_inbox(self) -> bool:
        return self.name.upper() == "INBOX"


_QUOTED = re.compile(rb'"((?:[^"\\]|\\.)*)"')


def _take(data: bytes) -> tuple[bytes | None, bytes]:
    """One quoted string, NIL or atom from the front of `data`."""
    data = data.lstrip()
    if data.startswith(b'"'):
        m = _QUOTED.match(data)
        if m is None:
            raise ValueError(f"unterminated quoted string: {data[:80]!r}")
        return re.sub(rb"\\(.)", rb"\1", m.group(1)), data[m.end():]
    word, _, rest = data.partition(b" ")
    return (None if word.upper() == b"NIL" else word), rest


def parse_list(lines: Sequence[bytes | bytearray]) -> list[Folder]:
    """Folders from the untagged LIST lines aioimaplib collected (``* LIST`` stripped).

    A name sent as a literal (``{12}``) arrives as the next element.
    """
    folders = []
    items = [bytes(x) for x in lines]
    i = 0
    while i < len(items):
        line = items[i].strip()
        i += 1
        if line.upper().startswith(b"LIST "):
            line = line[5:]
        if not line.startswith(b"("):
            continue
        close = line.find(b")")
        flags = frozenset(f.decode("ascii", "replace").lower() for f in line[1:close].split())
        delimiter, rest = _take(line[close + 1:])
        rest = rest.strip()
        literal = re.fullmatch(rb"\{(\d+)\+?\}", rest)
        if literal and i < len(items):
            raw = items[i][: int(literal.group(1))]
            i += 1
        else:
            name, _ = _take(rest)
            raw = name or b""
        wire = raw.decode("utf-8", "replace")
        try:
            name_text = mutf7.decode(wire)
        except mutf7.MUtf7Error:
            name_text = wire  # a UTF8=ACCEPT server, or a broken name: keep what it said
        folders.append(
            Folder(name_text, wire, flags, delimiter.decode() if delimiter is not None else None)
        )
    return folders


def junk_folders(folders: Sequence[Folder], *, use_special_use: bool = True) -> list[Folder]:
    """The \\Junk folder(s); without one, the folders with a usual junk name."""
    usable = [f for f in folders if f.selectable and not f.is_inbox]
    if use_special_use:
        flagged = [f for f in usable if "\\junk" in f.flags]
        if flagged:
            return flagged
    by_name = []
    for folder in usable:
        parent = folder.name[: -len(folder.leaf) - 1] if folder.leaf != folder.name else ""
        if folder.name.lower() == GMAIL_SPAM or (
            folder.leaf.lower() in JUNK_NAMES and parent.upper() in ("", "INBOX")
        ):
            by_name.append(folder)
    return by_name
