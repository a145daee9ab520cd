"""Where each target lives, for grouping and filtering the status page: its server
(host:port) and provider preset as `/sd` and ``mailcanary_target_info`` name them, and its
account's labels."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from mailcanary.config import Config
from mailcanary.daemon.sd import server_and_provider
from mailcanary.probes.kind import ProbeKind


@dataclass(frozen=True)
class Facts:
    server: str = ""
    provider: str = ""
    labels: dict[str, str] = field(default_factory=dict)


def facts_of(kind: ProbeKind | None, config: Config, target: str) -> Facts:
    if kind is None:
        return Facts()
    server, provider = server_and_provider(kind, config, target)
    try:
        accounts = kind.accounts(config, target)
    except (KeyError, LookupError):
        accounts = []
    # [[accounts]] labels (the fleet view): a route's are its `to` account's.
    return Facts(server, provider, dict(accounts[-1].labels) if accounts else {})


class FactsCache:
    """Facts of every target, computed once per config object (a reload makes a new one)."""

    def __init__(self, registry: Mapping[str, ProbeKind]) -> None:
        self.registry = registry
        self.config: Config | None = None
        self.facts: dict[tuple[str, str], Facts] = {}

    def get(self, config: Config, kind: str, target: str) -> Facts:
        if config is not self.config:
            self.config, self.facts = config, {}
        found = self.facts.get((kind, target))
        if found is None:
            found = self.facts[kind, target] = facts_of(self.registry.get(kind), config, target)
        return found
