"""The POP3 login probe against the test bed's real Dovecot POP3 (dovecot-pop3d): STLS,
implicit TLS, a listener that refuses plaintext before TLS (127.0.0.2), bad certificates,
and `--account` selecting the account's imap, smtp and pop3 probes together."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from mailcanary.testbed import MailTestBed
from mailcanary.testbed.pop3 import PRIVATE_HOST
from tests.helpers.support import (
    account,
    check_json,
    cli,
    endpoint,
    password_file,
    write_config,
)

pytestmark = pytest.mark.testbed


def pop3_config(bed: MailTestBed, tmp: Path, pop3: str, *, password: str | None = None,
                name: str = "alice", **endpoints: str) -> Path:
    user = bed.user(name)
    pw = password_file(tmp, password if password is not None else user.password, name=name)
    return write_config(tmp, account(name, username=user.name, password_file=pw,
                                     ca_file=bed.ca_pem, pop3=pop3, **endpoints))


@pytest.mark.parametrize("security", ["tls", "starttls"])
async def test_healthy_pop3_login(testbed: MailTestBed, tmp_path: Path, security: str) -> None:
    port = testbed.pop3s_port if security == "tls" else testbed.pop3_port
    cfg = pop3_config(testbed, tmp_path, endpoint(testbed.host, port, security))
    code, [row], output = await check_json(cfg, "--transcript")
    assert code == 0, output
    assert (row["probe"], row["ok"], row["reason"], row["phase"]) == ("pop3", True, "ok", None)
    assert row["server"] == f"{testbed.host}:{port}"
    expected = {"dns", "connect", "tls", "greeting", "auth", "select"}
    expected |= {"starttls"} if security == "starttls" else set()
    assert set(row["phases"]) == expected
    assert row["tls"]["version"] in ("TLSv1.2", "TLSv1.3")
    assert "suggestion" not in row
    transcript = "\n".join(row["transcript"])
    assert "C: AUTH PLAIN ***" in transcript and "C: STAT" in transcript
    assert ("C: STLS" in transcript) is (security == "starttls")
    assert testbed.user("alice").password not in output


async def test_wrong_password(testbed: MailTestBed, tmp_path: Path) -> None:
    wrong = "Wr0ng-Pop3-Canary-5512"
    cfg = pop3_config(testbed, tmp_path, endpoint(testbed.host, testbed.pop3s_port, "tls"),
                      password=wrong)
    code, [row], output = await check_json(cfg, "--transcript")
    assert code == 1
    assert (row["class"], row["reason"], row["phase"]) == ("auth", "invalid_credentials", "auth")
    assert row["detail"] == "-ERR [AUTH] Authentication failed."
    assert "suggestion" not in row  # no other setting fixes a wrong password
    assert wrong not in output
    code, out, err = await cli("--log-level", "debug", "check", "--config", str(cfg),
                               "--transcript")
    assert code == 1 and "invalid_credentials" in out
    blob = base64.b64encode(f"\0alice\0{wrong}".encode()).decode()
    for text in (out, err):
        assert wrong not in text and blob not in text
    for log in testbed.log_paths:
        assert wrong not in log.read_text(errors="replace")


async def test_plaintext_refused_before_tls(testbed: MailTestBed, tmp_path: Path) -> None:
    """On 127.0.0.2 Dovecot does not count the connection as secured: CAPA has no USER and
    no SASL PLAIN, so the probe refuses to send the password and says tls_required; the
    doctor finds STLS on the same port (the certificate names 127.0.0.2)."""
    port = testbed.pop3_private_port
    cfg = pop3_config(testbed, tmp_path, endpoint(PRIVATE_HOST, port, "none"))
    code, [row], output = await check_json(cfg, "--transcript")
    assert code == 1, output
    assert (row["class"], row["reason"], row["phase"]) == ("tls", "tls_required", "auth")
    assert not any("C: USER" in line or "C: AUTH" in line for line in row["transcript"])
    assert row["suggestion"] == {"port": port, "security": "starttls"}
    assert f'pop3 = {{ host = "{PRIVATE_HOST}", port = {port}, security = "starttls" }}' in (
        row["hint"])
    ok_cfg = pop3_config(testbed, tmp_path, endpoint(PRIVATE_HOST, port, "starttls"))
    code, [row], output = await check_json(ok_cfg)
    assert code == 0 and row["ok"] is True, output


@pytest.mark.parametrize(("kind", "reason"), [
    ("expired", "cert_expired"), ("wrong_host", "hostname_mismatch"),
    ("self_signed", "cert_untrusted"),
])
@pytest.mark.parametrize("security", ["tls", "starttls"])
async def test_bad_certificates(testbed: MailTestBed, tmp_path: Path, kind: str, reason: str,
                                security: str) -> None:
    pop3s, pop3 = testbed.pop3_fault_ports(kind)
    port = pop3s if security == "tls" else pop3
    cfg = pop3_config(testbed, tmp_path, endpoint(testbed.host, port, security))
    code, [row], output = await check_json(cfg)
    assert code == 1, output
    assert (row["class"], row["reason"], row["phase"]) == ("tls", reason, "tls")
    assert "suggestion" not in row  # a bad certificate is bad on every port


async def test_account_selects_imap_smtp_and_pop3(testbed: MailTestBed, tmp_path: Path) -> None:
    user = testbed.user("bob")
    pw = password_file(tmp_path, user.password, name="bob")
    cfg = write_config(
        tmp_path,
        account("bob", username="bob", password_file=pw, ca_file=testbed.ca_pem,
                imap=endpoint(testbed.host, testbed.imaps_port, "tls"),
                smtp=endpoint(testbed.host, testbed.submission_port, "starttls"),
                pop3=endpoint(testbed.host, testbed.pop3s_port, "tls")),
        account("other", username="alice", password_file=pw, ca_file=testbed.ca_pem,
                pop3=endpoint(testbed.host, testbed.pop3s_port, "tls")),
    )
    code, rows, output = await check_json(cfg, "--account", "bob")
    assert code == 0, output
    # check prints results as they finish
    rows = sorted(rows, key=lambda r: ("imap", "smtp", "pop3").index(r["probe"]))
    assert [(r["probe"], r["target"]) for r in rows] == [
        ("imap", "bob"), ("smtp", "bob"), ("pop3", "bob")]
    assert [r["server"] for r in rows] == [
        f"{testbed.host}:{testbed.imaps_port}", f"{testbed.host}:{testbed.submission_port}",
        f"{testbed.host}:{testbed.pop3s_port}"]
