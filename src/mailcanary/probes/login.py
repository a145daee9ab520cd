"""The three login kinds (imap, smtp, pop3): an account's endpoint, logged in to and out of.

They share their config selection (`--account NAME` gives all three), their timeout, their
reasons and which phases they pre-set as series; each module adds its own dialogue.
"""

from __future__ import annotations

from mailcanary.config import AccountConfig, Config
from mailcanary.diagnosis import LOGIN_REASONS
from mailcanary.probes.kind import AnyEndpoint, ProbeFn, ProbeKind, Selection

LOGIN_PHASES = ("dns", "connect", "tls", "greeting", "starttls", "token", "auth")

ACCOUNTS = Selection(
    "account", "account", "accounts", lambda config: [a.name for a in config.accounts],
    help="only this account's imap, smtp and pop3 probes (repeatable)",
)


def timeout(config: Config, target: str) -> float:
    return config.timeout_of(config.account(target))


def login_kind(name: str, run: ProbeFn, phases: tuple[str, ...]) -> ProbeKind:
    """The kind that logs in to an account's `name` endpoint (`account.imap` ...)."""

    def endpoint(config: Config, target: str) -> AnyEndpoint | None:
        account = config.accounts_by_name.get(target)
        found: AnyEndpoint | None = getattr(account, name, None)
        return found

    def has(config: Config, target: str) -> bool:
        return endpoint(config, target) is not None

    def accounts(config: Config, target: str) -> list[AccountConfig]:
        return [config.account(target)] if target in config.accounts_by_name else []

    def endpoints(config: Config, target: str) -> list[AnyEndpoint]:
        found = endpoint(config, target)
        return [] if found is None else [found]

    def home(config: Config, target: str) -> tuple[AccountConfig, AnyEndpoint] | None:
        found = endpoint(config, target)
        return None if found is None else (config.account(target), found)

    def preset_phases(config: Config, target: str) -> tuple[str, ...]:
        """No ``starttls`` unless it uses STARTTLS, no ``tls`` without TLS, no ``token``
        without OAuth2 (2 series fewer per target, 10 % of a large scrape); ``token``
        appears with the first run, so that a target keeps to 15 series at start-up."""
        account, found = config.accounts_by_name.get(target), endpoint(config, target)
        if account is None or found is None:
            return phases
        security = found.security or ("starttls" if name == "smtp" else "tls")
        drop = {"starttls"} if security != "starttls" else set()
        if security == "none":
            drop.add("tls")
        drop.add("token")
        return tuple(p for p in phases if p not in drop)

    return ProbeKind(
        name=name, run=run, timeout=timeout, reasons=LOGIN_REASONS, selection=ACCOUNTS,
        has=has, entry=lambda config, target: config.account(target), accounts=accounts,
        endpoints=endpoints, phases=phases, preset_phases=preset_phases, doctor=True,
        home=home,
    )
