"""Round trips that end in a POP3-only mailbox on the real test bed: found by UIDL/TOP,
placement inbox, deleted with DELE (nothing else touched); lost when it never arrives."""

from __future__ import annotations

import smtplib
from pathlib import Path

import pytest

from mailcanary.config import load_config
from mailcanary.probes.roundtrip.state import CanaryStore
from mailcanary.probes.runner import run_probe
from mailcanary.testbed import BLACKHOLE_ADDRESS, MailTestBed
from tests.helpers.faults import Script, fake_server
from tests.helpers.support import account, check_json, endpoint, password_file, write_config

pytestmark = pytest.mark.testbed


def config(bed: MailTestBed, tmp: Path, *, to_address: str, deadline: str) -> Path:
    alice = password_file(tmp, bed.user("alice").password, name="alice")
    carol = password_file(tmp, bed.user("carol").password, name="carol")
    return write_config(
        tmp,
        account("alice", password_file=alice, ca_file=bed.ca_pem, timeout="10s",
                smtp=endpoint(bed.host, bed.submission_port, "starttls")),
        account("carol-pop", username="carol", address=to_address, password_file=carol,
                ca_file=bed.ca_pem, timeout="10s",
                pop3=endpoint(bed.host, bed.pop3s_port, "tls")),
        extra=(f'\n[[routes]]\nname = "to-pop"\nfrom = "alice"\nto = "carol-pop"\n'
               f'deadline = "{deadline}"\nslo = "30s"\n'),
    )


def messages(bed: MailTestBed, *query: str) -> list[str]:
    out = bed.doveadm("search", "-u", "carol", "mailbox", "INBOX", *query).stdout
    return [line for line in out.splitlines() if line.strip()]


async def test_pop3_round_trip(testbed: MailTestBed, tmp_path: Path) -> None:
    with smtplib.SMTP(testbed.host, testbed.smtp_port) as smtp:
        smtp.sendmail("someone@example.test", ["carol@example.test"],
                      b"Subject: pop3-bystander\r\n\r\nnot a canary\r\n")
    cfg = config(testbed, tmp_path, to_address="carol@example.test", deadline="20s")
    try:
        code, [row], output = await check_json(cfg, "--route", "to-pop", "--transcript")
        assert code == 0, output
        assert (row["probe"], row["ok"], row["placement"]) == ("roundtrip", True, "inbox")
        assert 0 < row["delivery_seconds"] < 10
        assert set(row["auth_results"]) == {"spf", "dkim", "dmarc"}
        assert {"select", "send", "deliver", "cleanup"} <= set(row["phases"])
        assert any("C: UIDL" in line for line in row["transcript"])
        assert any("C: DELE" in line for line in row["transcript"])
        assert messages(testbed, "HEADER", "X-Mailcanary-Token", "") == []  # deleted
        assert len(messages(testbed, "HEADER", "Subject", "pop3-bystander")) == 1  # untouched
        assert testbed.user("carol").password not in output
    finally:
        testbed.doveadm("expunge", "-u", "carol", "mailbox", "INBOX", "HEADER", "Subject",
                        "pop3-bystander")


async def test_pop3_round_trip_lost(testbed: MailTestBed, tmp_path: Path) -> None:
    """The canary goes to an address Postfix discards: never in carol's maildrop."""
    cfg = config(testbed, tmp_path, to_address=BLACKHOLE_ADDRESS, deadline="1s")
    code, [row], output = await check_json(cfg, "--route", "to-pop")
    assert code == 1, output
    assert (row["class"], row["reason"], row["phase"], row["placement"]) == (
        "delivery", "lost", "deliver", "missing")
    assert "POP3 maildrop" in row["detail"]


async def test_pop3_maildrop_down_while_polling_leaves_no_canary_in_flight(
    testbed: MailTestBed, tmp_path: Path
) -> None:
    """The maildrop answers the baseline UIDL, then goes down: the run fails while polling,
    and its record does not stay in flight forever (the sweep reads IMAP folders only)."""
    script = Script("pop3", login_reply="+OK", down_after=1)
    async with fake_server(script) as port:
        cfg = config(testbed, tmp_path, to_address=BLACKHOLE_ADDRESS, deadline="5s")
        cfg.write_text(cfg.read_text().replace(
            f"port = {testbed.pop3s_port}, security = \"tls\"",
            f"port = {port}, security = \"none\", allow_insecure_auth = true"))
        config_ = load_config(cfg)
        result = await run_probe("roundtrip", "to-pop", config_)
    assert (result.reason, result.phase) == ("unavailable", "greeting"), result.as_json()
    records = CanaryStore(config_.daemon.state_dir).all()
    assert [r.status for r in records] == ["lost"]
