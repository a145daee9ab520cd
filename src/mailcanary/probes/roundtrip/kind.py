"""The round-trip kind: a route's canary, sent by one account and watched for by another,
plus its upkeep (the sweep of canaries nobody watches any more). Both are loaded at their
first use (SQLite, the watcher, the sweep): `check` of an account never loads them."""

from __future__ import annotations

import asyncio

from mailcanary.config import AccountConfig, Config
from mailcanary.diagnosis import LOGIN_REASONS
from mailcanary.probes.kind import (
    AnyEndpoint,
    BackedOff,
    Owns,
    ProbeKind,
    Selection,
    Upkeep,
)
from mailcanary.protocols.runtime import Runtime
from mailcanary.result import PHASES, ProbeContext, ProbeResult

REASONS = (*LOGIN_REASONS, "spam_folder", "lost", "delayed")

ROUTES = Selection(
    "route", "route", "routes", lambda config: [r.route_name for r in config.routes],
    help="only this round trip (repeatable)",
)


def timeout(config: Config, target: str) -> float:
    """The deadline, plus a login's worth of time for each leg and for the final search."""
    route = config.route(target)
    sender, receiver = config.account(route.from_), config.account(route.to)
    return route.deadline + config.timeout_of(sender) + 2 * config.timeout_of(receiver)


async def _run(ctx: ProbeContext, config: Config, target: str) -> None:
    from mailcanary.probes.roundtrip import probe  # noqa: PLC0415  (loaded when first needed)

    await probe.probe(ctx, config, target)


def _accounts(config: Config, target: str) -> list[AccountConfig]:
    route = config.route(target)
    return [config.account(route.from_), config.account(route.to)]


def _endpoints(config: Config, target: str) -> list[AnyEndpoint]:
    sender, receiver = _accounts(config, target)
    found: list[AnyEndpoint | None] = [sender.smtp, receiver.imap or receiver.pop3]
    return [e for e in found if e is not None]


def _home(config: Config, target: str) -> tuple[AccountConfig, AnyEndpoint] | None:
    """The receiving mailbox: where a lost canary is looked for."""
    receiver = config.account(config.route(target).to)
    found = receiver.imap or receiver.pop3
    return None if found is None else (receiver, found)


async def upkeep(
    config: Config, runtime: Runtime, backed_off: BackedOff, owns: Owns | None
) -> Upkeep:
    """Sweeps every receiving mailbox (never one whose IMAP login is in auth backoff).
    A canary whose probe never gave a verdict gets it now, counted like any other; one
    already reported lost that turns up later only counts as late."""
    from mailcanary.probes.roundtrip.sweep import sweep  # noqa: PLC0415
    from mailcanary.probes.roundtrip.verdict import found_verdict, lost_verdict  # noqa: PLC0415

    timeout = max((config.timeout_of(config.account(r.to)) for r in config.routes),
                  default=30.0)
    report = await asyncio.wait_for(sweep(
        config, runtime=runtime, skip=lambda name: backed_off("imap", name), only=owns,
    ), 4 * timeout)
    done = Upkeep(removed=report.removed, errors=report.errors,
                  pending_until=report.pending_until,
                  log={"late": [c.as_json() for c in report.late], "lost": len(report.lost)})
    for late in report.late:
        found = found_verdict(config, late) if late.first_verdict else None
        if found is None:
            done.late[late.route] = done.late.get(late.route, 0) + 1
        else:
            done.results.append(found)
    lost: list[ProbeResult | None] = [lost_verdict(config, record) for record in report.lost]
    done.results += [result for result in lost if result is not None]
    return done


KIND = ProbeKind(
    name="roundtrip", run=_run, timeout=timeout, reasons=REASONS,
    selection=ROUTES, has=lambda config, target: target in config.routes_by_name,
    entry=lambda config, target: config.route(target), accounts=_accounts,
    endpoints=_endpoints, home=_home, phases=tuple(p for p in PHASES if p != "trigger"),
    delivery=True,
    sweep=upkeep,
)
