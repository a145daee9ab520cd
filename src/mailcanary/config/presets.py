"""Provider presets: `provider = "gmail"` fills host, port and security of an account's endpoints.

Why a preset: half of what goes wrong with a mail account is a wrong setting, and the big
providers' settings are fixed and public (see the project's providers notes). A preset fills
the endpoints the account declares (`imap = {}` takes all of it, keys given win; a security
given without a port gets that security's standard port); an account
that declares no endpoint gets the preset's imap and smtp. A preset without POP3 (iCloud,
docomo, SoftBank) makes a declared `pop3` a config error naming the key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, get_args

ProviderName = Literal[
    "gmail", "outlook", "microsoft365", "icloud", "yahoo", "yahoo_jp", "docomo", "softbank"
]

Preset = dict[str, tuple[str, int, str]]  # protocol -> (host, port, security)

PRESETS: dict[str, Preset] = {
    "gmail": {
        "imap": ("imap.gmail.com", 993, "tls"),
        "smtp": ("smtp.gmail.com", 465, "tls"),
        "pop3": ("pop.gmail.com", 995, "tls"),
    },
    "outlook": {
        "imap": ("outlook.office365.com", 993, "tls"),
        "smtp": ("smtp-mail.outlook.com", 587, "starttls"),
        "pop3": ("outlook.office365.com", 995, "tls"),
    },
    "microsoft365": {
        "imap": ("outlook.office365.com", 993, "tls"),
        "smtp": ("smtp.office365.com", 587, "starttls"),
        "pop3": ("outlook.office365.com", 995, "tls"),
    },
    "icloud": {
        "imap": ("imap.mail.me.com", 993, "tls"),
        "smtp": ("smtp.mail.me.com", 587, "starttls"),
    },
    "yahoo": {
        "imap": ("imap.mail.yahoo.com", 993, "tls"),
        "smtp": ("smtp.mail.yahoo.com", 465, "tls"),
        "pop3": ("pop.mail.yahoo.com", 995, "tls"),
    },
    "yahoo_jp": {
        "imap": ("imap.mail.yahoo.co.jp", 993, "tls"),
        "smtp": ("smtp.mail.yahoo.co.jp", 465, "tls"),
        "pop3": ("pop.mail.yahoo.co.jp", 995, "tls"),
    },
    "docomo": {
        "imap": ("imap.spmode.ne.jp", 993, "tls"),
        "smtp": ("smtp.spmode.ne.jp", 465, "tls"),
    },
    "softbank": {
        "imap": ("imap.softbank.jp", 993, "tls"),
        "smtp": ("smtp.softbank.jp", 465, "tls"),
    },
}

PROVIDERS: tuple[str, ...] = get_args(ProviderName)
assert set(PROVIDERS) == set(PRESETS)
PROTOCOLS = ("imap", "smtp", "pop3")


class PresetError(ValueError):
    """A declared endpoint the preset has no settings for (pydantic reports it with its path)."""


def apply_preset(data: Any) -> Any:
    """The raw account table with the preset's endpoint keys filled in (keys given win).

    Leaves anything it does not understand alone, so the schema reports it with its path.
    """
    if not isinstance(data, Mapping):
        return data
    provider = data.get("provider")
    if not isinstance(provider, str) or provider not in PRESETS:
        return data
    preset = PRESETS[provider]
    out = dict(data)
    declared = [p for p in PROTOCOLS if p in out]
    if not declared:
        declared = ["imap", "smtp"]
        for proto in declared:
            out[proto] = {}
    for proto in declared:
        given = out[proto]
        if not isinstance(given, Mapping):
            continue
        if proto not in preset:
            raise PresetError(
                f"{proto}: provider {provider!r} offers no {proto.upper()}; remove {proto} "
                f"or set its host, port and security yourself without provider"
            )
        host, port, security = preset[proto]
        filled = {"host": host, "port": port, "security": security}
        if "security" in given and "port" not in given:
            del filled["port"]  # security given alone: the protocol's standard port for it
        filled.update(given)
        out[proto] = filled
    return out


def endpoints_of(acc: Mapping[str, Any]) -> set[str]:
    """The endpoints a raw account table will have: those declared, or, with a preset and
    none declared, the preset's imap and smtp (for cross-reference checks on the raw dict)."""
    declared = {p for p in PROTOCOLS if p in acc}
    if not declared and acc.get("provider") in PRESETS:
        return {"imap", "smtp"}
    return declared
