"""The wire side of our IMAP client: aioimaplib's protocol, watched and transcribed.

It records a redacted transcript, takes the greeting synchronously (aioimaplib would wait
for a CAPABILITY reply a closing server never sends), turns a parser failure into a
`ProtocolViolation` and reports a hang-up as a future every wait can race.

It also hardens aioimaplib 2.0.3 against hostile servers: a line, a literal and everything
between two tagged replies are bounded (so no server can grow the process), tags and status
words are matched case-insensitively, a mismatched tag raises a text without the pending
command's arguments (aioimaplib's would carry LOGIN's password), only a leading ``"* "`` is
stripped, a tagged line ending in ``{N}`` does not start a literal, and lines are parsed in
a loop rather than one recursion per line.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from aioimaplib import aioimaplib as imap_impl

from mailcanary.diagnosis import ConnectionClosed, ProtocolViolation
from mailcanary.result import ProbeContext

MAX_LINE = 4 << 20  # one line (a UID SEARCH of a large mailbox fits)
MAX_LITERAL = 16 << 20  # one {N} literal (a message header or body part)
MAX_RESPONSE = 16 << 20  # everything received between two tagged replies

_TAGGED = re.compile(rb"([A-Za-z0-9.]+) (OK|NO|BAD)(\b|$)", re.IGNORECASE)
_LITERAL = re.compile(rb"\{(\d+)\}$")


class ImapWire(imap_impl.IMAP4ClientProtocol):  # type: ignore[misc]  # untyped base
    """Records the transcript, takes the greeting synchronously and reports hang-ups."""

    def __init__(self, loop: asyncio.AbstractEventLoop, ctx: ProbeContext) -> None:
        super().__init__(loop, self._on_lost)
        self.ctx = ctx
        self.greeting: asyncio.Future[bytes] = loop.create_future()
        self.lost: asyncio.Future[BaseException] = loop.create_future()
        self.since_tagged = 0  # bytes received since the last tagged reply
        self.commands_sent = 0  # tagged commands, for "IMAP commands per canary"
        # Answers AUTHENTICATE's "+ challenge" lines (aioimaplib would leave them unanswered).
        self.sasl_responder: Callable[[bytes], str] | None = None
        # From STARTTLS's OK until the handshake: what the server sends is plaintext an
        # on-path attacker may have injected; it is dropped, never parsed as a reply.
        self.before_tls = False

    def _on_lost(self, exc: BaseException | None) -> None:
        if not self.lost.done():
            self.lost.set_result(
                ConnectionClosed(f"the server closed the connection ({exc})" if exc else
                                 "the server closed the connection")
            )

    def data_received(self, d: bytes) -> None:
        if self.before_tls:
            self._drop(len(d))
            return
        if self.ctx.transcript.enabled:  # the daemon keeps none: no decode per chunk
            self.ctx.transcript.note("S", d.decode("utf-8", "replace").rstrip("\r\n"))
        self.since_tagged += len(d)
        try:
            super().data_received(d)
        except ProtocolViolation as exc:
            self._give_up(exc)
            return
        except Exception as exc:  # aioimaplib's parser gave up: that is the server's odd reply
            self._give_up(ProtocolViolation(f"unparseable reply {d[:200]!r}: {exc}"))
            return
        if len(self.incomplete_line) > MAX_LINE:
            self._give_up(ProtocolViolation(
                f"the server sent a line longer than {MAX_LINE} bytes: "
                f"{bytes(self.incomplete_line[:200])!r}..."))
        elif self.since_tagged > MAX_RESPONSE:
            self._give_up(ProtocolViolation(
                f"the server sent more than {MAX_RESPONSE} bytes without completing the "
                f"command; last: {d[-200:]!r}"))

    def _drop(self, size: int) -> None:
        self.ctx.transcript.note("*", f"dropped {size} bytes sent in plaintext after STARTTLS")

    def tls_started(self, transport: asyncio.Transport) -> None:
        """The upgrade is done: replies are read again, through TLS."""
        self.transport = transport
        self.before_tls = False
        self.incomplete_line = b""

    def _give_up(self, exc: ProtocolViolation) -> None:
        self.incomplete_line = b""
        if not self.lost.done():
            self.lost.set_result(exc)
        if self.transport is not None:
            self.transport.abort()

    def _handle_responses(
        self, data: bytes, line_handler: Callable[[bytes, Any], Any], current_cmd: Any = None
    ) -> None:
        """aioimaplib's parser as a loop, with bounded literals that only an untagged or a
        continuation line can start."""
        while True:
            if not data:
                if self.pending_sync_command is not None:
                    self.pending_sync_command.flush()
                if current_cmd is not None and current_cmd.wait_data():
                    raise imap_impl.IncompleteRead(current_cmd)
                return
            if current_cmd is not None and current_cmd.wait_literal_data():
                data = current_cmd.append_literal_data(data)
                if current_cmd.wait_literal_data():
                    raise imap_impl.IncompleteRead(current_cmd)
            line, separator, data = data.partition(b"\r\n")
            if not separator:
                raise imap_impl.IncompleteRead(current_cmd, line)
            cmd = line_handler(line, current_cmd)
            if self.before_tls:  # STARTTLS's OK: the rest of this chunk is not to be trusted
                self.incomplete_line = b""
                if data:
                    self._drop(len(data))
                return
            literal = _LITERAL.search(line) if line.endswith(b"}") else None
            if literal is not None and not _TAGGED.match(line):
                size = int(literal.group(1))
                if size > MAX_LITERAL:
                    raise ProtocolViolation(f"the server announced a literal of {size} bytes")
                if cmd is None:
                    cmd = imap_impl.Command("NIL", "unused", loop=self.loop)
                cmd.begin_literal_data(size)
                current_cmd = cmd
            else:
                current_cmd = cmd if cmd is not None and cmd.wait_data() else None

    def _response_done(self, line: bytes) -> None:
        """A tagged reply: matched case-insensitively; a stray tag is the server's error,
        reported without the pending command (whose arguments may hold a password)."""
        self.since_tagged = 0
        tag_bytes, _, response = line.partition(b" ")
        tag = tag_bytes.decode("ascii", "replace").upper()
        pending: Any = getattr(self, "pending_sync_command")  # noqa: B009  # untyped base
        if pending is not None:
            if str(pending.tag).upper() != tag:
                raise ProtocolViolation(
                    f"the server answered with tag {tag[:40]!r} while {pending.name} "
                    f"(tag {pending.tag}) was pending: {response[:200]!r}")
            command, self.pending_sync_command = pending, None
        else:
            found = [c for c in self.pending_async_commands.values()
                     if c is not None and str(c.tag).upper() == tag]
            if not found:
                raise ProtocolViolation(
                    f"the server answered with tag {tag[:40]!r}, which no command carries: "
                    f"{response[:200]!r}")
            command = found[0]
            self.pending_async_commands.pop(command.untagged_resp_name)
        result, _, text = response.partition(b" ")
        if command.name == "STARTTLS" and result.upper() == b"OK":
            self.before_tls = True
        command.close(text, result=result.decode("ascii", "replace").upper())

    def _untagged_response(self, line: bytes) -> Any:
        """aioimaplib's, except that only the leading "* " is removed (not every one)."""
        line = line[2:] if line.startswith(b"* ") else line[1:]
        if self.pending_sync_command is not None:
            self.pending_sync_command.append_to_resp(line)
            return self.pending_sync_command
        match = imap_impl.message_data_re.match(line)
        if match:
            name, text = match.group(1), line
        else:
            name, _, text = line.partition(b" ")
        command = self.pending_async_commands.get(name.decode("ascii", "replace").upper())
        if command is not None:
            command.append_to_resp(text)
            return command
        command = self.pending_async_commands.get("NOOP")
        if command is not None:
            command.append_to_resp(line)
        return command

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
        if line and line[:1] not in (b"*", b"+") and _TAGGED.match(line):
            self._response_done(line)
            return None
        return super()._handle_line(line, current_cmd)


    def use_greeting_capabilities(self, greeting: str) -> bool:
        """Take a ``* OK [CAPABILITY ...]`` greeting's list (with IMAP4rev1): no
        CAPABILITY command needed (RFC 3501 7.1)."""
        ok = greeting.upper().startswith("* OK")
        caps = capabilities_in([greeting.encode()]) if ok else None
        if not caps or not any(c.upper() in ("IMAP4REV1", "IMAP4REV2") for c in caps):
            return False
        self.capabilities = caps
        return True

    # ------------------------------------------------------------------ the adapter
    # Everything imap.py needs from aioimaplib, by name: no other module touches its
    # internals, and tests/protocols/test_imapwire_pins.py pins what these rely on.

    @property
    def capability_set(self) -> set[str]:
        return {str(c).upper() for c in self.capabilities}

    def set_capabilities(self, caps: set[str]) -> None:
        self.capabilities = caps

    @property
    def greeting_refused(self) -> bool:
        """The greeting was a BYE or no IMAP greeting at all."""
        return bool(str(getattr(self, "state")) == imap_impl.LOGOUT)  # noqa: B009

    @property
    def preauthenticated(self) -> bool:
        return bool(str(getattr(self, "state")) == imap_impl.AUTH)  # noqa: B009

    def mark_authenticated(self) -> None:
        self.state = imap_impl.AUTH

    def mark_selected(self) -> None:
        self.state = imap_impl.SELECTED

    def run(self, name: str, *args: str, prefix: str | None = None,
            untagged: str | None = None, fetch: bool = False) -> Awaitable[Any]:
        """One tagged command; the awaitable gives aioimaplib's Response (.result, .lines)."""
        tag = self.new_tag()
        if fetch:
            cmd = imap_impl.FetchCommand(tag, *args, prefix=prefix, loop=self.loop)
        else:
            cmd = imap_impl.Command(name, tag, *args, prefix=prefix,
                                    untagged_resp_name=untagged, loop=self.loop)
        result: Awaitable[Any] = self.execute(cmd)
        return result

    def run_login(self, username: str, password: str) -> Awaitable[Any]:
        result: Awaitable[Any] = self.login(username, password)
        return result

    def run_logout(self) -> Awaitable[Any]:
        result: Awaitable[Any] = self.logout()
        return result

    def idle_begin(self) -> tuple[asyncio.Future[Any], asyncio.Future[Any]]:
        """(IDLE's tagged reply, the server's "+ idling"), stale pushes forgotten."""
        while not self.idle_queue.empty():
            self.idle_queue.get_nowait()
        return asyncio.ensure_future(self.idle()), asyncio.ensure_future(
            self.wait_for_idle_response())

    async def idle_pushed(self) -> list[Any]:
        lines: list[Any] = await self.idle_queue.get()
        return lines

    def idle_end(self) -> None:
        self.idle_done()

    def cancel_tasks(self) -> None:
        for task in list(self.tasks):
            task.cancel()


WireError = imap_impl.AioImapException
quoted = imap_impl.quoted


def capabilities_in(lines: list[Any]) -> set[str] | None:
    """The capability list a reply carries (tagged OK's [CAPABILITY ...] or an untagged
    CAPABILITY line, as Dovecot sends after login), or None when it carries none."""
    for line in lines:
        text = bytes(line).decode("utf-8", "replace")
        upper = text.upper()
        if "[CAPABILITY " in upper:
            return set(text[upper.index("[CAPABILITY ") + 12:].split("]")[0].split())
        if upper.startswith(("CAPABILITY ", "* CAPABILITY ")):
            return set(text.split()[1:] if upper.startswith("C") else text.split()[2:])
    return None


def capability_words(lines: Iterable[Any]) -> set[str]:
    """The capabilities of untagged CAPABILITY lines."""
    caps: set[str] = set()
    for line in lines:
        words = bytes(line).decode("utf-8", "replace").split()
        if words and words[0].upper() == "CAPABILITY":  # aioimaplib may keep the keyword
            words = words[1:]
        caps.update(words)
    return caps
