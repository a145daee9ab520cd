"""The pure parts of a round trip: folder-name codec, LIST parsing, Junk discovery,
the canary message and the headers we read back."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mailcanary.probes.mailbox.headers import auth_results, parse_headers, received_hops
from mailcanary.probes.mailbox.watcher import (
    CAP_POLLING,
    CAP_WITH_IDLE,
    FIRST_CHECK,
    next_gap,
)
from mailcanary.probes.roundtrip.canary import new_canary
from mailcanary.protocols import mutf7
from mailcanary.protocols.mailboxes import junk_folders, parse_list

NAMES = [
    ("INBOX", "INBOX"),
    ("迷惑メール", "&j,dg0TDhMPww6w-"),
    ("Entwürfe", "Entw&APw-rfe"),
    ("a&b", "a&-b"),
    ("~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"),  # RFC 3501's example
    ("[Gmail]/Spam", "[Gmail]/Spam"),
    ("Junk E-mail", "Junk E-mail"),
    ("😀 emoji", "&2D3eAA- emoji"),
]


@pytest.mark.parametrize(("text", "wire"), NAMES)
def test_mutf7_round_trip(text: str, wire: str) -> None:
    assert mutf7.encode(text) == wire
    assert mutf7.decode(wire) == text


@pytest.mark.parametrize("bad", ["&j,dg0TDhMPww6w", "caf\u00e9", "&AGE-", "&!!!-"])
def test_mutf7_rejects_bad_names(bad: str) -> None:
    with pytest.raises(mutf7.MUtf7Error):
        mutf7.decode(bad)


def test_list_parsing_and_special_use() -> None:
    lines: list[bytes | bytearray] = [
        b'(\\HasNoChildren \\Junk) "." Junk',
        b'(\\HasNoChildren) "." INBOX',
        b'(\\HasNoChildren) "/" "Junk E-mail"',
        b'(\\Noselect \\HasChildren) "/" "[Gmail]"',
        b'(\\HasNoChildren) "/" {16}',
        bytearray(b"&j,dg0TDhMPww6w-"),
        b'(\\HasNoChildren) NIL "quoted \\"name\\""',
    ]
    folders = parse_list(lines)
    assert [f.name for f in folders] == [
        "Junk", "INBOX", "Junk E-mail", "[Gmail]", "迷惑メール", 'quoted "name"'
    ]
    assert folders[3].selectable is False
    assert [f.name for f in junk_folders(folders)] == ["Junk"]
    by_name = junk_folders(folders, use_special_use=False)
    assert [f.name for f in by_name] == ["Junk", "Junk E-mail", "迷惑メール"]
    assert by_name[2].wire == "&j,dg0TDhMPww6w-"


def test_junk_by_name_under_inbox_and_gmail() -> None:
    folders = parse_list([
        b'(\\HasNoChildren) "." INBOX.Spam',
        b'(\\HasNoChildren) "." Projects.Spam',
        b'(\\HasNoChildren) "/" "[Gmail]/Spam"',
        b'(\\HasNoChildren) "/" "Bulk Mail"',
    ])
    assert [f.name for f in junk_folders(folders)] == ["INBOX.Spam", "[Gmail]/Spam", "Bulk Mail"]


def test_canary_message_is_small_and_honest() -> None:
    canary = new_canary("a-to-b", "a@example.test", "b@example.test", "inst1",
                        datetime(2026, 1, 2, 3, 4, 5, 123456, UTC))
    raw = canary.message({"X-Test": "yes"})
    headers = parse_headers(raw)
    assert headers["X-Mailcanary-Token"] == canary.token
    assert canary.token in headers["Message-ID"]
    assert headers["X-Mailcanary-Installation"] == "inst1"
    assert headers["X-Mailcanary-Route"] == "a-to-b"
    assert headers["X-Mailcanary-Sent"] == "2026-01-02T03:04:05.123456Z"
    assert "automated delivery test" in headers["Subject"]
    assert headers["Auto-Submitted"] == "auto-generated"
    assert headers["X-Test"] == "yes"
    assert b"http" not in raw.lower() and len(raw) < 1500
    with pytest.raises(ValueError, match="not a valid header"):
        canary.message({"Bad: Name": "x"})


def test_authentication_results() -> None:
    raw = (
        b"Authentication-Results: mx.google.com;\r\n"
        b"       dkim=pass header.i=@example.test header.s=s1;\r\n"
        b"       spf=softfail (google.com: domain of transitioning x) smtp.mailfrom=x;\r\n"
        b"       dmarc=fail (p=NONE sp=NONE dis=NONE) header.from=example.test\r\n"
        b"Authentication-Results: relay.example; spf=pass\r\n\r\n"
    )
    assert auth_results(parse_headers(raw)) == {"spf": "softfail", "dkim": "pass",
                                                "dmarc": "fail"}
    assert auth_results(parse_headers(raw), "relay.example")["spf"] == "pass"
    assert auth_results(parse_headers(b"Subject: x\r\n\r\n")) == {
        "spf": "none", "dkim": "none", "dmarc": "none"
    }


def test_received_hops_oldest_first() -> None:
    raw = (
        b"Received: from mail.example.test by mx.example.test (Postfix) with LMTP;\r\n"
        b" Sun, 22 Nov 2026 09:00:01 +0000\r\n"
        b"Received: from client by mail.example.test with ESMTPSA id 1;"
        b" Sun, 22 Nov 2026 09:00:00 +0000\r\n\r\n"
    )
    hops = received_hops(parse_headers(raw))
    assert [h.by for h in hops] == ["mail.example.test", "mx.example.test"]
    assert hops[1].at == datetime(2026, 11, 22, 9, 0, 1, tzinfo=UTC)


def test_backoff_is_quick_then_gentle_and_capped() -> None:
    gaps = [FIRST_CHECK]
    for _ in range(40):
        gaps.append(next_gap(gaps[-1], idle=True))
    assert gaps[:5] == pytest.approx([0.005, 0.01, 0.02, 0.04, 0.08])
    assert max(gaps) == CAP_WITH_IDLE
    assert next_gap(100.0, idle=False) == CAP_POLLING
