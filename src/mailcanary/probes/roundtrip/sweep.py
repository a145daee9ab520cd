"""Removing this installation's canaries that nobody watches any more.

Runs at start-up and periodically (the daemon calls `sweep`), and on a small scale after
every round trip in the folder it already has open (`sweep_selected`). It matches each
canary it finds with the in-flight records: one whose probe was cancelled, crashed or gave
it up as lost is reported once, as *late*, and deleted; one a running probe still waits
for is left alone; one without a record is deleted only when older than `older_than`.
Only messages whose installation header is exactly ours are ever touched.

The periodic sweep logs in like any probe: through the daemon's connection limits (each
account's session holds its server's slot while it works) and never to an account in auth
backoff (`skip`), so it cannot get a locked account locked harder.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from mailcanary.config import Config
from mailcanary.diagnosis import ProbeError, classify
from mailcanary.probes.mailbox.headers import parse_headers
from mailcanary.probes.roundtrip.canary import INSTALLATION_HEADER, SENT_HEADER, TOKEN_HEADER
from mailcanary.probes.roundtrip.state import ORPHAN_GRACE, Canaries, Record, is_orphan
from mailcanary.protocols.imap import ImapClient, imap_client_for
from mailcanary.protocols.limits import holding
from mailcanary.protocols.mailboxes import Folder, junk_folders
from mailcanary.protocols.runtime import Runtime, runtime_of
from mailcanary.protocols.signin import imap_login
from mailcanary.result import ProbeContext

if TYPE_CHECKING:
    from mailcanary.probes.mailbox.watcher import Watcher

STALE_AFTER = 3600.0  # a canary without a record is someone's leftover after an hour


@dataclass(frozen=True)
class LateCanary:
    """A canary found after its probe gave up on it (or died): counted once, here."""

    route: str
    token: str
    placement: str  # inbox | spam | other
    folder: str
    delivery_seconds: float | None  # from INTERNALDATE (1 s resolution) when known
    # True when no probe ever gave this canary a verdict (its probe was cancelled, or the
    # daemon stopped or died): the sweep's finding *is* its verdict, counted like any other
    first_verdict: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "route": self.route, "token": self.token, "placement": self.placement,
            "folder": self.folder, "delivery_seconds": self.delivery_seconds,
        }


@dataclass
class SweepReport:
    removed: int = 0  # canaries deleted (late ones included)
    late: list[LateCanary] = field(default_factory=list)
    lost: list[Record] = field(default_factory=list)  # orphans never found: lost, reported once
    pending_until: float | None = None  # earliest deadline of orphans that may still arrive
    errors: dict[str, str] = field(default_factory=dict)  # account -> what went wrong


def placement_of(folder: Folder, junk: list[Folder]) -> str:
    if folder.is_inbox:
        return "inbox"
    return "spam" if folder.wire in {j.wire for j in junk} else "other"


def _sent_at(value: str | None, fallback: datetime | None) -> float | None:
    if value:
        try:
            return datetime.fromisoformat(value.strip().replace("Z", "+00:00")).timestamp()
        except ValueError:
            pass
    return fallback.timestamp() if fallback is not None else None


async def sweep_folder(
    client: ImapClient,
    folder: Folder,
    placement: str,
    store: Canaries,
    report: SweepReport,
    *,
    older_than: float = STALE_AFTER,
    keep: frozenset[str] = frozenset(),
) -> set[str]:
    """Sweep the (read-write) selected `folder`; returns the tokens seen there."""
    uids = await client.uid_search("HEADER", INSTALLATION_HEADER, store.installation)
    now = time.time()
    seen: set[str] = set()
    doomed: list[int] = []
    late: list[LateCanary] = []
    forget: list[str] = []
    for uid in uids:
        raw, internal = await client.uid_fetch_header(uid)
        headers = parse_headers(raw)
        if (headers.get(INSTALLATION_HEADER) or "").strip() != store.installation:
            continue  # the search matches substrings; this one is not ours
        token = (headers.get(TOKEN_HEADER) or "").strip()
        if not token or token in keep:
            continue
        seen.add(token)
        record = await store.get(token)
        if record is None:
            sent = _sent_at(headers.get(SENT_HEADER), internal)
            if sent is not None and now - sent > older_than:
                doomed.append(uid)
            continue
        if record.status in ("sending", "in_flight") and not is_orphan(
            record, now, active=runtime_of(client.ctx).canaries
        ):
            continue  # a probe still watches it
        doomed.append(uid)
        forget.append(token)
        if record.status in ("sending", "in_flight", "lost"):
            delivery = (
                max(0.0, round(internal.timestamp() - record.accepted, 3))
                if internal is not None and record.accepted is not None else None
            )
            late.append(LateCanary(record.route, token, placement, folder.name, delivery,
                                   first_verdict=record.status != "lost"))
    if doomed and await client.uid_delete(doomed):
        report.removed += len(doomed)
        report.late += late
        for token in forget:
            await store.remove(token)
    return seen


async def sweep_selected(ctx: ProbeContext, watcher: Watcher, store: Canaries) -> SweepReport:
    """After a round trip: the folder the probe has open, for earlier runs' canaries."""
    report = SweepReport()
    folder = watcher.selected_folder()
    await watcher.select(folder)
    await sweep_folder(watcher.client, folder, placement_of(folder, watcher.junk), store, report)
    if report.removed:
        ctx.transcript.note("*", f"removed {report.removed} earlier canary(ies) from {folder.name}")
    return report


async def _sweep_account(
    config: Config, name: str, store: Canaries, report: SweepReport, older_than: float,
    *, ctx: ProbeContext,
) -> set[str]:
    account = config.account(name)
    client = imap_client_for(ctx, account)
    seen: set[str] = set()
    try:
        async with asyncio.timeout(config.timeout_of(account) * 3):
            await client.connect()
            await imap_login(client, account)
            folders = await client.list_folders()
            junk = junk_folders(folders)
            for folder in folders:
                if not folder.selectable:
                    continue
                try:
                    await client.select_folder(folder)
                except ProbeError as exc:
                    ctx.transcript.note("*", f"cannot open {folder.name}: {exc}")
                    continue
                seen |= await sweep_folder(
                    client, folder, placement_of(folder, junk), store, report,
                    older_than=older_than,
                )
            await client.logout()
    finally:
        client.close()
    return seen


async def sweep(
    config: Config,
    *,
    older_than: float = STALE_AFTER,
    runtime: Runtime | None = None,
    skip: Callable[[str], bool] | None = None,
    only: Callable[[str], bool] | None = None,
) -> SweepReport:
    """Every folder of every route's receiving account. Never raises for an account's
    trouble: that goes to `errors`, and its records wait for the next sweep. `runtime`:
    the daemon's (connection slots to log in through, its round trips in flight; None: a
    runtime of its own with the config's limits); `skip(account)`: accounts not to log in to
    now (auth backoff), reported in `errors`; `only(route)`: the routes this daemon runs."""
    runtime = runtime if runtime is not None else Runtime.for_config(config)
    store = await Canaries.open(config.daemon.state_dir)
    report = SweepReport()
    receivers = sorted({
        r.to for r in config.routes
        if config.account(r.to).imap is not None and (only is None or only(r.route_name))
    })
    swept: set[str] = set()

    async def one(name: str) -> None:
        if skip is not None and skip(name):
            report.errors[name] = "skipped: the account is in auth backoff"
            return
        # Its redactor knows the secrets used; the daemon's runtime: its resolver, tokens.
        ctx = ProbeContext(probe="sweep", target=name, runtime=runtime)
        try:
            with holding(runtime.limits):
                await _sweep_account(config, name, store, report, older_than, ctx=ctx)
            swept.add(name)
        except Exception as exc:  # one account must not stop the others
            fail = classify(exc, None)
            report.errors[name] = ctx.redact(f"{fail.cls}/{fail.reason}: {fail.detail}")

    await asyncio.gather(*(one(name) for name in receivers))
    now = time.time()
    routes = {r.route_name for r in config.routes}
    for record in await store.all():
        if record.route not in routes and record.receiver not in receivers and (
            now > record.deadline + ORPHAN_GRACE
        ):
            await store.remove(record.token)  # its route and receiver left the config
            continue
        if record.receiver not in swept or not is_orphan(record, now, active=runtime.canaries):
            continue
        if now <= record.deadline:  # it may still arrive; a sweep at its deadline decides
            until = report.pending_until
            report.pending_until = record.deadline if until is None else min(until, record.deadline)
            continue
        if record.status == "in_flight":
            await store.set_status(record.token, "lost")
            report.lost.append(record)
        else:  # "sending": the server may never have accepted it
            await store.remove(record.token)
    await store.forget_old(now)
    return report
