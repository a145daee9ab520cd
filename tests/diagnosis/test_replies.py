"""The reply classifiers as pure tables: each server reply -> class, reason, hint.

Real providers' exact words (Gmail, Microsoft 365, Yahoo) cannot come from a real server
here, so they are checked at the classifier; `tests/protocols/test_login_faults.py` runs one
reply per class end to end through fake servers and `mailcanary check --json`.
"""

from __future__ import annotations

import pytest

from mailcanary.diagnosis import CLASS_OF, ImapReplyError, SmtpReplyError, Where, classify

IMAP_REPLIES = [
    ("NO [AUTHENTICATIONFAILED] Authentication failed.", "invalid_credentials"),
    ("NO AUTHENTICATE failed.", "invalid_credentials"),
    ("NO [ALERT] Application-specific password required: "
     "https://support.google.com/accounts/answer/185833 (Failure)", "app_password_required"),
    ("NO [WEBALERT https://accounts.google.com/signin/continue?sarp=1&scc=1] Web login required.",
     "web_login_required"),
    ("NO [ALERT] Please log in via your web browser: "
     "https://support.google.com/mail/accounts/answer/78754 (Failure)", "web_login_required"),
    ("NO [ALERT] Your account is not enabled for IMAP use. Please visit your Gmail settings "
     "page and enable your account for IMAP access. (Failure)", "protocol_disabled"),
    ("NO [AUTHENTICATIONFAILED] Too many bad auth attempts.", "account_locked"),
    ("NO [CONTACTADMIN] Your account has been suspended.", "account_locked"),
    ("NO [PRIVACYREQUIRED] Plaintext authentication disallowed on non-secure connections.",
     "tls_required"),
    ("NO [UNAVAILABLE] Temporary authentication failure. [host:2026-11-22 09:00:00]",
     "unavailable"),
    ("NO [LIMIT] Too many simultaneous connections.", "too_many_connections"),
    ("NO [LIMIT] Rate limit hit, slow down.", "rate_limited"),
    ("NO [OVERQUOTA] Mailbox is over quota.", "mailbox_full"),
    ("NO [SERVERBUG] Internal error occurred. Refer to server log for more information.",
     "server_error"),
    ("BAD [CLIENTBUG] Invalid arguments.", "protocol_error"),
]


SMTP_REPLIES = [
    ("535 5.7.8 Username and Password not accepted. Learn more at "
     "https://support.google.com/mail/?p=BadCredentials", "invalid_credentials"),
    ("534-5.7.9 Application-specific password required. Learn more at\n"
     "534 5.7.9  https://support.google.com/mail/?p=InvalidSecondFactor",
     "app_password_required"),
    ("534-5.7.14 <https://accounts.google.com/signin/continue?sarp=1> Please log in\n"
     "534-5.7.14 via your web browser and then try again.\n"
     "534 5.7.14  Learn more at https://support.google.com/mail/answer/78754",
     "web_login_required"),
    ("535 5.7.139 Authentication unsuccessful, basic authentication is disabled. "
     "[AM0PR01CA0001.eurprd01.prod.exchangelabs.com]", "basic_auth_disabled"),
    ("535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the "
     "Tenant. Visit https://aka.ms/smtp_auth_disabled for more information.",
     "basic_auth_disabled"),
    ("535 5.7.139 Authentication unsuccessful, the user credentials were incorrect.",
     "invalid_credentials"),
    ("535 5.7.0 (#AUTH005) Too many bad auth attempts.", "account_locked"),
    ("530 5.7.0 Must issue a STARTTLS command first.", "tls_required"),
    ("454 4.7.0 Temporary authentication failure", "unavailable"),
    # 4xx is temporary: throttling, not a locked account (issue 10).
    ("421 4.7.0 Try again later, closing connection. (AUTH) too many login attempts",
     "rate_limited"),
    ("454 4.7.0 Too many login attempts, please try again later.", "rate_limited"),
    ("421 4.7.0 Too many login attempts, please try again later.", "rate_limited"),
    ("421 4.7.0 Try again later, closing connection. (AUTH)", "rate_limited"),
    ("504 5.5.4 Unrecognized authentication type", "mechanism_unsupported"),
    ("550 5.4.5 Daily user sending quota exceeded.", "sending_limit"),
    ("500 5.5.1 what?", "protocol_error"),
]


# Throttling of the message flow (4xx) is rate_limited, not a policy rejection.
SMTP_SEND_REPLIES = [
    ("451 4.7.1 Please try again later: rate limit exceeded", "MAIL", "rate_limited"),
    ("451 4.7.1 Sender rate limit reached, try again later", "RCPT", "rate_limited"),
    ("421 4.7.28 Gmail has detected an unusual rate of unsolicited mail originating from your "
     "IP address. To protect our users from spam, mail sent from your IP address has been "
     "temporarily rate limited.", "DATA", "rate_limited"),
    ("421 4.7.28 Our system has detected an unusual rate of unsolicited mail.", "MAIL",
     "rate_limited"),
    ("550 5.7.1 Message rejected due to content restrictions", "DATA", "policy_rejected"),
    ("554 5.7.1 Service unavailable; Client host blocked using zen.spamhaus.org", "RCPT",
     "policy_rejected"),
    ("451 4.7.1 Greylisted, please try again later", "RCPT", "policy_rejected"),
]


def smtp_error(raw: str, command: str = "AUTH") -> SmtpReplyError:
    """What the SMTP client raises for this (possibly multi-line) reply."""
    lines = raw.split("\n")
    code = int(lines[0][:3])
    text = "\n".join(line[4:] for line in lines)
    return SmtpReplyError(command, code, f"{code} {text}")


@pytest.mark.parametrize(("reply", "reason"), IMAP_REPLIES, ids=[r for _, r in IMAP_REPLIES])
def test_imap_login_replies(reply: str, reason: str) -> None:
    fail = classify(ImapReplyError("AUTHENTICATE", reply), "auth", Where("h", 993, "imap"))
    assert (fail.cls, fail.reason) == (CLASS_OF[reason], reason)
    assert fail.detail.endswith(reply.split(" ", 1)[1]) or reply in fail.detail
    assert fail.hint


@pytest.mark.parametrize(("reply", "reason"), SMTP_REPLIES, ids=[r for _, r in SMTP_REPLIES])
def test_smtp_auth_replies(reply: str, reason: str) -> None:
    fail = classify(smtp_error(reply), "auth", Where("h", 587, "smtp"))
    assert (fail.cls, fail.reason) == (CLASS_OF[reason], reason)
    assert reply.split("\n", maxsplit=1)[0][4:30] in fail.detail
    assert fail.hint


@pytest.mark.parametrize(("reply", "command", "reason"), SMTP_SEND_REPLIES,
                         ids=[r[0][:12] for r in SMTP_SEND_REPLIES])
def test_smtp_send_replies(reply: str, command: str, reason: str) -> None:
    fail = classify(smtp_error(reply, command), "send", Where("h", 587, "smtp"))
    assert (fail.cls, fail.reason) == (CLASS_OF[reason], reason)
