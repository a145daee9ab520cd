"""Every reason a POP3 login probe can report from a server's reply or behaviour, through
fake POP3 servers speaking the providers' exact words (tests/helpers/faults.py), checked in
process and through `mailcanary check --json --transcript`."""

from __future__ import annotations

import asyncio
import base64
import ssl
from pathlib import Path
from typing import Any

import pytest
import trustme

from mailcanary.config import Pop3Endpoint, load_config
from mailcanary.diagnosis import CLASS_OF, Pop3ReplyError, ProtocolViolation
from mailcanary.probes.runner import run_probe
from mailcanary.protocols.pop3 import MAX_LINES, Pop3Client
from mailcanary.protocols.streams import MAX_LINE
from mailcanary.result import ProbeContext
from tests.helpers.faults import Script, closed_port, fake_server, resetting_server
from tests.helpers.support import (
    PASSWORD,
    account,
    check_json,
    endpoint,
    password_file,
    write_config,
)


async def pop3_reason(tmp_path: Path, ep: str, reason: str, phase: str | None,
                      **kw: Any) -> dict[str, Any]:
    pw = password_file(tmp_path)
    cfg = write_config(tmp_path, account("acc", password_file=pw, pop3=ep, **kw))
    result, (code, found, output) = await asyncio.gather(
        run_probe("pop3", "acc", load_config(cfg)), check_json(cfg, "--transcript"))
    rows: list[dict[str, Any]] = found
    assert (result.cls, result.reason, result.phase) == (CLASS_OF[reason], reason, phase), (
        result.as_json(transcript=True))
    [row] = rows
    assert (row["probe"], row["class"], row["reason"], row["phase"]) == (
        "pop3", CLASS_OF[reason], reason, phase), row
    assert code == (0 if reason == "ok" else 1)
    assert PASSWORD not in output
    assert base64.b64encode(f"\0acc@example.test\0{PASSWORD}".encode()).decode() not in output
    return row


LOGIN_REPLIES = [
    ("-ERR [AUTH] Username and password not accepted.", "invalid_credentials"),
    ("-ERR [AUTH] Application-specific password required: "
     "https://support.google.com/accounts/answer/185833", "app_password_required"),
    ("-ERR [AUTH] Web login required: https://support.google.com/mail/answer/78754",
     "web_login_required"),
    ("-ERR [SYS/PERM] POP access is disabled for your domain.", "protocol_disabled"),
    ("-ERR [SYS/TEMP] Temporary authentication failure.", "unavailable"),
    ("-ERR [SYS/PERM] Mailbox is damaged", "server_error"),
    ("-ERR [IN-USE] Mailbox locked by another session", "too_many_connections"),
    ("-ERR [LOGIN-DELAY] Minimum time between logins not reached", "rate_limited"),
    ("-ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.",
     "tls_required"),
    ("-ERR Unsupported authentication mechanism.", "mechanism_unsupported"),
    ("-ERR [AUTH] Too many bad auth attempts.", "account_locked"),
]


# Each reply to SASL PLAIN (RFC 5034) and to USER/PASS (a server without SASL PLAIN).
LOGIN_CASES = [(reply, reason, capa) for reply, reason in LOGIN_REPLIES
               for capa in (("USER", "SASL PLAIN"), ("USER",))
               if reason != "mechanism_unsupported" or "SASL PLAIN" in capa]


@pytest.mark.parametrize(("reply", "reason", "capa"), LOGIN_CASES,
                         ids=[f"{r}-{'sasl' if len(c) > 1 else 'user'}" for _, r, c in LOGIN_CASES])
async def test_login_replies(tmp_path: Path, reply: str, reason: str,
                             capa: tuple[str, ...]) -> None:
    async with fake_server(Script("pop3", login_reply=reply, capa=capa)) as port:
        row = await pop3_reason(tmp_path, endpoint("127.0.0.1", port), reason, "auth")
    assert row["detail"].startswith(reply)
    assert row["server"] == f"127.0.0.1:{port}"
    sent = "AUTH PLAIN ***" if "SASL PLAIN" in capa else "PASS ***"
    assert any(sent in line for line in row["transcript"]), row["transcript"]


async def test_gmail_refuses_pop_at_the_first_stat(tmp_path: Path) -> None:
    """Gmail accepts the login and refuses POP only at STAT: phase select."""
    script = Script("pop3", login_reply="+OK Welcome.", stat_reply=(
        "-ERR [SYS/PERM] Your account is not enabled for POP access. Please visit your Gmail "
        "settings page and enable your account for POP access."))
    async with fake_server(script) as port:
        row = await pop3_reason(tmp_path, endpoint("127.0.0.1", port), "protocol_disabled",
                                "select")
    assert "POP3 access is disabled" in row["hint"]


@pytest.mark.parametrize(("greeting", "reason"), [
    ("-ERR [SYS/TEMP] server busy", "unavailable"),
    ("-ERR Too many connections from your IP", "too_many_connections"),
    ("* OK IMAP4rev1 ready", "protocol_error"),
    ("220 smtp.example.test ESMTP", "protocol_error"),
])
async def test_greetings(tmp_path: Path, greeting: str, reason: str) -> None:
    async with fake_server(Script("pop3", greeting=greeting)) as port:
        row = await pop3_reason(tmp_path, endpoint("127.0.0.1", port), reason, "greeting")
    assert greeting[:12] in row["detail"]


async def test_no_user_before_tls_is_tls_required(tmp_path: Path) -> None:
    script = Script("pop3", capa=("SASL", "RESP-CODES"))
    async with fake_server(script) as port:
        await pop3_reason(tmp_path, endpoint("127.0.0.1", port), "tls_required", "auth")
    assert not any(r.startswith(("USER", "PASS", "AUTH")) for r in script.received)


async def test_no_common_mechanism(tmp_path: Path) -> None:
    script = Script("pop3", capa=("SASL CRAM-MD5",))
    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    script.starttls = _server_ctx(ca)
    async with fake_server(script) as port:
        await pop3_reason(tmp_path, endpoint("127.0.0.1", port, "starttls"),
                          "mechanism_unsupported", "auth", ca_file=ca_file)


def _server_ctx(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(ctx)
    return ctx


async def test_stls_not_offered(tmp_path: Path) -> None:
    async with fake_server(Script("pop3")) as port:
        await pop3_reason(tmp_path, endpoint("127.0.0.1", port, "starttls"),
                          "starttls_unavailable", "starttls")


async def test_ok_with_stls_and_capa_refused(tmp_path: Path) -> None:
    """An RFC 1939 server without CAPA gets USER/PASS; STLS still needs CAPA to offer it."""
    async with fake_server(Script("pop3", capa=None, login_reply="+OK")) as port:
        row = await pop3_reason(tmp_path, endpoint("127.0.0.1", port), "ok", None)
    assert any("PASS ***" in line for line in row["transcript"])


@pytest.mark.parametrize(("script", "reason", "phase"), [
    (Script("pop3", drop_after_greeting=True), "connection_reset", "greeting"),
    (Script("pop3", drop_on_login=True), "connection_reset", "auth"),
    (Script("pop3", login_reply=None), "timeout", "auth"),
    (Script("pop3", login_reply="+OK", stat_reply="+OK lots"), "protocol_error", "select"),
    (Script("pop3", login_reply="HELLO?"), "protocol_error", "auth"),
])
async def test_behaviours(tmp_path: Path, script: Script, reason: str, phase: str) -> None:
    async with fake_server(script) as port:
        await pop3_reason(tmp_path, endpoint("127.0.0.1", port), reason, phase)


async def test_silent_refused_reset_nxdomain(tmp_path: Path) -> None:
    async with fake_server(silent=True) as silent, resetting_server() as reset:
        rows = await asyncio.gather(
            pop3_reason(tmp_path / "a", endpoint("127.0.0.1", silent), "timeout", "greeting"),
            pop3_reason(tmp_path / "b", endpoint("127.0.0.1", closed_port()),
                        "connection_refused", "connect"),
            pop3_reason(tmp_path / "c", endpoint("127.0.0.1", reset), "connection_reset",
                        "greeting"),
            pop3_reason(tmp_path / "d", endpoint("no-such-host.invalid", 995), "nxdomain", "dns"),
        )
    assert 2.5 < rows[0]["duration_seconds"] < 6


@pytest.fixture(autouse=True)
def _dirs(tmp_path: Path) -> None:
    for sub in "abcd":
        (tmp_path / sub).mkdir()


async def _client(port: int) -> tuple[Pop3Client, ProbeContext]:
    ctx = ProbeContext("pop3", "t")
    client = Pop3Client(ctx, Pop3Endpoint(host="127.0.0.1", port=port, security="none"), None)
    await client.connect()
    return client, ctx


async def test_hostile_long_line_is_bounded() -> None:
    """A greeting longer than MAX_LINE is a protocol error, not a memory sink."""
    async with fake_server(Script("pop3", greeting="+OK " + "x" * (MAX_LINE * 4))) as port:
        with pytest.raises(ProtocolViolation, match="longer than"):
            await _client(port)


async def test_hostile_endless_capa_is_bounded() -> None:
    """A multi-line answer longer than MAX_LINES is a protocol error, not a memory sink."""
    async with fake_server(Script("pop3", capa=("X",) * (MAX_LINES + 1))) as port:
        with pytest.raises(ProtocolViolation, match="multi-line answer longer"):
            await _client(port)


async def test_bearer_token_goes_on_its_own_line() -> None:
    """RFC 5034: an initial response that would make AUTH longer than 255 octets is sent
    after the server's "+" (Microsoft's POP3 wants this form for XOAUTH2)."""
    script = Script("pop3", capa=("SASL PLAIN XOAUTH2",), login_reply="+OK")
    token = "t" * 600
    async with fake_server(script) as port:
        client, ctx = await _client(port)
        ctx.redact.add(token)
        await client.auth_sasl("xoauth2", token)
        client.close()
    assert "AUTH XOAUTH2" in script.received and token in script.received
    assert not any(token in line for line in ctx.transcript.lines)


async def test_bearer_refused_keeps_server_status() -> None:
    script = Script("pop3", capa=("SASL XOAUTH2",), login_reply="-ERR [AUTH] Invalid token")
    async with fake_server(script) as port:
        client, _ = await _client(port)
        with pytest.raises(Pop3ReplyError, match=r"\[AUTH\] Invalid token"):
            await client.auth_sasl("xoauth2", "short")
        client.close()
    assert "AUTH XOAUTH2 short" in script.received
