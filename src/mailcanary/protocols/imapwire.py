"""The wire side of our IMAP client: aioimaplib's protocol, watched and transcribed.

It records a redacted transcript, takes the greeting synchronously (aioimaplib would wait
for a CAPABILITY reply a closing server never sends), turns a parser failure into a
`ProtocolViolation` and reports a hang-up as a future every wait can race.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from aioimaplib import aioimaplib as imap_impl

from mailcanary.diagnosis import ConnectionClosed, ProtocolViolation
from mailcanary.result import ProbeContext


class ImapWire(imap_impl.IMAP4ClientProtocol):  # type: ignore[misc]  # untyped base
    """Records the transcript, takes the greeting synchronously and reports hang-ups."""

    def __init__(self, loop: asyncio.AbstractEventLoop, ctx: ProbeContext) -> None:
        super().__init__(loop, self._on_lost)
        self.ctx = ctx
        self.greeting: asyncio.Future[bytes] = loop.create_future()
        self.lost: asyncio.Future[BaseException] = loop.create_future()
        self.commands_sent = 0  # tagged commands, for "IMAP commands per canary"
        # Answers AUTHENTICATE's "+ challenge" lines (aioimaplib would leave them unanswered).
        self.sasl_responder: Callable[[bytes], str] | None = None

    def _on_lost(self, exc: BaseException | None) -> None:
        if not self.lost.done():
            self.lost.set_result(
                ConnectionClosed(f"the server closed the connection ({exc})" if exc else
                                 "the server closed the connection")
            )

    def data_received(self, d: bytes) -> None:
        self.ctx.transcript.note("S", d.decode("utf-8", "replace").rstrip("\r\n"))
        try:
            super().data_received(d)
        except Exception as exc:  # aioimaplib's parser gave up: that is the server's odd reply
            if not self.lost.done():
                self.lost.set_result(
                    ProtocolViolation(f"unparseable reply {d[:200]!r}: {exc}")
                )
            if self.transport is not None:
                self.transport.abort()

    def send(self, line: str, scrub: str | None = None) -> None:
        # Not super().send(): aioimaplib logs the raw line at debug level, and its scrub
        # covers LOGIN's password but not an AUTHENTICATE blob. Our transcript is redacted.
        self.ctx.transcript.note("C", line)
        if line != "DONE":
            self.commands_sent += 1
        assert self.transport is not None
        self.transport.write(line.encode("utf-8") + b"\r\n")

    def _continuation(self, line: bytes) -> None:
        pending = self.pending_sync_command
        if self.sasl_responder is not None and pending is not None and (
            pending.name == "AUTHENTICATE"
        ):
            answer = self.sasl_responder(line[1:].strip())
            self.ctx.transcript.note("C", answer)
            self.transport.write(answer.encode("ascii") + b"\r\n")
            return
        super()._continuation(line)

    def _handle_line(self, line: bytes, current_cmd: Any) -> Any:
        state = str(getattr(self, "state"))  # noqa: B009  # untyped base attribute
        if state == imap_impl.CONNECTED and line:
            upper = line.upper()
            if upper.startswith(b"* PREAUTH"):
                self.state = imap_impl.AUTH
            elif upper.startswith(b"* OK"):
                self.state = imap_impl.NONAUTH
            else:
                self.state = imap_impl.LOGOUT
            if not self.greeting.done():
                self.greeting.set_result(line)
            return None
        return super()._handle_line(line, current_cmd)
