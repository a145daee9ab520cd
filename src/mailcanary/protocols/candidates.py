"""Does a port speak IMAP, SMTP or POP3 with this security? Without ever logging in.

The settings doctor asks this of each candidate setting. A candidate works when it greets as
the protocol and, for ``tls``, completes a TLS handshake verified against the account's trust
anchors and host name; for ``starttls``, the plaintext greeting, the capability list offering
STARTTLS/STLS, the server's go-ahead and then the verified handshake. Nothing else is sent:
no user name, no password, no AUTH. Every read is bounded in length and count.
"""

from __future__ import annotations

import asyncio
import ssl

from mailcanary.protocols.smtp import helo_name

_MAX_LINE = 8192
_MAX_LINES = 64
GREETINGS: dict[str, tuple[str, ...]] = {
    "imap": ("* OK", "* PREAUTH"),
    "smtp": ("220",),
    "pop3": ("+OK",),
}


async def _line(reader: asyncio.StreamReader) -> str:
    raw = await reader.readuntil(b"\n")  # bounded by the reader's limit
    return raw.decode("utf-8", "replace").rstrip("\r\n")


async def _smtp_reply(reader: asyncio.StreamReader) -> list[str]:
    lines = []
    for _ in range(_MAX_LINES):
        line = await _line(reader)
        lines.append(line)
        if len(line) < 4 or line[3] != "-":
            return lines
    return lines


async def _greeting(protocol: str, reader: asyncio.StreamReader) -> str | None:
    """The greeting's text when it is this protocol's, else None."""
    if protocol == "smtp":
        lines = await _smtp_reply(reader)
        return "\n".join(lines) if lines[-1].startswith("220") else None
    line = await _line(reader)
    return line if line.startswith(GREETINGS[protocol]) else None


async def _starttls_offered(
    protocol: str, greeting: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> bool:
    """Ask for the capabilities (CAPABILITY, EHLO, CAPA) and look for STARTTLS / STLS."""
    if protocol == "imap":
        if "STARTTLS" in greeting.upper():
            return True
        writer.write(b"c1 CAPABILITY\r\n")
        offered = False
        for _ in range(_MAX_LINES):
            line = await _line(reader)
            if line.startswith("c1 "):
                return offered
            offered = offered or (line.startswith("* CAPABILITY") and "STARTTLS" in line.upper())
        return False
    if protocol == "smtp":
        writer.write(f"EHLO {helo_name()}\r\n".encode())
        return any(ln[4:].strip().upper() == "STARTTLS" for ln in await _smtp_reply(reader))
    writer.write(b"CAPA\r\n")
    if not (await _line(reader)).startswith("+OK"):
        return False
    offered = False
    for _ in range(_MAX_LINES):
        line = await _line(reader)
        if line == ".":
            return offered
        offered = offered or line.strip().upper() == "STLS"
    return False


async def _go_ahead(protocol: str, reader: asyncio.StreamReader,
                    writer: asyncio.StreamWriter) -> bool:
    command, ok = {"imap": (b"c2 STARTTLS\r\n", "c2 OK"), "smtp": (b"STARTTLS\r\n", "220"),
                   "pop3": (b"STLS\r\n", "+OK")}[protocol]
    writer.write(command)
    for _ in range(_MAX_LINES):
        line = await _line(reader)
        if not line.startswith("* "):  # IMAP may send untagged lines first
            return line.upper().startswith(ok.upper())
    return False


async def speaks(
    protocol: str, host: str, port: int, security: str, tls: ssl.SSLContext
) -> bool:
    """True when host:port greets as `protocol` with `security` (tls or starttls) and the
    TLS handshake verifies. Raises OSError / ssl.SSLError / EOFError-like errors on trouble
    (the caller treats any of them as "does not work")."""
    implicit = security == "tls"
    reader, writer = await asyncio.open_connection(
        host, port, ssl=tls if implicit else None, server_hostname=host if implicit else None,
        limit=_MAX_LINE,
    )
    try:
        greeting = await _greeting(protocol, reader)
        if greeting is None:
            return False
        if implicit:
            return True
        if not await _starttls_offered(protocol, greeting, reader, writer):
            return False
        if not await _go_ahead(protocol, reader, writer):
            return False
        await writer.start_tls(tls, server_hostname=host)
        return True
    finally:
        writer.close()
