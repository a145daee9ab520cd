"""Hints for a bounce that say more than the reason's general one: the receiving side's
own well-known refusals (Japanese carriers' receiving settings, Gmail's authentication
requirement, Microsoft's IP block list, Yahoo's deferrals)."""

from __future__ import annotations

import re

# Japanese mobile carriers' mail domains: their recipients' receiving settings (受信拒否,
# 指定受信/特定受信) refuse senders, and the carriers say so as "550 Unknown user" (docomo)
# or a 5.7.1 / 5.1.1: the same words as for an address that does not exist.
CARRIER_DOMAINS = frozenset({
    "docomo.ne.jp", "ezweb.ne.jp", "au.com", "softbank.ne.jp", "i.softbank.jp",
    "disney.ne.jp", "ymobile.ne.jp", "rakuten.jp",
})
CARRIER_HINT = (
    "The recipient's carrier ({domain}) refused the canary. Carriers refuse mail that the "
    "recipient's receiving settings do not allow (受信拒否, 指定受信/ドメイン指定受信) with the "
    "same words as for an unknown address: ask the recipient to allow the sender's domain "
    "(or address) in the carrier's mail settings, then check that the address is right. "
    "受信側の受信拒否・指定受信設定で拒否された可能性があります。送信元ドメインの受信許可を"
    "依頼してください。"
)
_REFUSALS = (
    (re.compile(r"5\.7\.26|unauthenticated", re.I),
     "Gmail refused mail that fails authentication (5.7.26): publish SPF, sign with DKIM "
     "and publish a DMARC record for the sender's domain (see `check --domain`)."),
    (re.compile(r"\bS3150\b|\bS3140\b|banned sending IP", re.I),
     "Microsoft refused the sending server's IP (on their block list): request delisting "
     "at https://sender.office.com and check the IP against the DNS blocklists."),
    (re.compile(r"\[TS[S0]\d\d\]", re.I),
     "Yahoo deferred the mail for volume or complaints (TSS0x): slow down and check the "
     "sending IP's reputation."),
)


def bounce_hint(reason: str, recipient: str, text: str) -> str | None:
    """A hint for this bounce, or None for the reason's general one."""
    for pattern, hint in _REFUSALS:
        if pattern.search(text):
            return hint
    domain = recipient.rpartition("@")[2].strip(" <>").lower()
    if domain in CARRIER_DOMAINS and reason in ("recipient_rejected", "policy_rejected"):
        return CARRIER_HINT.format(domain=domain)
    return None
