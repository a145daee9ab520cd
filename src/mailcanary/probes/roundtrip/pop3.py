"""A round trip that ends in a POP3-only mailbox: poll with UIDL and TOP, then DELE.

POP3 has no IDLE and no folders, and a session sees the maildrop as it was at login, so
each check is a short session of its own: log in, UIDL, TOP 0 of each message that was not
there before the canary was sent, look for the canary's token header, QUIT. The checks
back off from 50 ms to `MAX_POLL` seconds. Placement is `inbox` or `missing` (a POP3 client
cannot see a Junk folder). The canary is deleted with DELE, committed by QUIT.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from mailcanary.config import AccountConfig, RouteConfig
from mailcanary.diagnosis import DeliveryProblem, Where
from mailcanary.probes.mailbox.headers import auth_results, parse_headers
from mailcanary.probes.roundtrip.canary import TOKEN_HEADER
from mailcanary.probes.roundtrip.state import Canaries
from mailcanary.protocols.pop3 import Pop3Client
from mailcanary.protocols.signin import pop3_login
from mailcanary.protocols.transport import tls_context
from mailcanary.result import ProbeContext

FIRST_POLL = 0.05
MAX_POLL = 2.0
MAX_NEW = 200  # messages read per check at most (newest first): bounded work per poll

Submit = Callable[[], Awaitable[tuple[float, float]]]  # -> (monotonic, wall) accept time


async def _session(ctx: ProbeContext, receiver: AccountConfig) -> Pop3Client:
    assert receiver.pop3 is not None
    tls = tls_context(receiver.ca_file) if receiver.pop3.security != "none" else None
    client = Pop3Client(ctx, receiver.pop3, tls)
    try:
        await client.connect()
        await pop3_login(client, receiver)
    except BaseException:
        client.close()
        raise
    return client


async def _look(ctx: ProbeContext, receiver: AccountConfig, known: set[str],
                token: str) -> tuple[int, list[str]] | None:
    """One check: (message number, header lines) of the canary, deleted if found."""
    client = await _session(ctx, receiver)
    try:
        uids = await client.uidl()
        fresh = sorted((n for n, uid in uids.items() if uid not in known), reverse=True)
        for number in fresh[:MAX_NEW]:
            lines = await client.top(number, 0)
            if any(ln.lower().startswith(TOKEN_HEADER.lower() + ":") and token in ln
                   for ln in lines):
                return number, lines
            known.add(uids[number])  # not ours: never read it again
        return None
    finally:
        client.close()


async def _delete(ctx: ProbeContext, receiver: AccountConfig, token: str) -> bool:
    """DELE the canary in a fresh session (message numbers are per session)."""
    client = await _session(ctx, receiver)
    try:
        for number in sorted((await client.uidl()), reverse=True)[:MAX_NEW]:
            lines = await client.top(number, 0)
            if any(token in ln for ln in lines if ln.lower().startswith(TOKEN_HEADER.lower())):
                await client.dele(number)
                await client.command("QUIT")  # commits the deletion
                return True
        return False
    finally:
        client.close()


async def pop3_round_trip(ctx: ProbeContext, route: RouteConfig, receiver: AccountConfig, *,
                          store: Canaries, token: str, submit: Submit) -> None:
    """Baseline UIDL, submit, poll until the token shows up or the deadline, clean up."""
    assert receiver.pop3 is not None
    where = Where(receiver.pop3.host, receiver.pop3.effective_port, "pop3", receiver.provider)
    ctx.where = where
    client = await _session(ctx, receiver)
    try:
        with ctx.phase("select"):
            known = set((await client.uidl()).values())
        await client.quit()
    finally:
        client.close()
    accepted, accepted_wall = await submit()
    ctx.where = where
    ctx.extra.update(placement="missing", delivery_seconds=None)
    found: tuple[int, list[str]] | None = None
    with ctx.phase("deliver"):
        delay = FIRST_POLL
        while True:
            found = await _look(ctx, receiver, known, token)
            seen_at = time.monotonic()
            if found is not None or seen_at >= accepted + route.deadline:
                break
            await asyncio.sleep(min(delay, max(0.0, accepted + route.deadline - seen_at)))
            delay = min(delay * 2, MAX_POLL)
    if found is None:
        await store.set_status(token, "lost")
        ctx.current_phase = "deliver"
        raise DeliveryProblem("lost", f"not in the POP3 maildrop within {route.deadline:g} s "
                                      "of the SMTP server accepting it")
    headers = parse_headers("\r\n".join(found[1]).encode("utf-8", "replace") + b"\r\n\r\n")
    ctx.extra["auth_results"] = auth_results(headers)
    with ctx.phase("cleanup"):
        if await _delete(ctx, receiver, token):
            await store.remove(token)
        else:
            await store.set_status(token, "seen")
    delivery = seen_at - accepted
    ctx.extra.update(placement="inbox", delivery_seconds=round(delivery, 6))
    ctx.transcript.note("*", f"accepted at {accepted_wall:.3f}, seen after {delivery:.3f} s")
    if delivery > route.slo:
        ctx.current_phase = "deliver"
        raise DeliveryProblem("delayed", f"delivered after {delivery:.3f} s; the route's slo "
                                         f"is {route.slo:g} s")
