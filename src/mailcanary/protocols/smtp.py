"""A small SMTP client on asyncio streams, built for diagnosis rather than throughput.

Why not aiosmtplib: it performs resolve, connect, TLS and the greeting inside one call, so
the phases a person needs to tell apart (was it DNS, the handshake, or a silent server?)
cannot be timed or reported separately. What a monitor needs of SMTP is small: greeting,
EHLO, STARTTLS, AUTH, MAIL/RCPT/DATA and QUIT, each reply kept verbatim for the detail.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
import time

from mailcanary.config import SmtpEndpoint
from mailcanary.credentials import Secret
from mailcanary.diagnosis import (
    ConnectionClosed,
    MechanismUnsupported,
    ProtocolViolation,
    SmtpReplyError,
    StartTLSUnavailable,
    TLSRequired,
)
from mailcanary.protocols import sasl
from mailcanary.protocols.runtime import runtime_of
from mailcanary.protocols.streams import LineClient
from mailcanary.result import ProbeContext

# A reply is bounded too: an endless "220-" greeting must end as a failure, not as memory.
_MAX_REPLY_LINES = 512
_MAX_REPLY_BYTES = 256 << 10


class SmtpClient(LineClient):
    def __init__(self, ctx: ProbeContext, endpoint: SmtpEndpoint, tls: ssl.SSLContext | None):
        super().__init__(ctx, endpoint.host, endpoint.effective_port, tls)
        self.endpoint = endpoint
        self.extensions: dict[str, str] = {}

    # ------------------------------------------------------------------ wire

    async def read_reply(self) -> tuple[int, str]:
        """(code, text) of one possibly multi-line reply; text keeps every line."""
        lines: list[str] = []
        code: int | None = None
        size = 0
        while True:
            line = await self.readline()
            self.ctx.transcript.note("S", line)
            if len(line) < 3 or not line[:3].isdigit() or (len(line) > 3 and line[3] not in " -"):
                raise ProtocolViolation(f"not an SMTP reply: {line[:200]!r}")
            this = int(line[:3])
            if code is not None and this != code:
                raise ProtocolViolation(f"reply code changed within a reply: {line[:200]!r}")
            code = this
            lines.append(line[4:])
            size += len(line)
            if len(lines) > _MAX_REPLY_LINES or size > _MAX_REPLY_BYTES:
                raise ProtocolViolation(
                    f"reply of more than {len(lines)} lines / {size} bytes without an end; "
                    f"last: {line[:200]!r}")
            if len(line) == 3 or line[3] == " ":
                return code, "\n".join(lines)

    async def command(self, line: str, *, log_as: str | None = None) -> tuple[int, str]:
        await self.send(line, log_as=log_as)
        return await self.read_reply()

    async def expect(self, command: str, line: str, ok: tuple[int, ...], **kw: str) -> str:
        code, text = await self.command(line, **kw)
        if code not in ok:
            raise SmtpReplyError(command, code, f"{code} {text}")
        return text

    # ------------------------------------------------------------------ session

    async def connect(self) -> None:
        security = self.endpoint.security or "starttls"
        await self.open(implicit_tls=security == "tls")
        with self.ctx.phase("greeting"):
            code, text = await self.read_reply()
            if code != 220:
                raise SmtpReplyError("GREETING", code, f"{code} {text}")
            await self.ehlo()
        if security == "starttls":
            await self.starttls()

    async def ehlo(self) -> None:
        code, text = await self.command(f"EHLO {await runtime_of(self.ctx).helo()}")
        if code != 250:
            raise SmtpReplyError("EHLO", code, f"{code} {text}")
        self.extensions = {}
        for line in text.splitlines()[1:]:
            key, _, value = line.strip().partition(" ")
            self.extensions[key.upper()] = value

    async def starttls(self) -> None:
        assert self.writer is not None and self.tls is not None
        with self.ctx.phase("starttls"):
            if "STARTTLS" not in self.extensions:
                raise StartTLSUnavailable(
                    f"the server did not offer STARTTLS (EHLO offered: "
                    f"{' '.join(self.extensions) or 'nothing'})"
                )
            await self.expect("STARTTLS", "STARTTLS", (220,))
        await self.upgrade()
        with self.ctx.phase("starttls"):
            await self.ehlo()

    def mechanisms(self) -> list[str]:
        return self.extensions.get("AUTH", "").upper().split()

    async def auth_password(self, username: str, password: Secret) -> None:
        secret = password.reveal()
        blob = base64.b64encode(f"\0{username}\0{secret}".encode()).decode()
        pw_blob = base64.b64encode(secret.encode()).decode()
        self.ctx.redact.add(secret, blob, pw_blob)
        with self.ctx.phase("auth"):
            mechs = self.mechanisms()
            if not mechs:
                if not self.encrypted:
                    raise TLSRequired(
                        "the server offers AUTH only after TLS (no AUTH in EHLO); use "
                        "security = \"starttls\" or \"tls\""
                    )
                raise MechanismUnsupported("the server offers no AUTH mechanism in EHLO")
            if "PLAIN" in mechs:
                code, text = await self.command(f"AUTH PLAIN {blob}")
                if code == 334:  # servers that do not take an initial response
                    code, text = await self.command(blob)
            elif "LOGIN" in mechs:
                code, text = await self.command("AUTH LOGIN")
                if code == 334:
                    user_blob = base64.b64encode(username.encode()).decode()
                    code, text = await self.command(user_blob)
                    if code == 334:
                        code, text = await self.command(pw_blob)
            else:
                raise MechanismUnsupported(
                    f"no common AUTH mechanism: the server offers {' '.join(mechs)}, "
                    "mailcanary speaks PLAIN and LOGIN with a password"
                )
            if code != 235:
                raise SmtpReplyError("AUTH", code, f"{code} {text}")

    async def auth_sasl(self, mechanism: str, initial: str, on_challenge: str = "") -> None:
        """AUTH with an initial response (XOAUTH2, OAUTHBEARER). `initial` must be registered
        with the redactor by the caller. A 334 is the server's base64 JSON error status: it
        goes into the detail, and is answered with `on_challenge` (an empty line for XOAUTH2,
        "AQ==" for OAUTHBEARER) so that the server sends its final 535."""
        with self.ctx.phase("auth"):
            mechs = self.mechanisms()
            if mechanism.upper() not in mechs:
                if not mechs and not self.encrypted:
                    raise TLSRequired(
                        "the server offers AUTH only after TLS (no AUTH in EHLO); use "
                        "security = \"starttls\" or \"tls\""
                    )
                raise MechanismUnsupported(
                    f"the server does not offer AUTH {mechanism.upper()} "
                    f"(it offers: {' '.join(mechs) or 'nothing'})"
                )
            code, text = await self.command(f"AUTH {mechanism.upper()} {initial}")
            server_said = ""
            if code == 334:
                server_said = sasl.decode_challenge(text)
                code, text = await self.command(on_challenge)
            if code != 235:
                if server_said:
                    text = f"{text} (server said: {server_said})"
                raise SmtpReplyError("AUTH", code, f"{code} {text}")

    async def send_message(self, sender: str, recipients: list[str], message: bytes) -> float:
        """MAIL, RCPT, DATA. Returns the monotonic time of the server's final 250."""
        await self.expect("MAIL", f"MAIL FROM:<{sender}>", (250,))
        for rcpt in recipients:
            await self.expect("RCPT", f"RCPT TO:<{rcpt}>", (250, 251))
        await self.expect("DATA", "DATA", (354,))
        assert self.writer is not None
        body = message.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        if not body.endswith(b"\r\n"):
            body += b"\r\n"
        lines = [b"." + ln if ln.startswith(b".") else ln for ln in body.split(b"\r\n")]
        self.writer.write(b"\r\n".join(lines) + b".\r\n")
        self.ctx.transcript.note("C", f"<message, {len(message)} bytes>")
        self.ctx.transcript.note("C", ".")
        await self.writer.drain()
        code, text = await self.read_reply()
        accepted = time.monotonic()
        if code != 250:
            raise SmtpReplyError("DATA", code, f"{code} {text}")
        return accepted

    async def quit(self) -> None:
        """Polite QUIT; a server that hangs up first is fine."""
        if self.writer is None:
            return
        try:
            await self.command("QUIT")
        except (OSError, ProtocolViolation, ConnectionClosed, asyncio.IncompleteReadError):
            pass
        finally:
            self.close()
