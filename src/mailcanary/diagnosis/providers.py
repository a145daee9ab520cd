"""What a provider's own rules mean for a failed login: the preset's hint, in its own terms.

Only what the providers publish: where an app password or the IMAP-only password comes from,
which switch turns IMAP/POP on. No provider's error text is invented here: for docomo and
SoftBank no server words are known, so these hints hang on the reason the standard codes and
the phase gave, never on a phrase.
"""

from __future__ import annotations

from mailcanary.i18n import N_, Text

# Reasons a provider's rules can explain: the auth class (and a login refused before TLS).
_LOGIN_REASONS = frozenset({
    "invalid_credentials", "app_password_required", "basic_auth_disabled", "web_login_required",
    "account_locked", "protocol_disabled", "mechanism_unsupported",
})

_GMAIL_SIGN_IN = Text(
    "Gmail takes no account password from mail programs: use an app password (Google Account "
    "> Security > 2-Step Verification > App passwords; needs 2-Step Verification) or "
    "oauth2 = {{ provider = \"google\", ... }}."
)
_MICROSOFT_BASIC = N_(
    "{name} refuses passwords (basic authentication) for IMAP, POP and SMTP: configure "
    "oauth2 = {{ provider = \"microsoft\", ... }}. POP and IMAP must also be switched on for "
    "the mailbox ({switch})."
)
_DOCOMO = Text(
    "docomo mail (imap.spmode.ne.jp) wants the username = your d-account ID and the "
    "system-generated IMAP-only password (10 characters, not the d-account password). Check "
    "or reissue it in My docomo's mail settings (on the phone with Wi-Fi off); repeated wrong "
    "passwords lock mail access for a while, so fix it before the next probe."
)
_YAHOO_JP = Text(
    "Yahoo! JAPAN lets mail programs in only while IMAP/POP/SMTP access is switched on in "
    "Yahoo! JAPAN mail's settings (it can be switched off again); the username is your "
    "Yahoo! JAPAN ID. Check that switch, then the password."
)

# provider -> {reason or "*" (any login reason), or "protocol:reason"} -> hint
PROVIDER_HINTS: dict[str, dict[str, Text]] = {
    "gmail": {
        "pop3:protocol_disabled": Text(
            "Gmail's POP is off for this account: switch it on in Gmail > Settings > See all "
            "settings > Forwarding and POP/IMAP > POP download (for a Workspace domain the "
            "admin must allow POP too)."),
        "*": _GMAIL_SIGN_IN,
    },
    "outlook": {"*": Text(
        _MICROSOFT_BASIC,
        name=Text("Outlook.com (since 16 September 2024)"),
        switch=Text("Outlook.com > Settings > Mail > Forwarding and IMAP / POP and IMAP"))},
    "microsoft365": {"*": Text(
        _MICROSOFT_BASIC,
        name=Text("Microsoft 365 (where basic auth is retired)"),
        switch=Text("the tenant admin enables POP/IMAP/Authenticated SMTP for the mailbox in "
                    "the Microsoft 365 admin center"))},
    "icloud": {"*": Text(
        "iCloud Mail takes only an app-specific password from mail programs (xxxx-xxxx-xxxx-xxxx; "
        "needs two-factor authentication): create one at account.apple.com > Sign-In and "
        "Security > App-Specific Passwords and use it with the iCloud address as username.")},
    "yahoo": {"*": Text(
        "Yahoo Mail wants an app password for mail programs: create one in the Yahoo account's "
        "Account security > Generate app password and use it here.")},
    "yahoo_jp": {"*": _YAHOO_JP},
    "docomo": {"*": _DOCOMO},
    "softbank": {"*": Text(
        "SoftBank (i.softbank.jp) wants the part of the address before @ as username and the "
        "password set in My SoftBank's mail settings (not the My SoftBank password); check "
        "both there.")},
}


def provider_hint(provider: str | None, reason: str, protocol: str) -> Text | None:
    """The preset provider's own hint for a login failure, or None."""
    if provider is None or reason not in _LOGIN_REASONS:
        return None
    hints = PROVIDER_HINTS.get(provider, {})
    return hints.get(f"{protocol}:{reason}") or hints.get("*")
