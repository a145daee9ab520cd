"""A message as the regexes see it: decoded From, Subject and every text part's words.

Apps send HTML-only mail, quoted-printable or base64 bodies, RFC 2047 encoded subjects and
Japanese charsets (ISO-2022-JP, Shift_JIS); a regex written against what the user reads
must match all of them, so everything is decoded to str first and HTML reduced to its text.
Anyone can send mail to a watched mailbox, so every step is linear in the message's size
(mime.py, htmltext.py) and a message beyond the limits raises `Unparseable`.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from email.header import decode_header
from email.message import Message

from mailcanary.probes.inbound.htmltext import html_text
from mailcanary.probes.inbound.mime import HEADER_LIMIT, Unparseable, text_parts

__all__ = ["Readable", "Unparseable", "decode_text", "html_text", "matches", "readable"]

# Charsets whose Python codec is stricter than what mailers actually send.
_WIDER = {"shift_jis": "cp932", "shift-jis": "cp932", "sjis": "cp932",
          "iso-2022-jp": "iso2022_jp_ext", "euc-jp": "euc_jis_2004"}
# Python codecs that are no mail charset; punycode and idna decode in quadratic time.
_NOT_CHARSETS = frozenset({"punycode", "idna", "unicode_escape", "raw_unicode_escape",
                           "undefined", "mbcs", "oem"})


@dataclass(frozen=True)
class Readable:
    """The parts a match looks at, as the user would read them."""

    from_: str
    subject: str
    body: str

    def field(self, key: str) -> str:
        return self.from_ if key == "from" else getattr(self, key)


def _codec(name: str | None) -> str | None:
    if not name:
        return None
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError):
        return None
    if info.name in _NOT_CHARSETS or not getattr(info, "_is_text_encoding", True):
        return None
    return info.name


def _decode(raw: bytes, charset: str | None) -> str:
    charset = (charset or "us-ascii").lower()
    for name in (_WIDER.get(charset), charset, "utf-8"):
        codec = _codec(name)
        if codec is None:
            continue
        try:
            return raw.decode(codec)
        except UnicodeDecodeError:
            continue
    return raw.decode("utf-8", "replace")


def decode_text(raw: bytes, charset: str | None) -> str:
    """Bytes of a part in its declared charset, read as mailers really write them."""
    return _decode(raw, charset)


def _header(msg: Message, name: str) -> str:
    """Every `name` header with its RFC 2047 encoded words decoded (wider codecs, too).
    Each value is cut to HEADER_LIMIT characters: nobody reads more of a subject."""
    out = []
    for value in msg.get_all(name) or []:
        text = str(value)[:HEADER_LIMIT]
        try:
            chunks = decode_header(text)
        except ValueError:  # a malformed encoded word: keep the text as it came
            chunks = [(text, None)]
        for chunk, charset in chunks:
            out.append(_decode(chunk, charset) if isinstance(chunk, bytes) else chunk)
    return " ".join("".join(out).split())


def readable(raw: bytes) -> Readable:
    """Raises Unparseable for a message beyond the MIME limits (mime.py)."""
    top, parts = text_parts(raw)
    bodies = []
    for part in parts:
        text = _decode(part.payload, part.charset)
        bodies.append(html_text(text) if part.subtype == "html" else text)
    return Readable(_header(top, "From"), _header(top, "Subject"), "\n".join(bodies))


def matches(message: Readable, patterns: dict[str, re.Pattern[str]]) -> bool:
    """Every given regex finds something in its field."""
    return all(pattern.search(message.field(key)) for key, pattern in patterns.items())
