"""SMTP replies -> reason: enhanced status codes (RFC 3463) first, then words, then codes."""

from __future__ import annotations

import re

from mailcanary.diagnosis.words import enhanced_code, provider_reason

# Commands at which a refusal concerns the session or the account, not one message.
_SESSION_COMMANDS = ("AUTH", "EHLO", "GREETING")
_RATE_WORDS = re.compile(r"rate|too many|limit|try again later")
_SENDING_LIMIT_WORDS = re.compile(r"sending limit|sending quota|quota exceeded|limit exceeded")
_THROTTLE_WORDS = re.compile(r"\brate\b|rate[- ]limit|throttl")
_ADDRESS_DETAILS = ((1, 1), (1, 2), (1, 3), (1, 6), (1, 10), (2, 1))


def classify_smtp_reply(command: str, code: int, text: str) -> str:
    """Reason for an SMTP reply that was not the expected one at `command`."""
    command = command.upper()
    low = text.lower()
    words = provider_reason(text)
    if words == "account_locked" and code // 100 == 4:
        words = "rate_limited"  # a 4xx is temporary: throttled, not locked
    if words is not None and (command in _SESSION_COMMANDS or code in (421, 454)):
        return words
    enhanced = enhanced_code(text)
    if enhanced is not None:
        reason = _by_enhanced_code(command, code, enhanced[1:], low)
        if reason is not None:
            return reason
    if words is not None:
        return words
    return _by_reply_code(command, code, low)


def _by_enhanced_code(
    command: str, code: int, status: tuple[int, int], low: str
) -> str | None:
    """The RFC 3463 subject.detail pair, read with the reply's words where codes are shared."""
    subject, detail = status
    fixed = {(7, 8): "invalid_credentials", (7, 14): "web_login_required",
             (7, 9): "mechanism_unsupported", (7, 11): "tls_required", (2, 2): "mailbox_full"}
    if status in fixed:
        return fixed[status]
    if status == (7, 0) and "tls" in low:
        return "tls_required"
    if subject == 7 and code // 100 == 4 and _THROTTLE_WORDS.search(low):
        return "rate_limited"  # 451 4.7.1 ... rate limit, 421 4.7.28 ... unusual rate
    if _SENDING_LIMIT_WORDS.search(low):
        return "sending_limit"
    if status == (7, 1) and "relay" in low:
        return "relay_denied"
    if status in _ADDRESS_DETAILS:
        return "recipient_rejected" if command != "MAIL" else "sender_rejected"
    if status in ((1, 7), (1, 8)):
        return "sender_rejected"
    if status == (7, 0) and code // 100 == 4:
        return "rate_limited" if _RATE_WORDS.search(low) else "unavailable"
    if subject == 7 and command in ("MAIL", "RCPT", "DATA", "GREETING", "EHLO"):
        if command == "MAIL" and detail == 1 and "sender" in low:
            return "sender_rejected"
        return "policy_rejected"
    if subject == 6 or status == (3, 4):
        return "message_rejected"
    return None


def _by_reply_code(command: str, code: int, low: str) -> str:
    """The three-digit reply code alone (with a few words where one code means several)."""
    if "relay" in low and ("denied" in low or "not permitted" in low):
        return "relay_denied"
    if code in (530, 535, 534) or (code in (504, 502) and command == "AUTH"):
        return _auth_reply(command, code, low)
    if code in (452, 552) and ("full" in low or "quota" in low or "storage" in low):
        return "mailbox_full"
    if code == 421 or (code == 450 and command == "GREETING"):
        return "rate_limited" if re.search(r"rate|too many (messages|requests)|limit", low) \
            else "unavailable"
    if code in {450, 451, 452, 454}:
        return "rate_limited" if re.search(r"rate|too many|limit", low) else "unavailable"
    if code // 100 == 5:
        by_command = {"RCPT": "recipient_rejected", "MAIL": "sender_rejected",
                      "DATA": "message_rejected"}
        if command in by_command:
            return by_command[command]
        if command == "GREETING" and code == 554:
            return "unavailable"
    if code // 100 == 4:
        return "unavailable"
    if code in (500, 501, 502, 503):
        return "protocol_error"
    return "server_error" if code // 100 == 5 else "protocol_error"


def _auth_reply(command: str, code: int, low: str) -> str:
    if code == 535:
        return "invalid_credentials"
    if code == 530:
        if "tls" in low or command == "AUTH":
            return "tls_required"
        return "invalid_credentials"
    return "mechanism_unsupported"  # 534, and 502/504 to AUTH
