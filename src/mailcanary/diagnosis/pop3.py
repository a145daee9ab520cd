"""POP3 -ERR -> reason: providers' words first, then RFC 2449/3206 response codes.

Provider words win because a provider may put a specific cause under a generic code: Gmail's
"Your account is not enabled for POP access" comes as ``[SYS/PERM]`` but means the POP switch
in the account's settings, not a broken server.
"""

from __future__ import annotations

import re

from mailcanary.diagnosis.words import provider_reason

POP3_CODE = re.compile(r"^-ERR\s+\[([A-Za-z/-]+)(?:[^\]]*)\]", re.IGNORECASE)
_AUTH_COMMANDS = ("USER", "PASS", "AUTH")
# Dovecot's words for a login before TLS (any server that says so means the same).
_PLAINTEXT_REFUSED = re.compile(r"plaintext authentication (is )?(disallowed|not allowed)")
_CODES = {
    "AUTH": "invalid_credentials",  # RFC 3206: the credentials are wrong
    "SYS/TEMP": "unavailable",  # transient: try again later
    "SYS/PERM": "server_error",  # permanent, needs a person at the provider
    "IN-USE": "too_many_connections",  # RFC 2449: another POP3 session holds the mailbox
    "LOGIN-DELAY": "rate_limited",  # RFC 2449: logging in more often than allowed
}


def pop3_code(text: str) -> str | None:
    """The RFC 2449 response code of a ``-ERR [CODE] ...`` line, upper-cased, or None."""
    match = POP3_CODE.match(text.strip())
    return match.group(1).upper() if match else None


def classify_pop3_reply(command: str, text: str) -> str:
    """Reason for a POP3 ``-ERR`` answer to `command` (GREETING for the greeting)."""
    command = command.upper()
    low = " ".join(text.lower().split())
    words = provider_reason(text)
    if words is not None:
        return words
    if _PLAINTEXT_REFUSED.search(low):
        return "tls_required"
    code = pop3_code(text)
    if code in _CODES:
        return _CODES[code]
    if command == "STLS":
        return "starttls_unavailable"
    if command == "AUTH" and ("mechanism" in low or "unsupported" in low):
        return "mechanism_unsupported"
    if command in _AUTH_COMMANDS:
        return "invalid_credentials"
    if command == "GREETING":
        return "unavailable"
    return "server_error"
