"""IMAP NO/BAD/BYE -> reason: RFC 5530 response codes first, then providers' words."""

from __future__ import annotations

from mailcanary.diagnosis.words import IMAP_CODE, provider_reason


def classify_imap_reply(command: str, text: str) -> str:
    """Reason for an IMAP NO/BAD/BYE (the text includes the status word)."""
    command = command.upper()
    match = IMAP_CODE.search(text)
    code = match.group(1) if match else None
    words = provider_reason(text)
    if code == "WEBALERT":
        return "web_login_required"
    if words is not None and code in (None, "ALERT", "AUTHENTICATIONFAILED", "LIMIT",
                                      "CONTACTADMIN", "UNAVAILABLE", "AUTHORIZATIONFAILED"):
        return words
    if code in ("AUTHENTICATIONFAILED", "AUTHORIZATIONFAILED", "EXPIRED"):
        return "invalid_credentials"
    if code == "PRIVACYREQUIRED":
        return "tls_required"
    if code == "CONTACTADMIN":
        return "account_locked"
    if code == "OVERQUOTA":
        return "mailbox_full"
    if code == "LIMIT":
        return "rate_limited"
    if code in ("UNAVAILABLE", "INUSE"):
        return "unavailable"
    if code == "SERVERBUG":
        return "server_error"
    status = text.split(" ", 1)[0].upper()
    if status == "BAD":
        return "protocol_error"
    if command in ("LOGIN", "AUTHENTICATE"):
        if status == "BYE":
            return "unavailable"
        return "invalid_credentials"
    if status == "BYE":
        return "unavailable"
    return "protocol_error" if command in ("GREETING", "CAPABILITY") else "server_error"
