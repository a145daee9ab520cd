"""A triggered inbound watch: capture UIDNEXT, call the app, watch for its mail.

Order matters as in the round trip: the session is logged in, has noted INBOX's and Junk's
UIDNEXT and idles on INBOX *before* the trigger is called, so only mail that arrives after
that moment can count (a stale message with the same text never does), and the first
check follows the trigger's response within milliseconds. A failed trigger ends the run
at once; the trigger time is written to ``state_dir`` before the call, so nothing (restart,
reload, ``/probe``, ``check`` in a loop) calls the app again sooner than the interval.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable
from email.message import Message

from mailcanary.config import Config, InboundConfig
from mailcanary.diagnosis import DeliveryProblem, Where, classify
from mailcanary.diagnosis import spam as spam_diagnosis
from mailcanary.probes.inbound import memory as memory_store
from mailcanary.probes.inbound.finder import Found, MessageFinder
from mailcanary.probes.inbound.memory import Memory, Verdict
from mailcanary.probes.inbound.passive import passive
from mailcanary.probes.inbound.timing import grace as _grace
from mailcanary.probes.inbound.timing import interval_of
from mailcanary.probes.inbound.trigger import TriggerResponse, call_trigger
from mailcanary.probes.mailbox.headers import auth_results, parse_headers
from mailcanary.probes.mailbox.watcher import Sighting, Watcher
from mailcanary.protocols.imap import ImapClient, imap_client_for
from mailcanary.protocols.signin import imap_login
from mailcanary.result import ProbeContext

AfterSeen = Callable[[Found, TriggerResponse], Awaitable[None]]


def new_token() -> str:
    return secrets.token_hex(10)  # letters and digits only: safe inside a regex


async def probe(ctx: ProbeContext, config: Config, target: str) -> None:
    watch = config.inbound_watch(target)
    if watch.trigger is None:
        await passive(ctx, config, watch)
    else:
        await triggered(ctx, config, watch)


async def _replayed(ctx: ProbeContext, config: Config, watch: InboundConfig, mem: Memory) -> bool:
    """True when the last trigger is too recent: its verdict stands (raised if a failure)."""
    if mem.last_trigger is None:
        return False
    wait = mem.last_trigger + interval_of(config, watch) - time.time()
    if wait <= 0:
        return False
    if wait <= _grace(config, watch):
        await asyncio.sleep(wait)
        return False
    ctx.extra["replayed"] = {"triggered_at": round(mem.last_trigger, 3),
                             "next_trigger_in_seconds": round(wait, 1)}
    verdict, at = mem.verdict, mem.verdict_at or mem.last_trigger
    if verdict is None:  # the first run ever was cut off mid-way (a stop, a crash)
        verdict = Verdict("lost", "deliver", "the previous run ended before its verdict", "")
    ctx.extra.update(verdict.extra)
    if verdict.reason != "ok":
        ctx.current_phase = verdict.phase
        raise DeliveryProblem(
            verdict.reason,
            f"{verdict.detail} (the verdict of the run triggered {time.time() - at:.0f} s ago: "
            "the app is not triggered again sooner than the interval)",
            verdict.hint or None,
        )
    return True


async def triggered(
    ctx: ProbeContext, config: Config, watch: InboundConfig, *,
    after_seen: AfterSeen | None = None,
) -> None:
    """One triggered run. `after_seen` is for the benchmark (the truth from the Maildir)."""
    account = config.account(watch.account)
    assert account.imap is not None and watch.trigger is not None
    state_dir = config.daemon.state_dir
    mem = memory_store.load(state_dir, watch.name)
    if await _replayed(ctx, config, watch, mem):
        return
    ctx.where = Where(account.imap.host, account.imap.effective_port, "imap")
    imap = imap_client_for(ctx, account)
    watcher = Watcher(ctx, imap)
    try:
        await imap.connect()
        await imap_login(imap, account)
        with ctx.phase("select"):
            inbox_next = (await imap.status("INBOX", "UIDNEXT"))["UIDNEXT"]
            await watcher.prepare()
        token = new_token()
        ctx.extra["token"] = token
        mem.last_trigger = time.time()  # before the call: a crash still counts it
        memory_store.save(state_dir, watch.name, mem)
        finder = MessageFinder(
            lambda: watcher.client, watch.match.patterns(token),
            {watcher.inbox.wire: inbox_next, **watcher.junk_next}, mem.last_trigger - 1.0,
            label=watch.name,
        )
        try:
            await _run(ctx, config, watch, watcher, finder, token=token, after_seen=after_seen)
        except Exception as exc:
            fail = classify(exc, ctx.current_phase, ctx.where)
            mem.verdict = Verdict(fail.reason, ctx.current_phase, ctx.redact(fail.detail),
                                  ctx.redact(fail.hint), _kept(ctx))
            mem.verdict_at = mem.last_trigger
            raise
        else:
            mem.verdict, mem.verdict_at = Verdict("ok", None, "", "", _kept(ctx)), mem.last_trigger
        finally:
            memory_store.save(state_dir, watch.name, mem)
    finally:
        imap.close()
        watcher.client.close()  # the same client, or the one a reconnect opened


def _kept(ctx: ProbeContext) -> dict[str, object]:
    keys = ("placement", "delivery_seconds", "auth_results", "folder", "spam")
    return {k: ctx.extra[k] for k in keys if k in ctx.extra}


async def _run(
    ctx: ProbeContext, config: Config, watch: InboundConfig, watcher: Watcher,
    finder: MessageFinder, *, token: str, after_seen: AfterSeen | None,
) -> None:
    account = config.account(watch.account)
    assert watch.trigger is not None
    with ctx.phase("trigger"):
        response = await call_trigger(
            ctx, watch.trigger, address=account.address, token=token,
            limit=config.timeout_of(account),
        )
    ctx.extra.update(placement="missing", delivery_seconds=None)  # sent: now it can be lost
    with ctx.phase("deliver"):
        start = response.responded
        sighting = await watcher.watch(finder, start, start + watch.deadline)
        late = sighting is None
        if sighting is None:
            sighting = await watcher.search_elsewhere(finder)
        if sighting is not None:
            read_found(ctx, finder.get(sighting.folder, sighting.uid), sighting.placement)
    ctx.extra["messages_fetched"] = finder.fetched
    if sighting is not None and after_seen is not None:
        await after_seen(finder.get(sighting.folder, sighting.uid), response)
    with ctx.phase("cleanup"):
        if sighting is not None and watch.cleanup == "delete":
            await delete_found(ctx, watcher, sighting)
        await watcher.leave_idle()
    client: ImapClient = watcher.client
    ctx.extra["imap_commands"] = client.commands_sent
    await client.logout()
    _verdict(ctx, watch, sighting, late, start)


def read_found(ctx: ProbeContext, found: Found, placement: str) -> Message:
    """auth_results for the JSON; for a message in Junk, what the receiving side said."""
    headers = parse_headers(found.raw)
    ctx.extra["auth_results"] = auth_results(headers)
    if placement == "spam":
        ctx.extra["spam"] = spam_diagnosis.as_json(spam_diagnosis.explain_spam(headers))
    return headers


async def delete_found(ctx: ProbeContext, watcher: Watcher, sighting: Sighting) -> None:
    """Exactly the matched message: UID EXPUNGE (never a plain EXPUNGE of others' mail)."""
    await watcher.select(sighting.folder)
    if not await watcher.client.uid_delete([sighting.uid]):
        ctx.extra["cleanup"] = "left marked \\Deleted (no UIDPLUS, other deletions)"


def spam_problem(ctx: ProbeContext, what: str) -> DeliveryProblem:
    explanation = spam_diagnosis.from_json(ctx.extra.get("spam"))
    ctx.current_phase = "deliver"
    if explanation is None:
        return DeliveryProblem("spam_folder", what)
    return DeliveryProblem("spam_folder", f"{what}; {explanation.detail()}", explanation.hint)


def _verdict(
    ctx: ProbeContext, watch: InboundConfig, sighting: Sighting | None, late: bool, start: float
) -> None:
    ctx.current_phase = "deliver"
    if sighting is None:
        raise DeliveryProblem(
            "lost", f"no matching message in INBOX, Junk or any other folder within "
            f"{watch.deadline:g} s of the trigger's response",
        )
    ctx.extra["placement"] = sighting.placement
    ctx.extra["folder"] = sighting.folder.name
    if late:
        raise DeliveryProblem(
            "lost", f"no matching message in INBOX or Junk within {watch.deadline:g} s; found "
            f"afterwards in folder {sighting.folder.name!r}",
        )
    delivery = max(0.0, sighting.seen_at - start)
    ctx.extra["delivery_seconds"] = round(delivery, 6)
    if sighting.placement == "spam":
        raise spam_problem(
            ctx, f"delivered to the junk folder {sighting.folder.name!r} after {delivery:.3f} s"
        )
    if delivery > watch.slo:
        raise DeliveryProblem(
            "delayed", f"delivered after {delivery:.3f} s; the watch's slo is {watch.slo:g} s"
        )
    ctx.current_phase = None
