"""Reading replies: RFC 3463 enhanced codes, RFC 5530 IMAP codes and providers' own words.

The same code can mean "wrong password" at one provider and "basic auth switched off" at
another, so the words the big providers are known to use are matched here, once, for all
protocols.
"""

from __future__ import annotations

import re

_ENHANCED = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
IMAP_CODE = re.compile(r"\[([A-Z-]+)(?:[ \]])")

# Provider words, most specific first. Each entry: (regex on the lowercased reply, reason).
_PROVIDER_WORDS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), reason)
    for pattern, reason in (
        (r"application-specific password|app password", "app_password_required"),
        (r"please log ?in via your web browser|web login required|weblogin", "web_login_required"),
        (r"basic authentication is disabled|smtpclientauthentication is disabled|basic auth",
         "basic_auth_disabled"),
        (r"security defaults policy|did not meet the criteria to be authenticated",
         "basic_auth_disabled"),
        (r"not enabled for (imap|pop|smtp)|(imap|pop) access is disabled|"
         r"(imap|pop3?) (is )?disabled|user is authenticated but not connected",
         "protocol_disabled"),
        (r"too many bad auth attempts|too many (failed )?login (attempts|failures)|"
         r"account (is )?(locked|disabled|suspended)|temporarily (locked|blocked)",
         "account_locked"),
        (r"too many (simultaneous |concurrent )?connections|maximum number of connections|"
         r"connection limit", "too_many_connections"),
    )
)


def provider_reason(text: str) -> str | None:
    # Multi-line replies break phrases across lines ("534-5.7.14 Please log in\n534-5.7.14
    # via your web browser"): drop the continuation prefixes and fold the whitespace.
    low = " ".join(re.sub(r"(?m)^(\d{3}[ -])?(\d\.\d{1,3}\.\d{1,3} )?", "", text).lower().split())
    for pattern, reason in _PROVIDER_WORDS:
        if pattern.search(low):
            return reason
    return None


def enhanced_code(text: str) -> tuple[int, int, int] | None:
    match = _ENHANCED.search(text)
    if match is None:
        return None
    return int(match.group(1)), int(match.group(2)), int(match.group(3))
