"""The POP3 reply classifier as a pure table: providers' words first, then the RFC 2449 /
3206 response codes, then the command. Gmail's replies are real Gmail words (providers notes);
Dovecot's come from Dovecot 2.3."""

from __future__ import annotations

import pytest

from mailcanary.diagnosis import CLASS_OF, Pop3ReplyError, Where, classify
from mailcanary.diagnosis.pop3 import classify_pop3_reply, pop3_code

POP3_REPLIES = [
    # Providers' words name the cause, whatever the code says.
    ("PASS", "-ERR [AUTH] Application-specific password required: "
     "https://support.google.com/accounts/answer/185833", "app_password_required"),
    ("AUTH", "-ERR [AUTH] Application-specific password required", "app_password_required"),
    ("STAT", "-ERR [SYS/PERM] Your account is not enabled for POP access. Please visit your "
     "Gmail settings page and enable your account for POP access.", "protocol_disabled"),
    ("PASS", "-ERR [SYS/PERM] POP access is disabled for your domain.", "protocol_disabled"),
    ("PASS", "-ERR [AUTH] Web login required: https://support.google.com/mail/answer/78754",
     "web_login_required"),
    ("PASS", "-ERR [AUTH] Too many bad auth attempts.", "account_locked"),
    ("GREETING", "-ERR Too many connections from your IP", "too_many_connections"),
    # Dovecot before TLS (its words, under [AUTH]).
    ("USER", "-ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) "
     "connections.", "tls_required"),
    # RFC 3206 / 2449 codes.
    ("PASS", "-ERR [AUTH] Authentication failed.", "invalid_credentials"),
    ("AUTH", "-ERR [AUTH] Username and password not accepted.", "invalid_credentials"),
    ("PASS", "-ERR [SYS/TEMP] Temporary authentication failure. [mail:2026-11-30]", "unavailable"),
    ("PASS", "-ERR [SYS/PERM] Mailbox is damaged, contact your administrator", "server_error"),
    ("PASS", "-ERR [IN-USE] Mailbox locked by another session", "too_many_connections"),
    ("PASS", "-ERR [LOGIN-DELAY] Wait 15 minutes between logins", "rate_limited"),
    ("PASS", "-ERR [in-use] lower-case code", "too_many_connections"),
    # No code: the command decides.
    ("PASS", "-ERR invalid password", "invalid_credentials"),
    ("USER", "-ERR no such user", "invalid_credentials"),
    ("AUTH", "-ERR Unsupported authentication mechanism.", "mechanism_unsupported"),
    ("STLS", "-ERR TLS support isn't enabled.", "starttls_unavailable"),
    ("GREETING", "-ERR server shutting down", "unavailable"),
    ("STAT", "-ERR cannot open maildrop", "server_error"),
]


@pytest.mark.parametrize(("command", "reply", "reason"), POP3_REPLIES,
                         ids=[f"{c}-{r}" for c, _, r in POP3_REPLIES])
def test_pop3_reply(command: str, reply: str, reason: str) -> None:
    assert classify_pop3_reply(command, reply) == reason
    fail = classify(Pop3ReplyError(command, reply), "auth", Where("pop.example", 995, "pop3"))
    assert (fail.cls, fail.reason) == (CLASS_OF[reason], reason)
    assert fail.detail == reply
    assert fail.hint


def test_protocol_disabled_hint_names_pop3() -> None:
    fail = classify(Pop3ReplyError("STAT", "-ERR [SYS/PERM] POP access is disabled for your "
                                           "domain."), "select", Where("h", 995, "pop3"))
    assert "POP3 access is disabled" in fail.hint


@pytest.mark.parametrize(("text", "code"), [
    ("-ERR [SYS/TEMP] x", "SYS/TEMP"), ("-ERR [AUTH] x", "AUTH"), ("-ERR no code", None),
    ("-ERR [LOGIN-DELAY 900] x", "LOGIN-DELAY"), ("+OK [AUTH] not an error", None),
])
def test_pop3_code(text: str, code: str | None) -> None:
    assert pop3_code(text) == code
