"""IMAP's modified UTF-7 (RFC 3501 section 5.1.3) for folder names such as ``迷惑メール``.

Servers without UTF8=ACCEPT name folders in this encoding on the wire: printable ASCII stays
as it is (``&`` becomes ``&-``), every other run of characters is UTF-16BE in base64 with
``,`` for ``/`` and no padding, between ``&`` and ``-``.
"""

from __future__ import annotations

import base64
import binascii


class MUtf7Error(ValueError):
    """A folder name that is not valid modified UTF-7."""


def _printable(ch: str) -> bool:
    return 0x20 <= ord(ch) <= 0x7E


def encode(name: str) -> str:
    out: list[str] = []
    run: list[str] = []

    def flush() -> None:
        if run:
            raw = "".join(run).encode("utf-16-be")
            out.append("&" + base64.b64encode(raw).decode().rstrip("=").replace("/", ",") + "-")
            run.clear()

    for ch in name:
        if _printable(ch):
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            run.append(ch)
    flush()
    return "".join(out)


def decode(wire: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(wire):
        ch = wire[i]
        if not _printable(ch):
            raise MUtf7Error(f"character {ch!r} must be encoded in {wire!r}")
        if ch != "&":
            out.append(ch)
            i += 1
            continue
        end = wire.find("-", i + 1)
        if end < 0:
            raise MUtf7Error(f"unterminated '&' shift in {wire!r}")
        chunk = wire[i + 1:end]
        if not chunk:
            out.append("&")
        else:
            b64 = chunk.replace(",", "/")
            b64 += "=" * (-len(b64) % 4)
            try:
                raw = base64.b64decode(b64, validate=True)
                text = raw.decode("utf-16-be")
            except (binascii.Error, UnicodeDecodeError) as exc:
                raise MUtf7Error(f"bad base64 run {chunk!r} in {wire!r}: {exc}") from None
            if any(_printable(c) for c in text):
                raise MUtf7Error(f"printable ASCII encoded in {wire!r}")
            out.append(text)
        i = end + 1
    return "".join(out)
