"""A small POP3 client on asyncio streams (RFC 1939, 2449 CAPA, 2595 STLS, 5034 AUTH).

Why our own: no well-kept asyncio POP3 client exists, and a monitor needs each step timed
and each reply kept verbatim (the RFC 2449/3206 response codes and the providers' words are
the diagnosis). Shaped like the SMTP client: connect, TLS or STLS, greeting, CAPA, AUTH,
STAT, QUIT; plus UIDL/TOP/DELE for a round trip that ends in a POP3-only mailbox.
Every line is bounded (`MAX_LINE`) and so is every multi-line answer (`MAX_LINES`,
`MAX_BYTES`): a hostile server cannot make it grow memory.
"""

from __future__ import annotations

import base64
import ssl

from mailcanary.config import Pop3Endpoint
from mailcanary.credentials import Secret
from mailcanary.diagnosis import (
    ConnectionClosed,
    MechanismUnsupported,
    Pop3ReplyError,
    ProtocolViolation,
    StartTLSUnavailable,
    TLSRequired,
)
from mailcanary.protocols import sasl
from mailcanary.protocols.streams import LineClient
from mailcanary.result import ProbeContext

MAX_LINES = 100_000
MAX_BYTES = 8 * 1024 * 1024
_AUTH_LINE_MAX = 255  # RFC 5034 4: a longer initial response goes on its own line
_TLS_ADVICE = "use security = \"starttls\" (STLS) or \"tls\""


class Pop3Client(LineClient):
    def __init__(self, ctx: ProbeContext, endpoint: Pop3Endpoint, tls: ssl.SSLContext | None):
        super().__init__(ctx, endpoint.host, endpoint.effective_port, tls)
        self.endpoint = endpoint
        self.capabilities: dict[str, str] = {}
        self.capa_known = False  # False: the server refused CAPA (RFC 1939 server)

    # ------------------------------------------------------------------ wire

    async def status(self, command: str) -> str:
        """One status line: the text after ``+OK``; ``-ERR`` raises Pop3ReplyError."""
        line = await self.readline()
        self.ctx.transcript.note("S", line)
        if line.startswith("+OK"):
            return line[3:].strip()
        if line.startswith("-ERR"):
            raise Pop3ReplyError(command, line)
        raise ProtocolViolation(f"not a POP3 reply to {command}: {line[:200]!r}")

    async def command(self, line: str, *, log_as: str | None = None) -> str:
        await self.send(line, log_as=log_as)
        return await self.status(line.split(" ", 1)[0].upper())

    async def multiline(self, *, note: bool = True) -> list[str]:
        """The lines of a multi-line answer up to ".", dot-unstuffed, bounded in size."""
        lines: list[str] = []
        size = 0
        while True:
            line = await self.readline()
            if line == ".":
                return lines
            size += len(line) + 2
            if len(lines) >= MAX_LINES or size > MAX_BYTES:
                raise ProtocolViolation(
                    f"multi-line answer longer than {MAX_LINES} lines or {MAX_BYTES} bytes"
                )
            if note:
                self.ctx.transcript.note("S", line)
            lines.append(line[1:] if line.startswith("..") else line)

    # ------------------------------------------------------------------ session

    async def connect(self) -> None:
        security = self.endpoint.security or "tls"
        await self.open(implicit_tls=security == "tls")
        with self.ctx.phase("greeting"):
            await self.status("GREETING")
            await self.capa()
        if security == "starttls":
            await self.starttls()

    async def capa(self) -> None:
        """CAPA (RFC 2449); a server that does not know it keeps an empty list."""
        await self.send("CAPA")
        try:
            await self.status("CAPA")
        except Pop3ReplyError:
            self.capabilities, self.capa_known = {}, False
            return
        self.capabilities = {}
        for line in await self.multiline():
            key, _, value = line.strip().partition(" ")
            self.capabilities[key.upper()] = value
        self.capa_known = True

    async def starttls(self) -> None:
        assert self.writer is not None and self.tls is not None
        with self.ctx.phase("starttls"):
            if "STLS" not in self.capabilities:
                offered = " ".join(self.capabilities) or "nothing"
                raise StartTLSUnavailable(
                    f"the server did not offer STLS (CAPA offered: {offered})"
                )
            await self.command("STLS")
        await self.upgrade()
        with self.ctx.phase("starttls"):
            await self.capa()

    def mechanisms(self) -> list[str]:
        return self.capabilities.get("SASL", "").upper().split()

    async def auth_password(self, username: str, password: Secret) -> None:
        """SASL PLAIN (RFC 5034) when offered, else USER/PASS (RFC 1939)."""
        secret = password.reveal()
        blob = base64.b64encode(f"\0{username}\0{secret}".encode()).decode()
        self.ctx.redact.add(secret, blob)
        with self.ctx.phase("auth"):
            if "PLAIN" in self.mechanisms():
                await self._sasl_exchange("PLAIN", blob, "")
                return
            if self.capa_known and "USER" not in self.capabilities:
                if not self.encrypted:
                    raise TLSRequired(
                        "the server offers no password login before TLS (no USER and no SASL "
                        f"PLAIN in CAPA); {_TLS_ADVICE}"
                    )
                offered = " ".join(self.mechanisms()) or "none"
                raise MechanismUnsupported(
                    f"no common login: the server offers neither USER nor SASL PLAIN "
                    f"(SASL: {offered})"
                )
            await self.command(f"USER {username}")
            await self.command(f"PASS {secret}", log_as="PASS ***")

    async def auth_sasl(self, mechanism: str, initial: str, on_challenge: str = "") -> None:
        """AUTH XOAUTH2 / OAUTHBEARER with a bearer token (`initial` is registered with the
        redactor by the caller). A long initial response goes on its own line after the
        server's "+" (RFC 5034; the form Microsoft's POP3 requires)."""
        mech = mechanism.upper()
        with self.ctx.phase("auth"):
            if mech not in self.mechanisms():
                if not self.encrypted and not self.mechanisms():
                    raise TLSRequired(f"the server offers no SASL before TLS; {_TLS_ADVICE}")
                raise MechanismUnsupported(
                    f"the server does not offer SASL {mech} "
                    f"(it offers: {' '.join(self.mechanisms()) or 'nothing'})"
                )
            await self._sasl_exchange(mech, initial, on_challenge)

    async def _sasl_exchange(self, mech: str, initial: str, on_challenge: str) -> None:
        inline = len(f"AUTH {mech} {initial}") <= _AUTH_LINE_MAX
        if inline:
            await self.send(f"AUTH {mech} {initial}")
        else:
            await self.send(f"AUTH {mech}")
        server_said = ""
        sent = inline
        for _ in range(3):  # at most: empty challenge, error challenge, final status
            line = await self.readline()
            self.ctx.transcript.note("S", line)
            if not line.startswith("+ ") and line != "+":
                break
            challenge = line[1:].strip()
            if not sent and not challenge:
                sent = True
                await self.send(initial)
                continue
            server_said = sasl.decode_challenge(challenge) if challenge else server_said
            await self.send(on_challenge)
        if line.startswith("+OK"):
            return
        if line.startswith("-ERR"):
            text = f"{line} (server said: {server_said})" if server_said else line
            raise Pop3ReplyError("AUTH", text)
        raise ProtocolViolation(f"not a POP3 reply to AUTH: {line[:200]!r}")

    async def stat(self) -> tuple[int, int]:
        """STAT: (messages, octets). Gmail refuses POP only here, after a good login."""
        text = await self.command("STAT")
        parts = text.split()
        if len(parts) < 2 or not parts[0].isdigit() or not parts[1].isdigit():
            raise ProtocolViolation(f"not a STAT answer: +OK {text[:200]!r}")
        return int(parts[0]), int(parts[1])

    async def uidl(self) -> dict[int, str]:
        """UIDL: message number -> unique id."""
        await self.command("UIDL")
        out: dict[int, str] = {}
        for line in await self.multiline(note=False):
            number, _, uid = line.strip().partition(" ")
            if not number.isdigit() or not uid:
                raise ProtocolViolation(f"not a UIDL line: {line[:200]!r}")
            out[int(number)] = uid
        return out

    async def top(self, number: int, lines: int = 0) -> list[str]:
        """TOP n lines: the headers (and `lines` body lines) of message `number`."""
        await self.command(f"TOP {number} {lines}")
        return await self.multiline(note=False)

    async def dele(self, number: int) -> None:
        await self.command(f"DELE {number}")

    async def quit(self) -> None:
        """Polite QUIT (it commits DELEs); a server that hangs up first is fine."""
        if self.writer is None:
            return
        try:
            await self.command("QUIT")
        except (OSError, ProtocolViolation, ConnectionClosed, Pop3ReplyError):
            pass
        finally:
            self.close()
