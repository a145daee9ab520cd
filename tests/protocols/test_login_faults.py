"""Every reason a login probe can report, produced by a real socket and checked twice:
in-process through the runner, and through the public `mailcanary check --json`."""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
import ssl
import subprocess
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import pytest
import trustme

from mailcanary.config import load_config
from mailcanary.diagnosis import CLASS_OF
from mailcanary.probes.runner import run_probe
from tests.helpers.faults import Script, closed_port, fake_server, resetting_server
from tests.helpers.support import (
    PASSWORD,
    account,
    check_json,
    endpoint,
    password_file,
    write_config,
)

ServerFactory = Callable[[], AbstractAsyncContextManager[int]]


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def server_ctx(cert: trustme.LeafCert) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(ctx)
    return ctx


async def assert_reason(
    tmp_path: Path,
    proto: str,
    ep: str,
    reason: str,
    phase: str | None,
    *,
    ca_file: Path | None = None,
    pw: Path | None = None,
) -> dict[str, Any]:
    """Runs the probe both ways and checks class, reason and phase in each."""
    pw = pw or password_file(tmp_path)
    kwargs = {proto: ep}
    cfg = write_config(tmp_path, account("acc", password_file=pw, ca_file=ca_file, **kwargs))
    config = load_config(cfg)
    # In-process and through the CLI at the same time: a timeout case costs one timeout.
    result, (code, results, output) = await asyncio.gather(
        run_probe(proto, "acc", config), check_json(cfg, "--transcript")
    )
    assert (result.cls, result.reason, result.phase) == (CLASS_OF[reason], reason, phase), (
        result.as_json(transcript=True)
    )
    assert bool(result.hint) is (reason != "ok")
    assert code == (0 if reason == "ok" else 1), output
    [row] = results
    assert isinstance(row, dict)
    assert row["probe"] == proto and row["target"] == "acc"
    assert (row["class"], row["reason"], row["phase"]) == (CLASS_OF[reason], reason, phase), row
    assert row["ok"] is (reason == "ok")
    assert PASSWORD not in output
    return row


# One reply per class end to end (the whole table is tests/diagnosis/test_replies.py).
IMAP_REPLIES = [
    ("NO [AUTHENTICATIONFAILED] Authentication failed.", "invalid_credentials"),
    ("NO [PRIVACYREQUIRED] Plaintext authentication disallowed on non-secure connections.",
     "tls_required"),
    ("NO [UNAVAILABLE] Temporary authentication failure. [host:2026-11-22 09:00:00]",
     "unavailable"),
    ("NO [LIMIT] Too many simultaneous connections.", "too_many_connections"),
    ("NO [OVERQUOTA] Mailbox is over quota.", "mailbox_full"),
    ("BAD [CLIENTBUG] Invalid arguments.", "protocol_error"),
]


@pytest.mark.parametrize(("reply", "reason"), IMAP_REPLIES, ids=[r for _, r in IMAP_REPLIES])
async def test_imap_login_replies(tmp_path: Path, reply: str, reason: str) -> None:
    script = Script("imap", login_reply=reply)
    async with fake_server(script) as port:
        row = await assert_reason(tmp_path, "imap", endpoint("127.0.0.1", port), reason, "auth")
    assert row["detail"].endswith(reply.split(" ", 1)[1]) or reply in row["detail"]
    assert any("AUTHENTICATE PLAIN ***" in line for line in row["transcript"])


SMTP_REPLIES = [
    ("534-5.7.9 Application-specific password required. Learn more at\n"
     "534 5.7.9  https://support.google.com/mail/?p=InvalidSecondFactor",
     "app_password_required"),
    ("421 4.7.0 Try again later, closing connection. (AUTH)", "rate_limited"),
    ("550 5.4.5 Daily user sending quota exceeded.", "sending_limit"),
    ("500 5.5.1 what?", "protocol_error"),
]


@pytest.mark.parametrize(("reply", "reason"), SMTP_REPLIES, ids=[r for _, r in SMTP_REPLIES])
async def test_smtp_auth_replies(tmp_path: Path, reply: str, reason: str) -> None:
    script = Script("smtp", login_reply=reply)
    async with fake_server(script) as port:
        row = await assert_reason(tmp_path, "smtp", endpoint("127.0.0.1", port), reason, "auth")
    assert reply.split("\n", maxsplit=1)[0][4:30] in row["detail"]


GREETINGS = [
    ("imap", "* BYE Too many connections from your IP", "too_many_connections"),
    ("imap", "* BYE [UNAVAILABLE] Server shutting down", "unavailable"),
    ("imap", "HTTP/1.1 400 Bad Request", "protocol_error"),
    ("smtp", "421 4.3.2 Service not available, too many connections", "too_many_connections"),
    ("smtp", "554 5.7.1 Service unavailable; client host blocked using zen.spamhaus.org",
     "policy_rejected"),
    ("smtp", "554 No SMTP service here", "unavailable"),
    ("smtp", "SSH-2.0-OpenSSH_9.2p1 Debian-2", "protocol_error"),
]


@pytest.mark.parametrize(("proto", "greeting", "reason"), GREETINGS, ids=[g[2] for g in GREETINGS])
async def test_greetings(tmp_path: Path, proto: str, greeting: str, reason: str) -> None:
    async with fake_server(Script(proto, greeting=greeting)) as port:
        row = await assert_reason(tmp_path, proto, endpoint("127.0.0.1", port), reason, "greeting")
    assert greeting.split(" ", 1)[1][:20] in row["detail"]


@pytest.mark.parametrize("proto", ["imap", "smtp"])
async def test_connection_refused(tmp_path: Path, proto: str) -> None:
    await assert_reason(
        tmp_path, proto, endpoint("127.0.0.1", closed_port()), "connection_refused", "connect"
    )


@pytest.mark.parametrize("proto", ["imap", "smtp"])
async def test_nxdomain(tmp_path: Path, proto: str) -> None:
    row = await assert_reason(
        tmp_path, proto, endpoint("no-such-host.invalid", 993), "nxdomain", "dns"
    )
    assert "no-such-host.invalid" in row["hint"]


@pytest.mark.parametrize("proto", ["imap", "smtp"])
async def test_silent_server_times_out_in_greeting(tmp_path: Path, proto: str) -> None:
    async with fake_server(silent=True) as port:
        row = await assert_reason(
            tmp_path, proto, endpoint("127.0.0.1", port), "timeout", "greeting"
        )
    assert 2.5 < row["duration_seconds"] < 6


@pytest.mark.parametrize("proto", ["imap", "smtp"])
async def test_hang_after_login_command_times_out_in_auth(tmp_path: Path, proto: str) -> None:
    async with fake_server(Script(proto, login_reply=None)) as port:
        await assert_reason(tmp_path, proto, endpoint("127.0.0.1", port), "timeout", "auth")


@pytest.mark.parametrize("proto", ["imap", "smtp"])
async def test_drop_after_greeting(tmp_path: Path, proto: str) -> None:
    async with fake_server(Script(proto, drop_after_greeting=True)) as port:
        await assert_reason(
            tmp_path, proto, endpoint("127.0.0.1", port), "connection_reset", "greeting"
        )


@pytest.mark.parametrize("proto", ["imap", "smtp"])
async def test_drop_mid_command(tmp_path: Path, proto: str) -> None:
    async with fake_server(Script(proto, drop_on_login=True)) as port:
        await assert_reason(
            tmp_path, proto, endpoint("127.0.0.1", port), "connection_reset", "auth"
        )


@pytest.mark.parametrize("proto", ["imap", "smtp"])
async def test_reset_by_peer(tmp_path: Path, proto: str) -> None:
    async with resetting_server() as port:
        await assert_reason(
            tmp_path, proto, endpoint("127.0.0.1", port), "connection_reset", "greeting"
        )


@pytest.mark.parametrize("proto", ["imap", "smtp"])
async def test_ok_through_fake_server_with_starttls(
    tmp_path: Path, proto: str, ca: trustme.CA
) -> None:
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    script = Script(proto, starttls=server_ctx(ca.issue_cert("127.0.0.1")))
    async with fake_server(script) as port:
        row = await assert_reason(
            tmp_path, proto, endpoint("127.0.0.1", port, "starttls"), "ok", None, ca_file=ca_file
        )
    assert set(row["phases"]) >= {"dns", "connect", "greeting", "starttls", "tls", "auth"}
    assert row["tls"]["version"] in ("TLSv1.2", "TLSv1.3")
    assert row["tls"]["not_after"].endswith("Z")


@pytest.mark.parametrize("proto", ["imap", "smtp"])
async def test_starttls_unavailable(tmp_path: Path, proto: str) -> None:
    async with fake_server(Script(proto)) as port:
        await assert_reason(
            tmp_path, proto, endpoint("127.0.0.1", port, "starttls"), "starttls_unavailable",
            "starttls",
        )


async def test_imap_logindisabled_without_tls(tmp_path: Path) -> None:
    script = Script("imap", capabilities="IMAP4rev1 LOGINDISABLED SASL-IR")
    async with fake_server(script) as port:
        await assert_reason(
            tmp_path, "imap", endpoint("127.0.0.1", port), "tls_required", "auth"
        )


async def test_smtp_no_auth_before_tls(tmp_path: Path) -> None:
    async with fake_server(Script("smtp", ehlo=("8BITMIME",))) as port:
        await assert_reason(tmp_path, "smtp", endpoint("127.0.0.1", port), "tls_required", "auth")


async def test_smtp_mechanism_unsupported(tmp_path: Path) -> None:
    async with fake_server(Script("smtp", ehlo=("AUTH CRAM-MD5 GSSAPI",))) as port:
        row = await assert_reason(
            tmp_path, "smtp", endpoint("127.0.0.1", port), "mechanism_unsupported", "auth"
        )
    assert "CRAM-MD5" in row["detail"]


async def test_handshake_failed_tls_to_plaintext_port(tmp_path: Path) -> None:
    async with fake_server(Script("imap")) as port:
        await assert_reason(
            tmp_path, "imap", endpoint("127.0.0.1", port, "tls"), "handshake_failed", "tls"
        )


TLS_FAULTS: list[tuple[str, str]] = [
    ("expired", "cert_expired"),
    ("wrong_host", "hostname_mismatch"),
    ("self_signed", "cert_untrusted"),
]


def faulty_cert(kind: str, ca: trustme.CA) -> trustme.LeafCert:
    if kind == "expired":
        past = dt.datetime.now(dt.UTC) - dt.timedelta(days=2)
        return ca.issue_cert(
            "127.0.0.1", not_before=past - dt.timedelta(days=30), not_after=past
        )
    if kind == "wrong_host":
        return ca.issue_cert("wrong.example.invalid")
    return trustme.CA().issue_cert("127.0.0.1")  # a CA the client does not trust


@pytest.mark.parametrize(("kind", "reason"), TLS_FAULTS)
@pytest.mark.parametrize("security", ["tls", "starttls"])
@pytest.mark.parametrize("proto", ["imap", "smtp"])
async def test_certificate_faults(
    tmp_path: Path, ca: trustme.CA, proto: str, security: str, kind: str, reason: str
) -> None:
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    ctx = server_ctx(faulty_cert(kind, ca))
    if security == "tls":
        server: AbstractAsyncContextManager[int] = fake_server(Script(proto), tls=ctx)
    else:
        server = fake_server(Script(proto, starttls=ctx))
    async with server as port:
        await assert_reason(
            tmp_path, proto, endpoint("127.0.0.1", port, security), reason, "tls",
            ca_file=ca_file,
        )


async def test_unreadable_password_file_is_config_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "secret"
    async with fake_server(Script("imap")) as port:
        row = await assert_reason(
            tmp_path, "imap", endpoint("127.0.0.1", port), "config_error", "auth", pw=missing
        )
    assert str(missing) in row["detail"]


async def test_one_hanging_account_does_not_slow_another(tmp_path: Path) -> None:
    pw = password_file(tmp_path)
    async with fake_server(silent=True) as slow, fake_server(Script("imap")) as fast:
        cfg = write_config(
            tmp_path,
            account("slow", password_file=pw, imap=endpoint("127.0.0.1", slow), timeout="3s"),
            account("fast", password_file=pw, imap=endpoint("127.0.0.1", fast)),
        )
        code, rows, _ = await check_json(cfg)
    by_target = {r["target"]: r for r in rows}
    assert code == 1
    assert by_target["fast"]["ok"] is True
    assert by_target["fast"]["duration_seconds"] < 1.0
    assert by_target["slow"]["reason"] == "timeout"


def _netns_works() -> bool:
    """`unshare -n` gives a network namespace with only a downed loopback: no route at all."""
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True, check=False)
    return probe.returncode == 0


needs_netns = pytest.mark.skipif(not _netns_works(), reason="unshare -n is not permitted here")


@needs_netns
@pytest.mark.parametrize("proto", ["imap", "smtp"])
@pytest.mark.parametrize(
    ("host", "cls", "reason", "phase"),
    [
        # Only a downed loopback in the namespace: no route to anything.
        ("127.0.0.1", "network", "unreachable", "connect"),
        # No route to the configured nameserver: the lookup fails temporarily (EAI_AGAIN),
        # which is a DNS failure, not a name that does not exist.
        ("mail.example.com", "dns", "dns_error", "dns"),
    ],
)
async def test_empty_network_namespace(
    tmp_path: Path, proto: str, host: str, cls: str, reason: str, phase: str
) -> None:
    pw = password_file(tmp_path)
    ep = endpoint(host, 993)
    cfg = write_config(
        tmp_path,
        account("acc", password_file=pw, imap=ep if proto == "imap" else None,
                smtp=ep if proto == "smtp" else None),
    )
    code, [row], _ = await check_json(cfg, prefix=("unshare", "-n"))
    assert code == 1
    assert (row["class"], row["reason"], row["phase"]) == (cls, reason, phase)
