"""aioimaplib on a connection we open ourselves, with STARTTLS and watchful waiting.

aioimaplib resolves, connects and handshakes in one call and has no STARTTLS. We give its
protocol a socket that `transport.open_socket` connected (phases dns and connect), wrap
it in TLS with asyncio (phase tls), and upgrade plaintext sessions with `loop.start_tls`.
Every wait races the connection-lost signal: aioimaplib alone would wait forever for a
server that hangs up after its greeting.
"""

from __future__ import annotations

import asyncio
import base64
import inspect
import re
import ssl
from collections.abc import Awaitable
from datetime import datetime
from typing import Any, TypeVar

from mailcanary.config import AccountConfig, ImapEndpoint
from mailcanary.credentials import Secret
from mailcanary.diagnosis import (
    ConnectionClosed,
    ImapReplyError,
    MechanismUnsupported,
    ProtocolViolation,
    StartTLSUnavailable,
    TLSRequired,
)
from mailcanary.protocols import mutf7, sasl
from mailcanary.protocols.imapwire import (
    ImapWire,
    WireError,
    capabilities_in,
    capability_words,
    quoted,
)
from mailcanary.protocols.mailboxes import Folder, parse_list
from mailcanary.protocols.transport import connect, record_tls, start_tls, tls_context
from mailcanary.result import ProbeContext

T = TypeVar("T")

_INTERNALDATE = re.compile(rb'INTERNALDATE "([^"]+)"')
_STATUS_ITEMS = re.compile(rb"\(([^()]*)\)\s*$")


def _text(response: Any) -> str:
    """'NO [CODE] words' from an aioimaplib Response (tagged line last)."""
    lines = [ln.decode("utf-8", "replace") if isinstance(ln, bytes | bytearray) else str(ln)
             for ln in response.lines]
    tagged = lines[-1] if lines else ""
    alerts = [ln for ln in lines[:-1] if "[ALERT]" in ln.upper() or "[WEBALERT" in ln.upper()]
    return " ".join([str(response.result), tagged, *alerts]).strip()


class ImapClient:
    def __init__(self, ctx: ProbeContext, endpoint: ImapEndpoint, tls: ssl.SSLContext | None):
        self.ctx = ctx
        self.endpoint = endpoint
        self.host = endpoint.host
        self.port = endpoint.effective_port
        self.tls = tls
        self.protocol: ImapWire | None = None
        self.transport: asyncio.BaseTransport | None = None
        self.encrypted = False
        self._idle: asyncio.Future[Any] | None = None

    @property
    def capabilities(self) -> set[str]:
        assert self.protocol is not None
        return self.protocol.capability_set

    async def guard(self, aw: Awaitable[T]) -> T:
        """Await `aw` unless the server hangs up (or garbles) first.

        No task and no `asyncio.wait` per command (they were a third of the event loop's
        callbacks in a login probe): the connection-lost signal cancels this task, and a
        cancellation that is ours alone (`uncancel`, as `asyncio.timeout` does it) becomes
        the error the connection ended with."""
        assert self.protocol is not None
        lost = self.protocol.lost
        if lost.done():
            if inspect.iscoroutine(aw):
                aw.close()  # never started: no "never awaited" warning
            raise lost.result()
        task = asyncio.current_task()
        assert task is not None
        cut = False

        def hang_up(_: asyncio.Future[BaseException]) -> None:
            nonlocal cut
            cut = True
            task.cancel()

        lost.add_done_callback(hang_up)
        try:
            result = await aw
        except asyncio.CancelledError:
            if cut and task.uncancel() == 0:
                raise lost.result() from None
            raise
        except WireError as exc:
            raise ProtocolViolation(str(getattr(exc, "reason", exc))) from None
        finally:
            lost.remove_done_callback(hang_up)
        if cut:  # `aw` swallowed our cancel and answered anyway: keep its answer
            task.uncancel()
        return result

    async def execute(self, name: str, *args: str) -> Any:
        assert self.protocol is not None
        return await self.guard(self.protocol.run(name, *args))

    async def connect(self) -> None:
        security = self.endpoint.security or "tls"
        loop = asyncio.get_running_loop()
        tls = self.tls if security == "tls" else None

        def made() -> ImapWire:  # once connected: a probe waiting for its slot holds none
            self.protocol = ImapWire(loop, self.ctx)
            return self.protocol

        self.transport, protocol = await connect(self.ctx, self.host, self.port, made, tls)
        if tls is not None:
            self.encrypted = True
            record_tls(self.ctx, self.transport.get_extra_info("ssl_object"))
        with self.ctx.phase("greeting"):
            greeting = (await self.guard(protocol.greeting)).decode("utf-8", "replace")
            if protocol.greeting_refused:
                if greeting.upper().startswith("* BYE"):
                    raise ImapReplyError("GREETING", greeting[2:])
                raise ProtocolViolation(f"not an IMAP greeting: {greeting[:200]!r}")
            await self.refresh_capabilities(greeting)
        if security == "starttls":
            await self.starttls()

    async def refresh_capabilities(self, greeting: str = "") -> None:
        assert self.protocol is not None
        if self.protocol.use_greeting_capabilities(greeting):  # RFC 3501 7.1: saves a RTT
            return
        response = await self.execute("CAPABILITY")
        if response.result != "OK":
            raise ImapReplyError("CAPABILITY", _text(response))
        caps = capability_words(response.lines[:-1])
        if not any(c.upper() in ("IMAP4REV1", "IMAP4REV2", "IMAP4") for c in caps):
            raise ProtocolViolation(f"CAPABILITY lists no IMAP4rev1: {' '.join(caps)[:200]}")
        self.protocol.set_capabilities(caps)

    async def starttls(self) -> None:
        assert self.protocol is not None and self.transport is not None
        assert self.tls is not None
        with self.ctx.phase("starttls"):
            if "STARTTLS" not in self.capabilities:
                raise StartTLSUnavailable(
                    "the server did not offer STARTTLS (CAPABILITY: "
                    f"{' '.join(sorted(self.capabilities))})"
                )
            response = await self.execute("STARTTLS")
            if response.result != "OK":
                raise ImapReplyError("STARTTLS", _text(response))
        new_transport = await start_tls(self.ctx, self.transport, self.protocol, self.tls,
                                        self.host)
        self.transport = new_transport
        self.protocol.tls_started(new_transport)
        self.encrypted = True
        record_tls(self.ctx, new_transport.get_extra_info("ssl_object"))
        with self.ctx.phase("starttls"):
            await self.refresh_capabilities()

    async def login(self, username: str, password: Secret) -> None:
        assert self.protocol is not None
        secret = password.reveal()
        blob = base64.b64encode(f"\0{username}\0{secret}".encode()).decode()
        self.ctx.redact.add(secret, quoted(secret), blob)
        caps = self.capabilities
        with self.ctx.phase("auth"):
            if self.protocol.preauthenticated:
                return  # PREAUTH greeting
            if "AUTH=PLAIN" in caps and "SASL-IR" in caps:
                response = await self.execute("AUTHENTICATE", "PLAIN", blob)
                command = "AUTHENTICATE"
            elif "LOGINDISABLED" not in caps:
                response = await self.guard(self.protocol.run_login(username, secret))
                command = "LOGIN"
            elif not self.encrypted:
                raise TLSRequired(
                    "the server advertises LOGINDISABLED: it accepts no password before TLS"
                )
            else:
                raise MechanismUnsupported(
                    "the server disables LOGIN and offers no AUTH=PLAIN with SASL-IR "
                    f"(CAPABILITY: {' '.join(sorted(caps))})"
                )
            if response.result != "OK":
                raise ImapReplyError(command, _text(response))
            self.protocol.mark_authenticated()
            await self._capabilities_after_auth(response)

    async def _capabilities_after_auth(self, response: Any) -> None:
        """Servers list more capabilities once logged in (UIDPLUS, SPECIAL-USE, MOVE): read
        them from the login reply, or ask again when the server did not send them there
        (the Exchange family), so a logged-in session never runs on the pre-login list."""
        assert self.protocol is not None
        caps = capabilities_in(response.lines)
        if caps is not None:
            self.protocol.set_capabilities(caps)
        else:
            await self.refresh_capabilities()

    async def authenticate_sasl(
        self, mechanism: str, initial: str, on_challenge: str = ""
    ) -> None:
        """AUTHENTICATE with XOAUTH2 or OAUTHBEARER; the caller has registered `initial` with
        the redactor. With SASL-IR the initial response rides on the command, otherwise it
        answers the server's empty "+". A later "+ <base64 JSON>" is the server's error
        status: it goes into the detail and is answered with `on_challenge` (empty line for
        XOAUTH2, "AQ==" for OAUTHBEARER) so that the server sends its final NO."""
        assert self.protocol is not None
        mech = mechanism.upper()
        server_said: list[str] = []
        sent_initial = "SASL-IR" in self.capabilities

        def respond(challenge: bytes) -> str:
            nonlocal sent_initial
            if not sent_initial and not challenge:
                sent_initial = True
                return initial
            server_said.append(sasl.decode_challenge(challenge.decode("ascii", "replace")))
            return on_challenge

        with self.ctx.phase("auth"):
            if f"AUTH={mech}" not in self.capabilities:
                raise MechanismUnsupported(
                    f"the server does not offer AUTH={mech} (it offers: "
                    + (" ".join(sorted(c for c in self.capabilities if c.startswith("AUTH=")))
                       or "no AUTH= mechanism") + ")"
                )
            args = (mech, initial) if sent_initial else (mech,)
            self.protocol.sasl_responder = respond
            try:
                response = await self.execute("AUTHENTICATE", *args)
            finally:
                self.protocol.sasl_responder = None
            if response.result != "OK":
                text = _text(response)
                if server_said:
                    text = f"{text} (server said: {'; '.join(server_said)})"
                raise ImapReplyError("AUTHENTICATE", text)
            self.protocol.mark_authenticated()
            await self._capabilities_after_auth(response)

    async def select(self, mailbox: str = "INBOX", *, readonly: bool = False) -> Any:
        assert self.protocol is not None
        name = "EXAMINE" if readonly else "SELECT"
        response = await self.guard(self.protocol.run(name, quoted(mailbox)))
        if response.result != "OK":
            raise ImapReplyError(name, _text(response))
        self.protocol.mark_selected()
        return response

    # ------------------------------------------------------------ mailbox commands

    @property
    def commands_sent(self) -> int:
        return self.protocol.commands_sent if self.protocol is not None else 0

    async def command(
        self,
        name: str,
        *args: str,
        uid: bool = False,
        fetch: bool = False,
        untagged: str | None = None,
    ) -> Any:
        """Run one command (guarded), raising ImapReplyError unless the server says OK."""
        assert self.protocol is not None
        prefix = "UID" if uid else None
        response = await self.guard(
            self.protocol.run(name, *args, prefix=prefix, untagged=untagged, fetch=fetch)
        )
        if response.result != "OK":
            label = f"UID {name}" if uid else name
            raise ImapReplyError(label, _text(response))
        return response

    async def noop(self) -> None:
        await self.command("NOOP")

    async def list_folders(self) -> list[Folder]:
        """Every folder, with RFC 6154 special-use flags when the server can return them."""
        if "LIST-EXTENDED" in self.capabilities and "SPECIAL-USE" in self.capabilities:
            response = await self.command("LIST", '""', '"*"', "RETURN", "(SPECIAL-USE)")
        else:
            response = await self.command("LIST", '""', '"*"')
        return parse_list(response.lines[:-1])

    async def status(self, folder: Folder | str, *items: str) -> dict[str, int]:
        wire = folder.wire if isinstance(folder, Folder) else mutf7.encode(folder)
        response = await self.command("STATUS", quoted(wire), f"({' '.join(items)})")
        for line in response.lines[:-1]:
            match = _STATUS_ITEMS.search(bytes(line))
            if match:
                words = match.group(1).decode("ascii", "replace").split()
                return {k.upper(): int(v) for k, v in zip(words[::2], words[1::2], strict=False)
                        if v.isdigit()}
        raise ProtocolViolation(f"STATUS gave no item list: {response.lines!r:.200}")

    async def select_folder(self, folder: Folder | str, *, readonly: bool = False) -> Any:
        wire = folder.wire if isinstance(folder, Folder) else mutf7.encode(folder)
        return await self.select(wire, readonly=readonly)

    async def uid_search(self, *criteria: str) -> list[int]:
        response = await self.command("SEARCH", *criteria, uid=True)
        uids: list[int] = []
        for line in response.lines[:-1]:
            words = bytes(line).split()
            if words and words[0].upper() == b"SEARCH":
                words = words[1:]
            uids += [int(w) for w in words if w.isdigit()]
        return sorted(set(uids))

    async def uid_fetch_header(self, uid: int) -> tuple[bytes, datetime | None]:
        """(the message's header, its INTERNALDATE) without setting \\Seen."""
        response = await self.command(
            "FETCH", str(uid), "(INTERNALDATE BODY.PEEK[HEADER])", uid=True, fetch=True
        )
        header = b""
        internal: datetime | None = None
        for line in response.lines[:-1]:
            if isinstance(line, bytearray):
                header = header or bytes(line)
            else:
                match = _INTERNALDATE.search(bytes(line))
                if match:
                    try:
                        internal = datetime.strptime(
                            match.group(1).decode(), "%d-%b-%Y %H:%M:%S %z"
                        )
                    except ValueError:
                        internal = None
        return header, internal

    async def uid_delete(self, uids: list[int]) -> bool:
        """Delete exactly these messages from the selected folder; True when expunged.

        With UIDPLUS, UID EXPUNGE removes only them. Without it a plain EXPUNGE would also
        remove every other message someone marked \\Deleted, so we expunge only when no
        other message is marked, and otherwise leave ours flagged (False).
        """
        if not uids:
            return True
        uid_set = ",".join(str(u) for u in uids)
        await self.command("STORE", uid_set, "+FLAGS.SILENT", "(\\Deleted)", uid=True,
                           untagged="FETCH")
        if "UIDPLUS" in self.capabilities:
            await self.command("EXPUNGE", uid_set, uid=True)
            return True
        flagged = await self.uid_search("DELETED")
        if set(flagged) - set(uids):
            self.ctx.transcript.note(
                "*", "no UIDPLUS and other messages are marked \\Deleted: not expunging"
            )
            return False
        await self.command("EXPUNGE")
        return True

    # ------------------------------------------------------------------ IDLE

    @property
    def supports_idle(self) -> bool:
        return "IDLE" in self.capabilities

    async def idle_start(self) -> None:
        """Send IDLE and wait for the server's continuation ("+ idling")."""
        assert self.protocol is not None
        protocol = self.protocol
        self._idle, ready = protocol.idle_begin()
        try:
            await self.guard(asyncio.wait({self._idle, ready}, return_when=asyncio.FIRST_COMPLETED))
        finally:
            ready.cancel()
        if self._idle.done():
            idle, self._idle = self._idle, None
            response = idle.result()
            raise ImapReplyError("IDLE", _text(response))

    async def idle_wait(self, seconds: float) -> list[bytes]:
        """Untagged lines the server pushed, or [] after `seconds` of quiet."""
        assert self.protocol is not None
        try:
            async with asyncio.timeout(seconds):
                lines = await self.guard(self.protocol.idle_pushed())
        except TimeoutError:
            return []
        return [bytes(x) for x in lines]

    async def idle_stop(self) -> None:
        """DONE, and wait for IDLE's tagged reply."""
        assert self.protocol is not None
        idle, self._idle = self._idle, None
        if idle is None:
            return
        self.protocol.idle_end()
        response = await self.guard(idle)
        if response.result != "OK":
            raise ImapReplyError("IDLE", _text(response))

    async def logout(self) -> None:
        """Polite LOGOUT; a server that hangs up first is fine."""
        if self.protocol is None:
            return
        try:
            async with asyncio.timeout(2.0):
                await self.guard(self.protocol.run_logout())
        except (OSError, TimeoutError, ProtocolViolation, ConnectionClosed):
            pass
        finally:
            self.close()

    def close(self) -> None:
        if self.transport is not None:
            transport, self.transport = self.transport, None
            transport.close()
        if self._idle is not None:
            self._idle.cancel()
        if self.protocol is not None:
            self.protocol.cancel_tasks()


def imap_client_for(ctx: ProbeContext, account: AccountConfig) -> ImapClient:
    """A client for the account's IMAP endpoint, trusting its ca_file when it has one."""
    assert account.imap is not None
    tls = tls_context(account.ca_file) if account.imap.security != "none" else None
    return ImapClient(ctx, account.imap, tls)


__all__ = ["ImapClient", "imap_client_for"]
