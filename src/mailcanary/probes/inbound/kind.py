"""The inbound kind: mail another system sends (sign-up, reset, 2FA), watched for in one
account's mailbox, triggered over HTTP or passively. The probe itself (inbound/probe.py,
with its HTTP client) is loaded at its first run: `check` of an account never loads it."""

from __future__ import annotations

from mailcanary.config import AccountConfig, Config
from mailcanary.diagnosis import LOGIN_REASONS
from mailcanary.probes.inbound.timing import timeout
from mailcanary.probes.kind import AnyEndpoint, ProbeKind, Selection
from mailcanary.probes.login import LOGIN_PHASES
from mailcanary.result import ProbeContext

REASONS = (*LOGIN_REASONS, "trigger_failed", "spam_folder", "lost", "delayed")

INBOUND = Selection(
    "inbound", "inbound watch", "inbound watches",
    lambda config: [w.name for w in config.inbound],
    help="only this inbound watch (repeatable)",
)


def _accounts(config: Config, target: str) -> list[AccountConfig]:
    return [config.account(config.inbound_watch(target).account)]


def _endpoints(config: Config, target: str) -> list[AnyEndpoint]:
    return [e for e in (a.imap for a in _accounts(config, target)) if e is not None]


def _home(config: Config, target: str) -> tuple[AccountConfig, AnyEndpoint] | None:
    account = config.account(config.inbound_watch(target).account)
    found = account.imap or account.pop3
    return None if found is None else (account, found)


async def _run(ctx: ProbeContext, config: Config, target: str) -> None:
    from mailcanary.probes.inbound import probe  # noqa: PLC0415  (loaded when first needed)

    await probe.probe(ctx, config, target)


KIND = ProbeKind(
    name="inbound", run=_run, timeout=timeout, reasons=REASONS,
    selection=INBOUND, has=lambda config, target: True,
    entry=lambda config, target: config.inbound_watch(target), accounts=_accounts,
    endpoints=_endpoints, home=_home,
    phases=(*LOGIN_PHASES, "select", "trigger", "deliver", "cleanup"),
    delivery=True, watched_accounts=True,
)
