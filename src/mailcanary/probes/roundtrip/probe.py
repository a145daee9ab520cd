"""Round trip: send a canary through the sender's SMTP server, watch the receiver's IMAP
(or poll its POP3 maildrop when it has no IMAP: roundtrip/pop3.py).

Order matters: the receiving session is logged in, has LISTed its folders and idles on
INBOX *before* the canary is submitted, so the first check can follow the SMTP accept
within milliseconds. The in-flight record is written before submission (see canarystate).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime

from mailcanary.config import AccountConfig, Config, RouteConfig
from mailcanary.diagnosis import DeliveryProblem, SmtpReplyError, Where
from mailcanary.diagnosis import spam as spam_diagnosis
from mailcanary.probes.mailbox.headers import auth_results, parse_headers, received_hops
from mailcanary.probes.mailbox.watcher import Reopen, Sighting, Watcher
from mailcanary.probes.roundtrip.bounces import BounceWatch, open_bounce_watch, watch_both
from mailcanary.probes.roundtrip.canary import TOKEN_HEADER, new_canary
from mailcanary.probes.roundtrip.pop3 import pop3_round_trip
from mailcanary.probes.roundtrip.state import Canaries
from mailcanary.probes.roundtrip.sweep import SweepReport, sweep, sweep_selected
from mailcanary.protocols.imap import ImapClient, imap_client_for
from mailcanary.protocols.runtime import runtime_of
from mailcanary.protocols.signin import imap_login, smtp_login
from mailcanary.protocols.smtp import SmtpClient
from mailcanary.protocols.transport import tls_context
from mailcanary.result import ProbeContext

__all__ = ["SweepReport", "probe", "round_trip", "sweep"]

AfterAccept = Callable[[bytes], Awaitable[None]]
AfterSeen = Callable[[str, float], Awaitable[None]]  # (token, accept time by time.time())


def _smtp_client(ctx: ProbeContext, account: AccountConfig) -> SmtpClient:
    assert account.smtp is not None
    tls = tls_context(account.ca_file) if account.smtp.security != "none" else None
    return SmtpClient(ctx, account.smtp, tls)


async def probe(ctx: ProbeContext, config: Config, target: str) -> None:
    route = config.route(target)
    if config.account(route.to).imap is None:  # a POP3-only mailbox (roundtrip/pop3.py)
        await _pop3_route(ctx, config, route)
    else:
        await round_trip(ctx, config, target)


async def round_trip(
    ctx: ProbeContext,
    config: Config,
    target: str,
    *,
    extra_headers: Mapping[str, str] | None = None,
    extra_body: str = "",
    after_accept: AfterAccept | None = None,
    after_seen: AfterSeen | None = None,
    use_special_use: bool = True,
) -> None:
    """One canary. Keyword arguments serve tests and the benchmark only: extra headers and
    body text, hooks after the SMTP accept and before the cleanup, SPECIAL-USE ignored."""
    route = config.route(target)
    sender, receiver = config.account(route.from_), config.account(route.to)
    assert sender.smtp is not None and receiver.imap is not None
    store = await Canaries.open(config.daemon.state_dir)
    canary = new_canary(route.route_name, sender.address, receiver.address, store.installation)
    message = canary.message(extra_headers, extra_body)
    token = ctx.extra["token"] = canary.token
    imap_where = Where(receiver.imap.host, receiver.imap.effective_port, "imap")
    ctx.where = imap_where
    imap = imap_client_for(ctx, receiver)
    smtp = _smtp_client(ctx, sender)
    quitting: asyncio.Task[None] | None = None
    sessions = [imap]  # and those a watcher opens when the server drops one
    runtime_of(ctx).canaries.add(token)  # never swept from under this run
    try:
        await imap.connect()
        await imap_login(imap, receiver)
        watcher = Watcher(ctx, imap, use_special_use=use_special_use,
                          reopen=_reopener(ctx, receiver, sessions), token_header=TOKEN_HEADER)
        with ctx.phase("select"):
            await watcher.prepare()
            bounces = await open_bounce_watch(ctx, sender, token, sessions)
        accepted, accepted_wall = await _submit(
            ctx, smtp, store, sender=sender, receiver=receiver, route=route, message=message,
            token=token,
        )
        ctx.extra.update(placement="missing", delivery_seconds=None)
        quitting = asyncio.create_task(smtp.quit())
        ctx.where = imap_where
        if after_accept is not None:
            await after_accept(message)
        sighting, late = await _watch_and_clean(
            ctx, watcher, store, token=token, accepted=accepted, accepted_wall=accepted_wall,
            deadline=route.deadline, after_seen=after_seen, bounces=bounces,
        )
        ctx.extra["imap_commands"] = watcher.client.commands_sent
        await watcher.client.logout()
        _verdict(ctx, deadline=route.deadline, slo=route.slo, sighting=sighting, late=late,
                 accepted=accepted, bounces=bounces)
    finally:
        runtime_of(ctx).canaries.discard(token)
        if quitting is not None:
            await asyncio.gather(quitting, return_exceptions=True)
        smtp.close()
        for session in sessions:
            session.close()


def _reopener(ctx: ProbeContext, receiver: AccountConfig, sessions: list[ImapClient]) -> Reopen:
    """How a watcher gets a new logged-in session when the server dropped its own."""

    async def reopen() -> ImapClient:
        client = imap_client_for(ctx, receiver)
        sessions.append(client)
        try:
            await client.connect()
            await imap_login(client, receiver)
        except BaseException:
            client.close()
            raise
        return client
    return reopen


async def _pop3_route(ctx: ProbeContext, config: Config, route: RouteConfig) -> None:
    sender, receiver = config.account(route.from_), config.account(route.to)
    store = await Canaries.open(config.daemon.state_dir)
    canary = new_canary(route.route_name, sender.address, receiver.address, store.installation)
    message = canary.message()
    token = ctx.extra["token"] = canary.token
    smtp = _smtp_client(ctx, sender)

    async def submit() -> tuple[float, float]:
        accepted = await _submit(ctx, smtp, store, sender=sender, receiver=receiver,
                                 route=route, message=message, token=token)
        await smtp.quit()
        return accepted

    runtime_of(ctx).canaries.add(token)  # never swept from under this run
    try:
        await pop3_round_trip(ctx, route, receiver, store=store, token=token, submit=submit)
    finally:
        runtime_of(ctx).canaries.discard(token)
        smtp.close()
        # The sweep reads IMAP folders only: a record this run left in flight (an error
        # while polling, a stop) would never get a verdict; let it age out as lost.
        record = await store.get(token)
        if record is not None and record.status == "in_flight":
            await store.set_status(token, "lost")


async def _submit(
    ctx: ProbeContext, smtp: SmtpClient, store: Canaries, *, sender: AccountConfig,
    receiver: AccountConfig, route: RouteConfig, message: bytes, token: str,
) -> tuple[float, float]:
    """Log in to the sender and submit: (monotonic, wall) time of the server's accept.

    The in-flight record is written before DATA, so a crash mid-submission leaves a trace.
    """
    assert sender.smtp is not None
    ctx.where = Where(sender.smtp.host, sender.smtp.effective_port, "smtp")
    await smtp.connect()
    await smtp_login(smtp, sender)
    await store.add(token, route.route_name, receiver.name, route.deadline)
    with ctx.phase("send"):
        try:
            accepted = await smtp.send_message(sender.address, [receiver.address], message)
        except SmtpReplyError:
            await store.remove(token)  # refused: nothing is in flight
            raise
    accepted_wall = time.time() - (time.monotonic() - accepted)
    await store.accepted(token, accepted_wall, route.deadline)
    return accepted, accepted_wall


async def _watch_and_clean(
    ctx: ProbeContext,
    watcher: Watcher,
    store: Canaries,
    *,
    token: str,
    accepted: float,
    accepted_wall: float,
    deadline: float,
    after_seen: AfterSeen | None,
    bounces: BounceWatch | None,
) -> tuple[Sighting | None, bool]:
    """Phases deliver and cleanup: (where it was seen, whether only after the deadline).
    A bounce ends the watch: no search elsewhere, the record goes, the bounce too."""
    with ctx.phase("deliver"):
        sighting = await watch_both(watcher, bounces, token, accepted, accepted + deadline)
        bounced = bounces is not None and bounces.found is not None
        late = sighting is None and not bounced
        if late:
            sighting = await watcher.search_elsewhere(token)
        if sighting is not None:
            await _read_headers(ctx, watcher, sighting, accepted_wall)
    if after_seen is not None:
        await after_seen(token, accepted_wall)
    with ctx.phase("cleanup"):
        if sighting is not None:
            await watcher.select(sighting.folder)
            await store.set_status(token, "seen")  # a kill after the delete is then no false "lost"
            if await watcher.client.uid_delete([sighting.uid]):
                await store.remove(token)
            else:
                await store.set_status(token, "seen")
                ctx.extra["cleanup"] = "left marked \\Deleted (no UIDPLUS, other deletions)"
        elif bounced:
            await store.remove(token)  # its verdict is the bounce: nothing left in flight
        else:
            await store.set_status(token, "lost")
        if bounces is not None:
            await bounces.delete()
        report = await sweep_selected(ctx, watcher, store)
        if report.late:
            ctx.extra["late_canaries"] = [c.as_json() for c in report.late]
        await watcher.leave_idle()
    return sighting, late


async def _read_headers(
    ctx: ProbeContext, watcher: Watcher, sighting: Sighting, accepted_wall: float
) -> None:
    """Authentication-Results for the JSON, Received hops for the transcript."""
    await watcher.select(sighting.folder, readonly=True)
    raw, _ = await watcher.client.uid_fetch_header(sighting.uid)
    headers = parse_headers(raw)
    ctx.extra["auth_results"] = auth_results(headers)
    if sighting.placement == "spam":  # what the receiving side said, for the verdict
        ctx.extra["spam"] = spam_diagnosis.as_json(spam_diagnosis.explain_spam(headers))
    accepted_at = datetime.fromtimestamp(accepted_wall, UTC)
    for hop in received_hops(headers):
        when = "no time" if hop.at is None else (
            f"{hop.at.isoformat()} ({(hop.at - accepted_at).total_seconds():+.3f} s "
            "from the accept, 1 s resolution)"
        )
        ctx.transcript.note("*", f"Received by {hop.by} at {when}")


def _verdict(
    ctx: ProbeContext,
    *,
    deadline: float,
    slo: float,
    sighting: Sighting | None,
    late: bool,
    accepted: float,
    bounces: BounceWatch | None = None,
) -> None:
    bounced = bounces.problem() if bounces is not None else None
    if bounced is not None:
        ctx.current_phase = "deliver"
        raise bounced
    if sighting is None:
        raise _deliver_problem(
            ctx, "lost",
            f"not seen in INBOX, Junk or any other folder within {deadline:g} s of the SMTP "
            "server accepting it",
        )
    ctx.extra["placement"] = sighting.placement
    ctx.extra["folder"] = sighting.folder.name
    if late:
        raise _deliver_problem(
            ctx, "lost",
            f"not in INBOX or Junk within {deadline:g} s; found afterwards in folder "
            f"{sighting.folder.name!r}",
        )
    delivery = sighting.seen_at - accepted
    ctx.extra["delivery_seconds"] = round(delivery, 6)
    if sighting.placement == "spam":
        what = f"delivered to the junk folder {sighting.folder.name!r} after {delivery:.3f} s"
        why = spam_diagnosis.from_json(ctx.extra.get("spam"))
        problem = _deliver_problem(ctx, "spam_folder", what)
        if why is not None:
            problem = DeliveryProblem("spam_folder", f"{what}; {why.detail()}", why.hint)
        raise problem
    if delivery > slo:
        raise _deliver_problem(
            ctx, "delayed", f"delivered after {delivery:.3f} s; the route's slo is {slo:g} s"
        )


def _deliver_problem(ctx: ProbeContext, reason: str, detail: str) -> DeliveryProblem:
    ctx.current_phase = "deliver"  # where the runner reports it
    return DeliveryProblem(reason, detail)
