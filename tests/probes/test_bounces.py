"""Bounces from the real Postfix: a test domain is relayed to a server that refuses as
carriers do, Postfix writes the DSN to the sender, and the round trip ends on it."""

from __future__ import annotations

import asyncio
import imaplib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailcanary.config import load_config
from mailcanary.probes.runner import run_probe
from mailcanary.testbed import ensure_installed
from mailcanary.testbed.deliverability import DeliverabilityBed
from tests.helpers.carrier import CarrierHandler, carrier_server
from tests.helpers.support import account, endpoint, password_file, write_config

DEADLINE = 20.0


@pytest.fixture(scope="module")
def carrier() -> Iterator[tuple[int, CarrierHandler]]:
    with carrier_server() as server:
        yield server


@pytest.fixture(scope="module")
def bed(
    tmp_path_factory: pytest.TempPathFactory, carrier: tuple[int, CarrierHandler]
) -> Iterator[DeliverabilityBed]:
    ensure_installed()
    port, _ = carrier
    bed = DeliverabilityBed(tmp_path_factory.mktemp("bounces"),
                            relays={"docomo.ne.jp": port, "remote.test": port})
    bed.start()
    try:
        yield bed
    finally:
        bed.stop()


def make_config(bed: DeliverabilityBed, tmp: Path, to: str, *, sender_imap: bool = True) -> Path:
    """alice sends to `to` (an address the carrier refuses); bob's mailbox is the `to`
    account's IMAP (the canary never reaches it)."""
    pw_alice = password_file(tmp, bed.user("alice").password, name="pw-alice")
    pw_bob = password_file(tmp, bed.user("bob").password, name="pw-bob")
    imap = endpoint(bed.host, bed.imaps_port, "tls")
    alice = account("alice", password_file=pw_alice, ca_file=bed.ca_pem, timeout="10s",
                    imap=imap if sender_imap else None,
                    smtp=endpoint(bed.host, bed.submission_port, "starttls"))
    far = account("far", password_file=pw_bob, ca_file=bed.ca_pem, timeout="10s",
                  address=to, username="bob", imap=imap)
    route = (f'\n[[routes]]\nname = "out"\nfrom = "alice"\nto = "far"\n'
             f'deadline = "{DEADLINE:g}s"\nslo = "5s"\n')
    return write_config(tmp, alice, far, extra=route)


def messages(bed: DeliverabilityBed, user: str, folder: str = "INBOX") -> list[str]:
    out = bed.doveadm("search", "-u", user, "mailbox", folder, "ALL").stdout
    return [line for line in out.splitlines() if line.strip()]


def append(bed: DeliverabilityBed, user: str, message: bytes) -> None:
    imap = imaplib.IMAP4(bed.host, bed.imap_port)
    try:
        imap.login(user, bed.user(user).password)
        typ, data = imap.append("INBOX", None, None, message)
        assert typ == "OK", data
    finally:
        imap.logout()


# Someone else's bounce (another message, no canary token) and ordinary mail: never touched.
FOREIGN_DSN = (
    b"From: MAILER-DAEMON@mail.example.test (Mail Delivery System)\r\n"
    b"To: alice@example.test\r\nSubject: Undelivered Mail Returned to Sender\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/report; report-type=delivery-status; boundary="b1"\r\n\r\n'
    b"--b1\r\nContent-Type: text/plain\r\n\r\nI'm sorry to have to inform you...\r\n"
    b"--b1\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; x\r\n\r\n"
    b"Final-Recipient: rfc822; unknown@remote.test\r\nAction: failed\r\nStatus: 5.1.1\r\n"
    b"Diagnostic-Code: smtp; 550 5.1.1 User unknown\r\n\r\n"
    b"--b1\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: <someone.else@x>\r\n"
    b"Subject: a letter\r\n\r\n--b1--\r\n"
)
ORDINARY = b"From: carol@example.test\r\nTo: alice@example.test\r\nSubject: hi\r\n\r\nhello\r\n"

CASES = [
    # (recipient, class, reason, words in the detail, status)
    ("filter@docomo.ne.jp", "rejected", "recipient_rejected", "550 Unknown user", "5.0.0"),
    ("policy@remote.test", "rejected", "policy_rejected", "domain filter", "5.7.1"),
    ("unknown@remote.test", "rejected", "recipient_rejected", "User unknown", "5.1.1"),
    ("full@remote.test", "quota", "mailbox_full", "Mailbox full", "5.2.2"),
    ("spam@remote.test", "rejected", "policy_rejected", "rejected as spam", "5.7.1"),
    ("defer@remote.test", "server", "unavailable", "Temporary local problem", "4.3.0"),
]


@pytest.mark.parametrize(("to", "cls", "reason", "words", "status"), CASES)
async def test_bounce_ends_the_round_trip(
    bed: DeliverabilityBed, carrier: tuple[int, CarrierHandler], tmp_path: Path,
    to: str, cls: str, reason: str, words: str, status: str,
) -> None:
    await asyncio.to_thread(append, bed, "alice", FOREIGN_DSN)
    await asyncio.to_thread(append, bed, "alice", ORDINARY)
    before = messages(bed, "alice")
    config = load_config(make_config(bed, tmp_path, to))
    started = time.monotonic()
    result = await run_probe("roundtrip", "out", config)
    took = time.monotonic() - started
    row = result.as_json(transcript=True)
    assert not result.ok, row
    assert (row["class"], row["reason"], row["phase"]) == (cls, reason, "deliver"), row
    assert words in row["detail"], row
    assert row["placement"] == "missing"
    assert row["bounce"]["status"] == status, row["bounce"]
    assert row["bounce"]["remote_mta"] == "127.0.0.1", row["bounce"]
    assert words in row["bounce"]["diagnostic"]
    assert took < DEADLINE - 5, f"{took:.1f} s: the bounce did not end the wait"
    left = messages(bed, "alice")
    if reason == "unavailable":  # a 4xx: Postfix's delay notice came first and stays
        assert len(left) == len(before) + 1 and "still waiting" in " ".join(row["transcript"])
        left = left[:len(before)]
    assert left == before, "only the canary's bounce may be deleted"
    assert to in carrier[1].refused
    bed.doveadm("expunge", "-u", "alice", "mailbox", "INBOX", "ALL")


async def test_carrier_domain_filter_hint(bed: DeliverabilityBed, tmp_path: Path) -> None:
    """docomo answers 受信拒否 with "550 Unknown user": the hint says what to ask for."""
    config = load_config(make_config(bed, tmp_path, "filter@docomo.ne.jp"))
    result = await run_probe("roundtrip", "out", config)
    assert result.reason == "recipient_rejected"
    assert "受信拒否" in result.hint and "docomo.ne.jp" in result.hint, result.hint
    assert messages(bed, "alice") == []


async def test_sender_without_imap_waits_for_the_deadline(
    bed: DeliverabilityBed, tmp_path: Path
) -> None:
    """No IMAP on the sender: today's behaviour, `lost` at the deadline, bounce left."""
    path = make_config(bed, tmp_path, "unknown@remote.test", sender_imap=False)
    path.write_text(path.read_text().replace(f'deadline = "{DEADLINE:g}s"', 'deadline = "6s"'))
    result = await run_probe("roundtrip", "out", load_config(path))
    row = result.as_json()
    assert (row["reason"], row["placement"]) == ("lost", "missing"), row
    assert "bounce" not in row
    assert len(messages(bed, "alice")) == 1  # the bounce came and stays: nobody looked
    bed.doveadm("expunge", "-u", "alice", "mailbox", "INBOX", "ALL")
