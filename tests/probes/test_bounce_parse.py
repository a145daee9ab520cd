"""Reading bounces: each sender's format, what is not our bounce, and hostile input."""

from __future__ import annotations

import contextlib
import time

import pytest

from mailcanary.diagnosis import Bounced, classify
from mailcanary.probes.inbound.finder import FETCH_LIMIT
from mailcanary.probes.mailbox.bounce import Bounce, parse_bounce
from tests.helpers import bounce_samples as s
from tests.helpers import hostile_mail

# sample -> (status, remote_mta, words of the diagnostic, command, class/reason)
FORMATS = {
    "postfix": (s.POSTFIX, "5.1.1", "mx.remote.test", "550 5.1.1 <unknown@remote.test>: "
                "Recipient address rejected: User unknown", "RCPT", "recipient_rejected"),
    "gmail": (s.GMAIL, "5.1.1", "gmail-smtp-in.l.google.test", "550-5.1.1 The email account "
              "that you tried to reach does not exist.", "RCPT", "recipient_rejected"),
    "microsoft": (s.MICROSOFT, "5.1.10", "AM0PR01MB1234.eurprd01.prod.outlook.test",
                  "550 5.1.10 RESOLVER.ADR.RecipientNotFound", "RCPT", "recipient_rejected"),
    "exchange prose": (s.EXCHANGE_PROSE, "5.1.1", "EXCH01.corp.test",
                       "550 5.1.1 RESOLVER.ADR.RecipNotFound; not found", "RCPT",
                       "recipient_rejected"),
    "exim": (s.EXIM, "5.1.1", "mx2.example.org", "550 5.1.1 <gone@example.org>: Recipient "
             "address rejected: User unknown in virtual mailbox table", "RCPT",
             "recipient_rejected"),
    "qmail": (s.QMAIL, "5.2.2", "192.0.2.60", "552 5.2.2 <full@example.net>: Mailbox full",
              "RCPT", "mailbox_full"),
    "yahoo": (s.YAHOO, "", "", "554 delivery error: dd This user doesn't have a yahoo.test "
              "account", "RCPT", "recipient_rejected"),
    "global (RFC 6533)": (s.GLOBAL, "5.7.1", "mx.example.jp", "550 5.7.1 受信拒否", "RCPT",
                          "policy_rejected"),
}


@pytest.mark.parametrize("name", list(FORMATS))
def test_formats(name: str) -> None:
    raw, status, remote, words, command, reason = FORMATS[name]
    bounce = parse_bounce(raw, s.TOKEN)
    assert bounce is not None, name
    assert bounce.failed
    assert (bounce.status, bounce.remote_mta, bounce.command) == (status, remote, command)
    assert bounce.diagnostic.startswith(words), bounce.diagnostic
    fail = classify(Bounced(bounce.command, bounce.reply_code, bounce.status,
                            bounce.diagnostic, bounce.recipient), "deliver")
    assert fail.reason == reason, (name, fail)
    assert fail.detail == bounce.diagnostic


def test_multiline_diagnostic_is_folded() -> None:
    bounce = parse_bounce(s.GMAIL, s.TOKEN)
    assert bounce is not None
    assert "\n" not in bounce.diagnostic and "  " not in bounce.diagnostic
    assert bounce.diagnostic.endswith("gsmtp")
    assert bounce.recipient == "nobody@gmail.test"


def test_yahoo_names_the_command_it_answered() -> None:
    bounce = parse_bounce(s.YAHOO.replace(b"[RCPT_TO]", b"[BODY]"), s.TOKEN)
    assert bounce is not None and bounce.command == "DATA"


def test_a_delay_warning_is_no_failure() -> None:
    bounce = parse_bounce(s.DELAYED, s.TOKEN)
    assert bounce is not None and not bounce.failed and bounce.action == "delayed"


@pytest.mark.parametrize("raw", [s.FOREIGN, s.POSTFIX.replace(s.TOKEN.encode(), b"x" * 32)])
def test_someone_elses_bounce_is_not_ours(raw: bytes) -> None:
    assert parse_bounce(raw, s.TOKEN) is None


def test_the_canary_itself_is_no_bounce() -> None:
    canary = (s.CANARY_HEADERS.format(to="alice@example.test") + "\r\nThis is an automated "
              f"delivery test sent by mailcanary.\r\nToken: {s.TOKEN}\r\n").encode()
    assert parse_bounce(canary, s.TOKEN) is None


def test_prose_without_a_reply_is_no_bounce() -> None:
    reply = (b"From: bob@example.test\r\nSubject: Re: mailcanary automated delivery test\r\n"
             b"\r\nWhy do I get this? Token: " + s.TOKEN.encode() + b"\r\n")
    assert parse_bounce(reply, s.TOKEN) is None


def test_as_json_is_the_contracts_shape() -> None:
    bounce = parse_bounce(s.POSTFIX, s.TOKEN)
    assert bounce is not None
    assert set(bounce.as_json()) == {"status", "remote_mta", "diagnostic"}
    assert Bounce("failed", "", "", "status 5.0.0").reply_code == 550


def test_deep_nesting_is_no_bounce_not_a_crash() -> None:
    raw = hostile_mail.nested(178_000).replace(b"Subject:", b"X-Token: " + s.TOKEN.encode()
                                               + b"\r\nSubject:", 1)
    assert parse_bounce(raw, s.TOKEN) is None


def _cpu(raw: bytes) -> float:
    best = float("inf")
    for _ in range(3):
        start = time.process_time()
        with contextlib.suppress(ValueError):
            parse_bounce(raw, s.TOKEN)
        best = min(best, time.process_time() - start)
    return best


def _hostile(size: int, unit: bytes) -> bytes:
    body = (unit * (size // len(unit)))[:size]
    return (b"From: MAILER-DAEMON@x\r\nSubject: Undelivered Mail\r\nX-T: " + s.TOKEN.encode()
            + b"\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; boundary=\"b\"\r\n\r\n"
            b"--b\r\nContent-Type: text/plain\r\n\r\n" + body + b"\r\n--b\r\n"
            b"Content-Type: message/delivery-status\r\n\r\n" + body + b"\r\n--b--\r\n")


@pytest.mark.parametrize("unit", [b"Remote host said: ", b"Giving up on ", b" said: 550",
                                  b"\r\n\r\n", b"Diagnostic-Code: smtp; 550 ", b"host x[",
                                  b"SMTP error from remote mail server after ", b"a" * 80])
def test_parse_time_is_linear(unit: bytes) -> None:
    """Twice the size takes about twice the CPU (3x allowed; quadratic would be 4x)."""
    parse_bounce(_hostile(4096, unit), s.TOKEN)
    small, big = _cpu(_hostile(FETCH_LIMIT // 2, unit)), _cpu(_hostile(FETCH_LIMIT, unit))
    assert big < 0.02 or big / small < 3.0, (unit, small, big)


def test_eight_bit_text_in_a_multipart_reads_as_written() -> None:
    """Postfix and Japanese senders send UTF-8 unencoded (8bit) inside multiparts: the
    walker once decoded the container as ASCII and every such character became U+FFFD."""
    from mailcanary.probes.inbound.message import readable  # noqa: PLC0415

    assert "宛先のメールアドレス" in readable(s.GLOBAL).body
