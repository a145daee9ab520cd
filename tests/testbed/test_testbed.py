"""The real mail test bed (Dovecot + Postfix) behaves as the other tests expect."""

from __future__ import annotations

import imaplib
import os
import smtplib
import ssl
import subprocess
import sys
import time
import tomllib
import uuid
from email.message import EmailMessage
from pathlib import Path

import pytest

from mailcanary.testbed import (
    BLACKHOLE_ADDRESS,
    DEFAULT_USERS,
    FAULT_KINDS,
    SPAM_HEADER,
    MailTestBed,
    TestBedError,
    TestBedUser,
    ensure_installed,
    write_demo_config,
)
from mailcanary.testbed.install import missing_components
from mailcanary.testbed.processes import processes_under

pytestmark = pytest.mark.testbed

ALICE, BOB = DEFAULT_USERS[0], DEFAULT_USERS[1]


def _message(sender: TestBedUser, to: str, *, spam: bool = False) -> tuple[EmailMessage, str]:
    token = uuid.uuid4().hex
    msg = EmailMessage()
    msg["From"] = sender.address
    msg["To"] = to
    msg["Subject"] = f"testbed {token}"
    msg["Message-ID"] = f"<{token}@example.test>"
    if spam:
        msg[SPAM_HEADER] = "yes"
    msg.set_content(f"token {token}\n")
    return msg, token


def _wait_for_file(directory: Path, token: str, timeout: float = 5.0) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if directory.is_dir():
            for path in directory.iterdir():
                if token.encode() in path.read_bytes():
                    return path
        time.sleep(0.02)
    raise AssertionError(f"no message with {token} in {directory} after {timeout} s")


def _all_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def _send(bed: MailTestBed, msg: EmailMessage, to: str) -> None:
    with smtplib.SMTP(bed.host, bed.submission_port, timeout=10) as smtp:
        smtp.starttls(context=bed.ssl_context())
        smtp.login(ALICE.name, ALICE.password)
        smtp.send_message(msg, from_addr=ALICE.address, to_addrs=[to])


def test_installed() -> None:
    ensure_installed()  # everything present: a no-op
    assert missing_components() == []


def test_root_with_whitespace_refused(tmp_path: Path) -> None:
    with pytest.raises(TestBedError, match="whitespace"):
        MailTestBed(tmp_path / "a b").start()


def test_user_address() -> None:
    assert ALICE.address == "alice@example.test"
    assert len({u.password for u in DEFAULT_USERS}) == len(DEFAULT_USERS)


def test_imaps_login_and_select(testbed: MailTestBed) -> None:
    ctx = ssl.create_default_context(cafile=str(testbed.ca_pem))
    t0 = time.monotonic()
    with imaplib.IMAP4_SSL(testbed.host, testbed.imaps_port, ssl_context=ctx, timeout=10) as imap:
        imap.login(ALICE.name, ALICE.password)
        elapsed = time.monotonic() - t0
        typ, selected = imap.select("INBOX")
        assert typ == "OK", selected
        typ, data = imap.list('""', "*")
        assert typ == "OK"
        listing = b"\n".join(d for d in data if isinstance(d, bytes))
        for flag in (rb"\Junk", rb"\Trash", rb"\Sent", rb"\Archive", rb"\Drafts"):
            assert flag in listing, listing
    print(f"healthy IMAPS connect+TLS+login: {elapsed * 1000:.1f} ms")
    assert elapsed < 2


def test_imap_starttls_login(testbed: MailTestBed) -> None:
    with imaplib.IMAP4(testbed.host, testbed.imap_port, timeout=10) as imap:
        assert "STARTTLS" in imap.capabilities
        assert "IDLE" in imap.capabilities
        # 127.0.0.1 -> 127.0.0.1 counts as secured for Dovecot: no LOGINDISABLED here.
        assert "LOGINDISABLED" not in imap.capabilities
        imap.starttls(ssl_context=testbed.ssl_context())
        imap.login(BOB.name, BOB.password)
        assert imap.select("INBOX")[0] == "OK"


def test_wrong_password_then_fast_login(testbed: MailTestBed) -> None:
    ctx = testbed.ssl_context()
    with (
        imaplib.IMAP4_SSL(testbed.host, testbed.imaps_port, ssl_context=ctx, timeout=10) as imap,
        pytest.raises(imaplib.IMAP4.error, match=r"AUTHENTICATIONFAILED"),
    ):
        imap.login(ALICE.name, "not-the-password")
    t0 = time.monotonic()
    with imaplib.IMAP4_SSL(testbed.host, testbed.imaps_port, ssl_context=ctx, timeout=10) as imap:
        imap.login(ALICE.name, ALICE.password)
    elapsed = time.monotonic() - t0
    print(f"login right after a failed one: {elapsed * 1000:.1f} ms")
    assert elapsed < 2, "Dovecot's failed-login penalty is active"


def test_submission_offers_auth_only_after_starttls(testbed: MailTestBed) -> None:
    with smtplib.SMTP(testbed.host, testbed.submission_port, timeout=10) as smtp:
        smtp.ehlo()
        assert smtp.has_extn("starttls")
        assert not smtp.has_extn("auth")
        smtp.starttls(context=testbed.ssl_context())
        smtp.ehlo()
        assert "PLAIN" in smtp.esmtp_features["auth"].split()
        assert "LOGIN" in smtp.esmtp_features["auth"].split()


def test_submission_delivers_to_inbox(testbed: MailTestBed) -> None:
    msg, token = _message(ALICE, BOB.address)
    t0 = time.monotonic()
    _send(testbed, msg, BOB.address)
    path = _wait_for_file(testbed.maildir("bob") / "new", token)
    print(f"submission -> Maildir/new: {(time.monotonic() - t0) * 1000:.1f} ms")
    assert b"Return-Path: <alice@example.test>" in path.read_bytes()


def test_submissions_implicit_tls_auth(testbed: MailTestBed) -> None:
    msg, token = _message(ALICE, BOB.address)
    ctx = testbed.ssl_context()
    with smtplib.SMTP_SSL(testbed.host, testbed.submissions_port, context=ctx, timeout=10) as s:
        s.login(ALICE.name, ALICE.password)
        s.send_message(msg)
    _wait_for_file(testbed.maildir("bob") / "new", token)


def test_submission_wrong_password(testbed: MailTestBed) -> None:
    with smtplib.SMTP(testbed.host, testbed.submission_port, timeout=10) as smtp:
        smtp.starttls(context=testbed.ssl_context())
        with pytest.raises(smtplib.SMTPAuthenticationError) as info:
            smtp.login(ALICE.name, "wrong")
    assert info.value.smtp_code == 535


def test_spam_header_goes_to_junk(testbed: MailTestBed) -> None:
    msg, token = _message(ALICE, BOB.address, spam=True)
    _send(testbed, msg, BOB.address)
    _wait_for_file(testbed.maildir("bob") / ".Junk" / "new", token)
    inbox = testbed.maildir("bob") / "new"
    assert not any(token.encode() in p.read_bytes() for p in inbox.iterdir())


def test_unknown_recipient_rejected_at_rcpt(testbed: MailTestBed) -> None:
    for port, login in ((testbed.submission_port, True), (testbed.smtp_port, False)):
        with smtplib.SMTP(testbed.host, port, timeout=10) as smtp:
            smtp.starttls(context=testbed.ssl_context())
            if login:
                smtp.login(ALICE.name, ALICE.password)
            assert smtp.mail(ALICE.address)[0] == 250
            code, text = smtp.rcpt("nobody@example.test")
            assert code == 550, text
            assert b"5.1.1" in text


def test_inbound_port_delivers_without_auth_but_rejects_relay(testbed: MailTestBed) -> None:
    msg, token = _message(ALICE, BOB.address)
    with smtplib.SMTP(testbed.host, testbed.smtp_port, timeout=10) as smtp:
        assert smtp.mail("someone@elsewhere.invalid")[0] == 250
        code, text = smtp.rcpt("victim@elsewhere.invalid")
        assert code == 554 and b"Relay access denied" in text, text
        smtp.rset()
        smtp.send_message(msg, from_addr="someone@elsewhere.invalid", to_addrs=[BOB.address])
    _wait_for_file(testbed.maildir("bob") / "new", token)


def test_submission_without_auth_is_denied(testbed: MailTestBed) -> None:
    with smtplib.SMTP(testbed.host, testbed.submission_port, timeout=10) as smtp:
        smtp.starttls(context=testbed.ssl_context())
        assert smtp.mail(ALICE.address)[0] == 250
        code, _ = smtp.rcpt(BOB.address)
        assert code == 554


def test_blackhole_accepted_and_dropped(testbed: MailTestBed) -> None:
    msg, token = _message(ALICE, BLACKHOLE_ADDRESS)
    _send(testbed, msg, BLACKHOLE_ADDRESS)
    deadline = time.monotonic() + 5
    log = testbed.root / "logs" / "postfix.log"
    while time.monotonic() < deadline:
        text = log.read_text()
        if (
            f"to=<{BLACKHOLE_ADDRESS}>" in text
            and "status=sent" in text.split(f"to=<{BLACKHOLE_ADDRESS}>", 1)[1].split("\n", 1)[0]
        ):
            break
        time.sleep(0.02)
    else:
        raise AssertionError("postfix never discarded the blackhole message")
    assert not any(token.encode() in p.read_bytes() for p in _all_files(testbed.mail_root))


# OpenSSL's verify codes: 10 certificate has expired, 62 hostname mismatch, 64 IP address
# mismatch (what a wrong-host certificate gives when the client connects to "127.0.0.1"),
# 18/19/20 self-signed / self-signed in chain / unable to get local issuer certificate.
@pytest.mark.parametrize(
    ("kind", "host", "codes"),
    [
        ("expired", None, {10}),
        ("expired", "localhost", {10}),
        ("wrong_host", "localhost", {62}),
        ("wrong_host", None, {64}),
        ("self_signed", None, {18, 19, 20}),
    ],
)
def test_tls_faults(testbed: MailTestBed, kind: str, host: str | None, codes: set[int]) -> None:
    host = host or testbed.host
    imaps_port, imap_port = testbed.tls_fault_ports(kind)
    assert kind in FAULT_KINDS
    ctx = testbed.ssl_context()
    with pytest.raises(ssl.SSLCertVerificationError) as info:
        imaplib.IMAP4_SSL(host, imaps_port, ssl_context=ctx, timeout=10)
    assert info.value.verify_code in codes, info.value
    imap = imaplib.IMAP4(host, imap_port, timeout=10)
    try:
        assert "STARTTLS" in imap.capabilities
        with pytest.raises(ssl.SSLCertVerificationError) as info:
            imap.starttls(ssl_context=ctx)
    finally:
        imap.sock.close()  # the socket is unusable after the failed handshake: no LOGOUT
    assert info.value.verify_code in codes, info.value
    assert testbed.tls_fault_ports(kind) == (imaps_port, imap_port)  # started once


def test_tls_fault_instance_shares_users(testbed: MailTestBed) -> None:
    imaps_port, _ = testbed.tls_fault_ports("self_signed")
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with imaplib.IMAP4_SSL(testbed.host, imaps_port, ssl_context=ctx, timeout=10) as imap:
        imap.login(ALICE.name, ALICE.password)


def test_create_folder_non_ascii(testbed: MailTestBed) -> None:
    testbed.create_folder("carol", "迷惑メール")
    with imaplib.IMAP4_SSL(
        testbed.host, testbed.imaps_port, ssl_context=testbed.ssl_context(), timeout=10
    ) as imap:
        imap.login("carol", DEFAULT_USERS[2].password)
        typ, data = imap.list('""', "*")
    assert typ == "OK"
    listing = b"\n".join(d for d in data if isinstance(d, bytes))
    assert b"&j,dg0TDhMPww6w-" in listing, listing
    line = next(d for d in data if isinstance(d, bytes) and b"&j,dg0TDhMPww6w-" in d)
    assert b"\\Junk" not in line


def test_logs_exist(testbed: MailTestBed) -> None:
    names = {p.name for p in testbed.log_paths}
    assert {"dovecot.log", "postfix.log"} <= names
    assert all(p.exists() for p in testbed.log_paths)


def test_demo_config(testbed: MailTestBed, tmp_path: Path) -> None:
    path = write_demo_config(testbed, tmp_path / "mailcanary.toml")
    config = tomllib.loads(path.read_text())
    assert config["daemon"]["listen"] == "127.0.0.1:9782"
    assert config["defaults"] == {"interval": "20s", "timeout": "10s"}
    accounts = {a["name"]: a for a in config["accounts"]}
    assert accounts["alice"]["imap"] == {
        "host": testbed.host,
        "port": testbed.imaps_port,
        "security": "tls",
    }
    assert accounts["alice"]["smtp"]["security"] == "starttls"
    assert accounts["alice"]["ca_file"] == str(testbed.ca_pem)
    alice_secret = Path(accounts["alice"]["password_file"])
    assert alice_secret.read_text().rstrip("\n") == ALICE.password
    assert alice_secret.stat().st_mode & 0o777 == 0o600
    assert Path(accounts["bob"]["password_file"]).read_text().rstrip("\n") == BOB.password
    assert Path(accounts["dave"]["password_file"]).read_text().rstrip("\n") != \
        testbed.user("dave").password
    assert accounts["alice-typo"]["imap"] == {
        "host": testbed.host, "port": testbed.imap_port, "security": "tls"}
    assert [r["name"] for r in config["routes"]] == ["alice-to-bob", "alice-to-carol"]
    assert Path(config["daemon"]["state_dir"]).is_relative_to(testbed.root)
    assert alice_secret.is_relative_to(testbed.root)


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _processes_under(root: Path) -> set[int]:
    return processes_under(root)


def test_second_bed_stops_cleanly(testbed: MailTestBed, tmp_path: Path) -> None:
    """Two beds run at once; stop() leaves nothing behind and is idempotent."""
    bed = MailTestBed(tmp_path / "bed2", DEFAULT_USERS[:2])
    with bed:
        assert bed.imap_port != testbed.imap_port
        bed.tls_fault_ports("expired")
        pids = bed.pids()
        assert len(pids) > 5
        assert _processes_under(bed.root) <= pids
        assert _processes_under(bed.root)
    print(f"second bed: {bed.timings}")
    # Dead; PID 1 reaps the orphaned zombies on its own schedule (about 1 s here).
    assert not [p for p in pids if _alive(p)]
    assert not _processes_under(bed.root)
    bed.stop()  # idempotent
    # The session bed is unaffected.
    with imaplib.IMAP4_SSL(
        testbed.host, testbed.imaps_port, ssl_context=testbed.ssl_context(), timeout=10
    ) as imap:
        imap.login(ALICE.name, ALICE.password)


def test_cli_serve(tmp_path: Path) -> None:
    config = tmp_path / "demo.toml"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mailcanary.testbed",
            "serve",
            "--dir",
            str(tmp_path / "bed"),
            "--write-config",
            str(config),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2] / "src")},
    )
    assert proc.stdout is not None
    lines = []
    try:
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("config"):
                break
        assert config.exists(), "".join(lines)
        assert any(line.startswith("imaps_port") for line in lines)
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    assert "stopped" in out
    assert not _processes_under(tmp_path / "bed")
