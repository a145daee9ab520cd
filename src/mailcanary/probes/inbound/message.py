"""A message as the regexes see it: decoded From, Subject and every text part's words.

Apps send HTML-only mail, quoted-printable or base64 bodies, RFC 2047 encoded subjects and
Japanese charsets (ISO-2022-JP, Shift_JIS); a regex written against what the user reads
must match all of them, so everything is decoded to str first and HTML reduced to its text.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from email.header import decode_header
from email.message import Message
from email.parser import BytesParser

# Charsets whose Python codec is stricter than what mailers actually send.
_WIDER = {"shift_jis": "cp932", "shift-jis": "cp932", "sjis": "cp932",
          "iso-2022-jp": "iso2022_jp_ext", "euc-jp": "euc_jis_2004"}
_SKIP_HTML = re.compile(r"<(script|style|head)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]*>")
_BREAK = re.compile(r"<\s*(br|/p|/div|/tr|/li|/h\d)\b[^>]*>", re.IGNORECASE)


@dataclass(frozen=True)
class Readable:
    """The parts a match looks at, as the user would read them."""

    from_: str
    subject: str
    body: str

    def field(self, key: str) -> str:
        return self.from_ if key == "from" else getattr(self, key)


def html_text(markup: str) -> str:
    text = _SKIP_HTML.sub(" ", markup)
    text = _BREAK.sub("\n", text)
    # A non-breaking space reads as a space: regexes are written against what people read.
    return html.unescape(_TAG.sub(" ", text)).replace("\xa0", " ")


def _decode(raw: bytes, charset: str | None) -> str:
    charset = (charset or "us-ascii").lower()
    for name in (_WIDER.get(charset), charset, "utf-8"):
        if not name:
            continue
        try:
            return raw.decode(name)
        except (LookupError, UnicodeDecodeError):
            continue
    return raw.decode("utf-8", "replace")


def _header(msg: Message, name: str) -> str:
    """Every `name` header with its RFC 2047 encoded words decoded (wider codecs, too)."""
    out = []
    for value in msg.get_all(name) or []:
        text = str(value)
        try:
            chunks = decode_header(text)
        except ValueError:  # a malformed encoded word: keep the text as it came
            chunks = [(text, None)]
        for chunk, charset in chunks:
            out.append(_decode(chunk, charset) if isinstance(chunk, bytes) else chunk)
    return " ".join("".join(out).split())


def _part_text(part: Message) -> str:
    payload = part.get_payload(decode=True)
    return _decode(payload if isinstance(payload, bytes) else b"", part.get_content_charset())


def readable(raw: bytes) -> Readable:
    msg = BytesParser().parsebytes(raw)  # compat32: raw header text, decoded here
    bodies = []
    for part in msg.walk():
        if part.get_content_maintype() != "text" or part.get_content_disposition() == "attachment":
            continue
        text = _part_text(part)
        bodies.append(html_text(text) if part.get_content_subtype() == "html" else text)
    return Readable(_header(msg, "From"), _header(msg, "Subject"), "\n".join(bodies))


def matches(message: Readable, patterns: dict[str, re.Pattern[str]]) -> bool:
    """Every given regex finds something in its field."""
    return all(pattern.search(message.field(key)) for key, pattern in patterns.items())
