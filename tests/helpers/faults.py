"""Small asyncio servers for the faults a real Dovecot or Postfix cannot be made to produce.

Each server is scripted by a few replies: a port that never greets, one that greets and
hangs, one that hangs up mid-command, and IMAP/SMTP responders that answer a login with a
provider's exact words (Google's and Microsoft's replies are the one thing we must mock).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import socket
import ssl
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass, field


@dataclass
class Script:
    """What a fake server says. `None` for a reply means: hang (say nothing, keep the line)."""

    protocol: str  # "imap", "smtp" or "pop3"
    greeting: str | None = None
    login_reply: str | None = "OK"  # IMAP: "NO [...] words" ; SMTP: "535 5.7.8 ..."
    drop_after_greeting: bool = False  # close right after the greeting (+ capability, IMAP)
    drop_on_login: bool = False  # close the connection when the login command arrives
    capabilities: str = "IMAP4rev1 AUTH=PLAIN SASL-IR IDLE"
    ehlo: tuple[str, ...] = ("AUTH PLAIN LOGIN", "8BITMIME")
    starttls: ssl.SSLContext | None = None  # offer STARTTLS with this server context
    # Hostile: plaintext sent with the STARTTLS/STLS go-ahead, before the handshake (forged
    # replies an on-path attacker could inject).
    inject_before_tls: str = ""
    capa: tuple[str, ...] | None = ("USER", "SASL PLAIN", "RESP-CODES")  # POP3; None: -ERR
    stat_reply: str = "+OK 0 0"  # POP3 STAT (UIDL: an empty maildrop)
    down_after: int | None = None  # POP3: connections after this many get "-ERR [SYS/TEMP]"
    # Hostile servers: "lower" answers every command with its tag lowercased; "wrong_on_login"
    # answers LOGIN with a tag that no command carries.
    tags: str = "same"
    # An endless stream of this line: IMAP, in reply to CAPABILITY; SMTP, as the greeting;
    # POP3, as CAPA's multi-line answer.
    flood: str | None = None
    # IMAP: the capabilities after login, sent only in reply to CAPABILITY (as Exchange does).
    caps_after_login: str | None = None
    folders: tuple[str, ...] = ("INBOX",)  # IMAP: what LIST answers
    # IMAP: these users' logins are refused after `refusal_delay` seconds (a provider's
    # failure delay in an auth outage); the others get `login_reply`.
    refused: frozenset[str] = frozenset()
    refusal_delay: float = 0.0
    received: list[str] = field(default_factory=list)
    connections: int = 0  # accepted so far

    def __post_init__(self) -> None:
        if self.greeting is None:
            self.greeting = {"imap": "* OK fake IMAP ready", "smtp": "220 fake ESMTP",
                             "pop3": "+OK fake POP3 ready"}[self.protocol]


async def _flood(writer: asyncio.StreamWriter, line: str) -> None:
    """Write `line` forever (until the client hangs up)."""
    chunk = (line + "\r\n").encode() * (65536 // (len(line) + 2) + 1)
    while True:
        writer.write(chunk)
        await writer.drain()


def _reply_tag(script: Script, tag: str, cmd: str) -> str:
    if script.tags == "lower":
        return tag.lower()
    if script.tags == "wrong_on_login" and cmd == "LOGIN":
        return "ZZZ999"
    return tag


def _imap_user(cmd: str, rest: str) -> str:
    """The user of `LOGIN user pass` or `AUTHENTICATE PLAIN <base64>` (SASL-IR)."""
    words = rest.split(" ")
    if cmd == "LOGIN":
        return words[1].strip('"') if len(words) > 1 else ""
    try:
        parts = base64.b64decode(words[-1]).split(b"\0")
    except ValueError:
        return ""
    return parts[1].decode(errors="replace") if len(parts) == 3 else ""


async def _imap(script: Script, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    assert script.greeting is not None
    writer.write(script.greeting.encode() + b"\r\n")
    await writer.drain()
    if script.drop_after_greeting:
        # Like a server that greets and then hits its connection limit.
        await reader.readline()
        return
    caps = script.capabilities + (" STARTTLS" if script.starttls else "")
    while line := await reader.readline():
        text = line.decode(errors="replace").rstrip("\r\n")
        script.received.append(text)
        tag, _, rest = text.partition(" ")
        cmd = rest.split(" ", 1)[0].upper()
        tag = _reply_tag(script, tag, cmd)
        if cmd == "CAPABILITY" and script.flood is not None:
            await _flood(writer, script.flood)
        if cmd == "CAPABILITY":
            writer.write(f"* CAPABILITY {caps}\r\n{tag} OK CAPABILITY done\r\n".encode())
        elif cmd == "STARTTLS" and script.starttls is not None:
            writer.write(f"{tag} OK Begin TLS\r\n{script.inject_before_tls}".encode())
            await writer.drain()
            await writer.start_tls(script.starttls)
            caps = script.capabilities
            continue
        elif cmd in ("LOGIN", "AUTHENTICATE"):
            if script.drop_on_login:
                return
            if script.login_reply is None:
                await asyncio.sleep(3600)
                return
            reply = script.login_reply
            if _imap_user(cmd, rest) in script.refused:
                await asyncio.sleep(script.refusal_delay)
                reply = "NO [AUTHENTICATIONFAILED] Authentication failed."
            if reply.startswith("*"):  # untagged lines first, then "NO ..."
                untagged, _, reply = reply.partition("\n")
                writer.write(untagged.encode() + b"\r\n")
            writer.write(f"{tag} {reply}\r\n".encode())
            if script.caps_after_login is not None and reply.startswith("OK"):
                caps = script.caps_after_login
        elif cmd == "LIST":
            listed = "".join(f'* LIST (\\HasNoChildren) "/" "{name}"\r\n'
                             for name in script.folders)
            writer.write(f"{listed}{tag} OK LIST done\r\n".encode())
        elif cmd in ("SELECT", "EXAMINE"):
            writer.write(f"* 0 EXISTS\r\n{tag} OK [READ-ONLY] done\r\n".encode())
        elif cmd == "LOGOUT":
            writer.write(f"* BYE bye\r\n{tag} OK done\r\n".encode())
            await writer.drain()
            return
        else:
            writer.write(f"{tag} BAD unknown command\r\n".encode())
        await writer.drain()


async def _smtp(script: Script, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    assert script.greeting is not None
    if script.flood is not None:
        await _flood(writer, script.flood)
    writer.write(script.greeting.encode() + b"\r\n")
    await writer.drain()
    if script.drop_after_greeting:
        await reader.readline()
        return
    ehlo = list(script.ehlo) + (["STARTTLS"] if script.starttls else [])
    while line := await reader.readline():
        text = line.decode(errors="replace").rstrip("\r\n")
        script.received.append(text)
        cmd = text.split(" ", 1)[0].upper()
        if cmd in ("EHLO", "HELO"):
            lines = ["fake.example.test", *ehlo]
            out = "".join(
                f"250{'-' if i < len(lines) - 1 else ' '}{ln}\r\n" for i, ln in enumerate(lines)
            )
            writer.write(out.encode())
        elif cmd == "STARTTLS" and script.starttls is not None:
            writer.write(b"220 2.0.0 Ready to start TLS\r\n" + script.inject_before_tls.encode())
            await writer.drain()
            await writer.start_tls(script.starttls)
            ehlo = list(script.ehlo)
            continue
        elif cmd == "AUTH":
            if script.drop_on_login:
                return
            if script.login_reply is None:
                await asyncio.sleep(3600)
                return
            reply = "235 2.7.0 Authentication successful" if script.login_reply == "OK" else (
                script.login_reply
            )
            writer.write(reply.replace("\n", "\r\n").encode() + b"\r\n")
        elif cmd == "QUIT":
            writer.write(b"221 2.0.0 Bye\r\n")
            await writer.drain()
            return
        else:
            writer.write(b"502 5.5.2 Error: command not recognized\r\n")
        await writer.drain()


async def _pop3_login(script: Script, text: str, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> bool:
    """Answer USER/PASS/AUTH; False when the connection should end."""
    cmd, _, arg = text.partition(" ")
    if cmd.upper() == "USER":
        writer.write(b"+OK\r\n")
        return True
    if cmd.upper() == "AUTH" and " " not in arg:  # the response comes on its own line
        writer.write(b"+ \r\n")
        await writer.drain()
        script.received.append((await reader.readline()).decode().rstrip("\r\n"))
    if script.drop_on_login:
        return False
    if script.login_reply is None:
        await asyncio.sleep(3600)
        return False
    writer.write(script.login_reply.encode() + b"\r\n")
    return True


async def _pop3(script: Script, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    assert script.greeting is not None
    if script.down_after is not None and script.connections > script.down_after:
        writer.write(b"-ERR [SYS/TEMP] maildrop unavailable\r\n")
        await writer.drain()
        return
    writer.write(script.greeting.encode() + b"\r\n")
    await writer.drain()
    if script.drop_after_greeting:
        await reader.readline()
        return
    tls_offered = script.starttls is not None
    while line := await reader.readline():
        text = line.decode(errors="replace").rstrip("\r\n")
        script.received.append(text)
        cmd = text.split(" ", 1)[0].upper()
        if cmd == "CAPA" and script.flood is not None:
            writer.write(b"+OK\r\n")
            await _flood(writer, script.flood)
        if cmd == "CAPA" and script.capa is not None:
            lines = [*script.capa, *(["STLS"] if tls_offered else [])]
            writer.write(("+OK\r\n" + "".join(f"{ln}\r\n" for ln in lines) + ".\r\n").encode())
        elif cmd == "STLS" and script.starttls is not None:
            writer.write(b"+OK Begin TLS\r\n" + script.inject_before_tls.encode())
            await writer.drain()
            await writer.start_tls(script.starttls)
            tls_offered = False
            continue
        elif cmd in ("USER", "PASS", "AUTH"):
            if not await _pop3_login(script, text, reader, writer):
                return
        elif cmd == "STAT":
            writer.write(script.stat_reply.encode() + b"\r\n")
        elif cmd == "UIDL":
            writer.write(b"+OK\r\n.\r\n")
        elif cmd == "QUIT":
            writer.write(b"+OK bye\r\n")
            await writer.drain()
            return
        else:
            writer.write(b"-ERR unknown command\r\n")
        await writer.drain()


@contextlib.asynccontextmanager
async def fake_server(
    script: Script | None = None, *, silent: bool = False, tls: ssl.SSLContext | None = None,
    host: str = "127.0.0.1", port: int = 0,
) -> AsyncIterator[int]:
    """Serve `script` (or accept and say nothing when `silent`) on host:port (default: a free
    port of 127.0.0.1); yields the port."""
    handlers: set[asyncio.Task[None]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        if script is not None:
            script.connections += 1
        try:
            if silent or script is None:
                await asyncio.sleep(3600)
            elif script.protocol == "imap":
                await _imap(script, reader, writer)
            elif script.protocol == "pop3":
                await _pop3(script, reader, writer)
            else:
                await _smtp(script, reader, writer)
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError):
            pass
        finally:
            handlers.discard(task)
            writer.close()

    server = await asyncio.start_server(handle, host, port, ssl=tls)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for task in list(handlers):
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 1)


@contextlib.asynccontextmanager
async def resetting_server() -> AsyncIterator[int]:
    """Accepts, then resets the connection (RST via SO_LINGER 0) at once."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(0.05)  # let the client finish connecting: the reset hits the greeting
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield port
    finally:
        server.close()


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@dataclass
class CuttingProxy:
    """A TCP proxy to a real server that can cut every connection it carries (`cut`) and
    then accept new ones (`refuse` False) or close them at once (`refuse` True)."""

    target: tuple[str, int]
    port: int = 0
    refuse: bool = False
    connections: int = 0
    writers: set[asyncio.StreamWriter] = field(default_factory=set)

    def cut(self) -> None:
        for writer in list(self.writers):
            writer.transport.abort()
        self.writers.clear()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.transport.abort()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        if self.refuse:
            writer.transport.abort()
            return
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self.writers |= {writer, up_writer}
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))


@contextlib.asynccontextmanager
async def cutting_proxy(host: str, port: int) -> AsyncIterator[CuttingProxy]:
    proxy = CuttingProxy((host, port))
    server = await asyncio.start_server(proxy.handle, "127.0.0.1", 0)
    proxy.port = server.sockets[0].getsockname()[1]
    try:
        yield proxy
    finally:
        server.close()
        proxy.cut()
