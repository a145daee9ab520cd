"""Where each target lives, for grouping and filtering the status page: its server
(host:port), its provider preset and its account's labels."""

from __future__ import annotations

from dataclasses import dataclass, field

from mailcanary.config import Config
from mailcanary.config.models import AccountConfig
from mailcanary.diagnosis.taxonomy import Where

LOGIN_KINDS = ("imap", "smtp", "pop3")


@dataclass(frozen=True)
class Facts:
    server: str = ""
    provider: str = ""
    labels: dict[str, str] = field(default_factory=dict)


def _facts(account: AccountConfig | None, which: str) -> Facts:
    """`which`: the login probe's own endpoint, or "mailbox" (IMAP, else POP3): where a
    round trip's or inbound watch's mail is read."""
    if account is None:
        return Facts()
    endpoint = {"imap": account.imap, "smtp": account.smtp, "pop3": account.pop3}.get(which)
    if which == "mailbox":
        endpoint = account.imap or account.pop3
    server = ""
    if endpoint is not None:
        server = Where(host=endpoint.host, port=endpoint.effective_port).server
    labels = getattr(account, "labels", None) or {}  # [[accounts]] labels (fleet view)
    return Facts(server, account.provider or "", {str(k): str(v) for k, v in labels.items()})


class FactsCache:
    """Facts of every target, computed once per config object (a reload makes a new one)."""

    def __init__(self) -> None:
        self.config: Config | None = None
        self.facts: dict[tuple[str, str], Facts] = {}
        self.owner: dict[tuple[str, str], AccountConfig | None] = {}

    def _index(self, config: Config) -> None:
        accounts = {a.name: a for a in config.accounts}
        self.config, self.facts, self.owner = config, {}, {}
        for route in config.routes:
            self.owner["roundtrip", route.route_name] = accounts.get(route.to)
        for watch in config.inbound:
            self.owner["inbound", watch.name] = accounts.get(watch.account)
        for name, account in accounts.items():
            for kind in LOGIN_KINDS:
                self.owner[kind, name] = account

    def get(self, config: Config, kind: str, target: str) -> Facts:
        if config is not self.config:
            self._index(config)
        found = self.facts.get((kind, target))
        if found is None:
            which = kind if kind in LOGIN_KINDS else "mailbox"
            found = self.facts[kind, target] = _facts(self.owner.get((kind, target)), which)
        return found
