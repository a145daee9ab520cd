"""The failure taxonomy of the contract: classes, their reasons, and a failure's hint."""

from __future__ import annotations

import functools
import sys
from dataclasses import dataclass

from mailcanary.diagnosis.hints import HINTS
from mailcanary.diagnosis.providers import provider_hint
from mailcanary.i18n import N_, Text


@dataclass(frozen=True)
class Failure:
    cls: str
    reason: str
    detail: str
    hint: str  # a Text: rendered in the reader's language where it is shown


TAXONOMY: dict[str, tuple[str, ...]] = {
    "ok": ("ok",),
    "dns": ("nxdomain", "dns_error"),
    "network": ("connection_refused", "unreachable", "connection_reset"),
    "timeout": ("timeout",),
    "tls": (
        "cert_expired",
        "cert_untrusted",
        "hostname_mismatch",
        "handshake_failed",
        "starttls_unavailable",
        "tls_required",
    ),
    "auth": (
        "invalid_credentials",
        "app_password_required",
        "basic_auth_disabled",
        "web_login_required",
        "account_locked",
        "mechanism_unsupported",
        "oauth_token_error",
        "protocol_disabled",
    ),
    "rejected": (
        "recipient_rejected",
        "sender_rejected",
        "relay_denied",
        "policy_rejected",
        "message_rejected",
    ),
    "quota": ("mailbox_full", "sending_limit"),
    "rate_limited": ("rate_limited", "too_many_connections"),
    "server": ("unavailable", "server_error"),
    "protocol": ("protocol_error",),
    "spam": ("spam_folder",),
    "delivery": ("lost", "delayed"),
    "config": ("config_error",),
    "trigger": ("trigger_failed",),
    "dns_policy": (
        "mx_missing",
        "spf_missing",
        "spf_invalid",
        "spf_not_authorized",
        "dmarc_missing",
        "dmarc_invalid",
        "dkim_key_missing",
        "mta_sts_invalid",
        "tls_rpt_missing",
        "tls_rpt_invalid",
    ),
    "reputation": ("blocklisted",),
    "internal": ("internal_error",),
}

CLASS_OF: dict[str, str] = {r: c for c, reasons in TAXONOMY.items() for r in reasons}

# What a login probe (imap, smtp) can produce: used to pre-create failure series at zero.
LOGIN_REASONS: tuple[str, ...] = tuple(
    reason
    for cls, reasons in TAXONOMY.items()
    if cls not in ("ok", "spam", "delivery", "trigger", "internal", "dns_policy", "reputation")
    for reason in reasons
)



@dataclass(frozen=True)
class Where:
    """What the classifier may mention in a hint."""

    host: str = "the server"
    port: int | str = "?"
    protocol: str = "imap"
    provider: str | None = None  # the account's preset: its own hint for login failures

    @property
    def server(self) -> str:
        """The contract's `server`: host:port (an IPv6 literal in brackets)."""
        host = self.host.strip("[]")  # interned: one copy in the results of a server
        return sys.intern(f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}")


def failure(
    reason: str, detail: str, where: Where | None = None, phase: str | None = None
) -> Failure:
    where = where or Where()
    hint = _hint(reason, where, phase)
    return Failure(CLASS_OF[reason], reason, detail, hint)


# A hint depends only on these values, so equal ones share one Text: 10,000 accounts of a
# server in an auth outage keep 10,000 results with the same hint (~640 bytes each).
@functools.lru_cache(maxsize=4096)
def _hint(reason: str, where: Where, phase: str | None) -> Text:
    found = provider_hint(where.provider, reason, where.protocol)
    if found:
        return found
    if not HINTS[reason]:
        return Text("")
    return Text(
        HINTS[reason],
        host=Text(N_("the server")) if where.host == Where.host else where.host,
        port=where.port,
        phase=phase or Text(N_("the probe")),
        proto_upper=where.protocol.upper(),
    )
