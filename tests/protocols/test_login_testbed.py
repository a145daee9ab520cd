"""The login probes against the real Dovecot and Postfix of the test bed."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from mailcanary.config import load_config
from mailcanary.probes.runner import run_probe
from mailcanary.testbed import MailTestBed
from tests.helpers.support import account, check_json, cli, endpoint, password_file, write_config

pytestmark = pytest.mark.testbed


def bed_account(
    bed: MailTestBed,
    tmp: Path,
    name: str = "alice",
    *,
    password: str | None = None,
    imap: str | None = None,
    smtp: str | None = None,
) -> Path:
    user = bed.user(name)
    pw = password_file(tmp, password if password is not None else user.password, name=name)
    return write_config(
        tmp,
        account(
            name,
            username=user.name,
            password_file=pw,
            ca_file=bed.ca_pem,
            imap=imap,
            smtp=smtp,
        ),
    )


@pytest.mark.parametrize(
    ("proto", "security"),
    [("imap", "tls"), ("imap", "starttls"), ("smtp", "tls"), ("smtp", "starttls")],
)
async def test_healthy_login(
    testbed: MailTestBed, tmp_path: Path, proto: str, security: str
) -> None:
    port = {
        ("imap", "tls"): testbed.imaps_port,
        ("imap", "starttls"): testbed.imap_port,
        ("smtp", "tls"): testbed.submissions_port,
        ("smtp", "starttls"): testbed.submission_port,
    }[(proto, security)]
    cfg = bed_account(testbed, tmp_path, **{proto: endpoint(testbed.host, port, security)})
    code, [row], output = await check_json(cfg)
    assert code == 0, output
    assert row["ok"] is True and row["class"] == "ok" and row["reason"] == "ok"
    assert row["phase"] is None
    expected = {"dns", "connect", "tls", "greeting", "auth"}
    expected |= {"starttls"} if security == "starttls" else set()
    expected |= {"select"} if proto == "imap" else set()
    assert set(row["phases"]) == expected
    assert all(v >= 0 for v in row["phases"].values())
    assert row["tls"]["version"] in ("TLSv1.2", "TLSv1.3")
    assert "mailcanary test bed CA" in row["tls"]["issuer"]
    assert row["tls"]["not_after"].endswith("Z")


@pytest.mark.parametrize("proto", ["imap", "smtp"])
async def test_wrong_password_never_leaks(testbed: MailTestBed, tmp_path: Path, proto: str) -> None:
    wrong = "Wr0ng-Pass-Canary-4411"
    port = testbed.imaps_port if proto == "imap" else testbed.submission_port
    security = "tls" if proto == "imap" else "starttls"
    cfg = bed_account(
        testbed, tmp_path, password=wrong, **{proto: endpoint(testbed.host, port, security)}
    )
    code, [row], output = await check_json(cfg, "--transcript")
    assert code == 1
    assert (row["class"], row["reason"], row["phase"]) == ("auth", "invalid_credentials", "auth")
    assert "AUTHENTICATIONFAILED" in row["detail"] or "535 5.7.8" in row["detail"]
    assert any("***" in line for line in row["transcript"])
    # Every output a person or a log shipper could see: JSON, transcript, debug logs, table.
    _, table_out, table_err = await cli(
        "--log-level", "debug", "check", "--config", str(cfg), "--transcript"
    )
    everything = output + table_out + table_err
    for log in testbed.log_paths:
        everything += log.read_text(errors="replace")
    blob = base64.b64encode(f"\0alice\0{wrong}".encode()).decode()
    for secret in (wrong, blob, base64.b64encode(wrong.encode()).decode()):
        assert secret not in everything


async def test_in_process_result_matches(testbed: MailTestBed, tmp_path: Path) -> None:
    cfg = bed_account(
        testbed, tmp_path, imap=endpoint(testbed.host, testbed.imaps_port, "tls")
    )
    result = await run_probe("imap", "alice", load_config(cfg))
    assert result.ok, result.as_json(transcript=True)
    assert result.tls is not None and result.tls.not_after_timestamp is not None


@pytest.mark.parametrize(
    ("kind", "reason"),
    [("expired", "cert_expired"), ("wrong_host", "hostname_mismatch"),
     ("self_signed", "cert_untrusted")],
)
@pytest.mark.parametrize("security", ["tls", "starttls"])
async def test_certificate_faults_on_real_dovecot(
    testbed: MailTestBed, tmp_path: Path, kind: str, reason: str, security: str
) -> None:
    imaps, imap_starttls = testbed.tls_fault_ports(kind)
    port = imaps if security == "tls" else imap_starttls
    cfg = bed_account(testbed, tmp_path, imap=endpoint(testbed.host, port, security))
    code, [row], output = await check_json(cfg)
    assert code == 1, output
    assert (row["class"], row["reason"], row["phase"]) == ("tls", reason, "tls"), row


async def test_smtp_plaintext_to_submission_is_tls_required(
    testbed: MailTestBed, tmp_path: Path
) -> None:
    """Postfix offers AUTH only after STARTTLS (smtpd_tls_auth_only)."""
    cfg = bed_account(
        testbed, tmp_path, smtp=endpoint(testbed.host, testbed.submission_port, "none")
    )
    _, [row], _ = await check_json(cfg)
    assert (row["class"], row["reason"], row["phase"]) == ("tls", "tls_required", "auth")


async def test_imaps_port_with_starttls_setting_times_out_in_greeting(
    testbed: MailTestBed, tmp_path: Path
) -> None:
    """A plaintext client on an implicit-TLS port: the server waits for a ClientHello."""
    user = testbed.user("alice")
    pw = password_file(tmp_path, user.password)
    cfg = write_config(
        tmp_path,
        account("alice", username="alice", password_file=pw, ca_file=testbed.ca_pem,
                timeout="1.5s", imap=endpoint(testbed.host, testbed.imaps_port, "starttls")),
    )
    _, [row], _ = await check_json(cfg)
    assert (row["class"], row["reason"], row["phase"]) == ("timeout", "timeout", "greeting")
    assert "tls" in row["hint"]


async def test_mixed_accounts_exit_code_and_table(testbed: MailTestBed, tmp_path: Path) -> None:
    alice = testbed.user("alice")
    cfg = write_config(
        tmp_path,
        account("alice", username="alice", password_file=password_file(tmp_path, alice.password,
                "a"), ca_file=testbed.ca_pem,
                imap=endpoint(testbed.host, testbed.imaps_port, "tls"),
                smtp=endpoint(testbed.host, testbed.submission_port, "starttls")),
        account("bob", username="bob", password_file=password_file(tmp_path, "nope", "b"),
                ca_file=testbed.ca_pem, imap=endpoint(testbed.host, testbed.imaps_port, "tls")),
    )
    code, out, _ = await cli("check", "--config", str(cfg))
    assert code == 1
    assert "auth/invalid_credentials" in out and "2 ok, 1 failed" in out
    code, rows, _ = await check_json(cfg, "--account", "alice")
    assert code == 0 and {(r["probe"], r["target"]) for r in rows} == {
        ("imap", "alice"), ("smtp", "alice")
    }
