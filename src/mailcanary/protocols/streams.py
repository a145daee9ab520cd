"""What the SMTP and POP3 clients share: a line protocol on asyncio streams.

Both open the socket that `transport.open_socket` connected (phases dns and connect), wrap
it in TLS at once (implicit TLS, phase tls) or later in band (STARTTLS / STLS), read lines
that are bounded (a hostile server cannot grow memory), note every line in the redacted
transcript, and close without waiting, so a probe cut by its timeout ends at once.
"""

from __future__ import annotations

import asyncio

from mailcanary.diagnosis import ConnectionClosed, ProtocolViolation
from mailcanary.protocols.tls import TLSSource, context_of
from mailcanary.protocols.transport import connect, record_tls, start_tls
from mailcanary.result import ProbeContext

MAX_LINE = 8192  # bytes; far above any RFC line limit, far below a memory problem


def _stream() -> tuple[asyncio.StreamReader, asyncio.StreamReaderProtocol]:
    reader = asyncio.StreamReader(limit=MAX_LINE)
    return reader, asyncio.StreamReaderProtocol(reader)


class LineClient:
    def __init__(self, ctx: ProbeContext, host: str, port: int, tls: TLSSource | None):
        self.ctx = ctx
        self.host = host
        self.port = port
        self.tls = tls
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.encrypted = False
        self._plain_writer: asyncio.StreamWriter | None = None

    async def open(self, *, implicit_tls: bool) -> None:
        """Connect, and with `implicit_tls` complete the handshake (phase tls)."""
        reader, protocol = _stream()
        transport, _ = await connect(
            self.ctx, self.host, self.port, lambda: protocol, self.tls if implicit_tls else None
        )
        self._attach(transport, protocol, reader)
        if implicit_tls:
            self.encrypted = True
            record_tls(self.ctx, transport.get_extra_info("ssl_object"))

    async def upgrade(self) -> None:
        """The TLS handshake after the server agreed to STARTTLS / STLS (phase tls).

        Whatever the server sent in plaintext after its go-ahead stays in the old reader,
        which is dropped: an on-path attacker could otherwise inject a reply that we would
        read as if it came through TLS."""
        assert self.writer is not None and self.tls is not None
        reader, protocol = _stream()
        self.reader = None
        transport = await start_tls(self.ctx, self.writer.transport, protocol,
                                    context_of(self.tls), self.host)
        protocol.connection_made(transport)  # start_tls does not call it
        # Kept: a StreamWriter closes its transport when collected, and the plaintext
        # transport is the one the TLS transport runs on.
        self._plain_writer = self.writer
        self._attach(transport, protocol, reader)
        self.encrypted = True
        record_tls(self.ctx, transport.get_extra_info("ssl_object"))

    def _attach(self, transport: asyncio.Transport, protocol: asyncio.StreamReaderProtocol,
                reader: asyncio.StreamReader) -> None:
        self.reader = reader
        self.writer = asyncio.StreamWriter(transport, protocol, reader, asyncio.get_running_loop())

    async def readline(self) -> str:
        """One line without its CRLF, noted in the transcript by the caller's protocol."""
        assert self.reader is not None
        try:
            raw = await self.reader.readuntil(b"\n")
        except asyncio.IncompleteReadError as exc:
            if exc.partial:
                raise ProtocolViolation(
                    f"connection closed in the middle of a reply: {exc.partial[:200]!r}"
                ) from None
            raise ConnectionClosed("the server closed the connection") from None
        except asyncio.LimitOverrunError:
            raise ProtocolViolation(f"reply line longer than {MAX_LINE} bytes") from None
        if len(raw) > MAX_LINE:
            raise ProtocolViolation(f"reply line of {len(raw)} bytes")
        return raw.decode("utf-8", "replace").rstrip("\r\n")

    async def send(self, line: str, *, log_as: str | None = None) -> None:
        """One command line; `log_as` is what the transcript shows instead (secrets)."""
        assert self.writer is not None
        self.ctx.transcript.note("C", log_as if log_as is not None else line)
        self.writer.write(line.encode("utf-8") + b"\r\n")
        await self.writer.drain()

    def close(self) -> None:
        """Close without waiting, so a probe cut by its timeout ends at once."""
        if self.writer is not None:
            writer, self.writer = self.writer, None
            writer.close()
