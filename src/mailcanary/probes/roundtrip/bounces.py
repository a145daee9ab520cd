"""The canary's bounce: watched for in the sender's mailbox while the receiver's is watched.

When the receiving side refuses a canary after the sender's server accepted it, a DSN comes
back to the `from` address. A second session (the sender's IMAP, when it has one) watches
its INBOX and Junk like the receiver's: ``UID SEARCH UID n:* TEXT <token>`` finds mail that
quotes the canary (the bounce's returned headers hold its token), each hit is fetched
(bounded) and parsed (probes/mailbox/bounce.py). The first failed DSN ends both watches;
a delay warning or the canary itself (sender = receiver) is passed over. Only that bounce
is deleted, in the cleanup phase.
"""

from __future__ import annotations

import asyncio
import time

from mailcanary.config import AccountConfig
from mailcanary.diagnosis import Bounced, ProbeError
from mailcanary.probes.inbound.finder import fetch_message
from mailcanary.probes.mailbox.bounce import Bounce, parse_bounce
from mailcanary.probes.mailbox.watcher import Sighting, Watcher
from mailcanary.protocols.imap import ImapClient, imap_client_for
from mailcanary.protocols.mailboxes import Folder
from mailcanary.protocols.signin import imap_login
from mailcanary.result import ProbeContext

# What may go wrong in the sender's session: it costs the bounce watch, never the round trip.
_SESSION_ERRORS = (OSError, TimeoutError, EOFError, asyncio.IncompleteReadError, ProbeError)


class BounceWatch:
    """The sender's session, watching for the bounce of one canary."""

    def __init__(self, ctx: ProbeContext, watcher: Watcher, token: str) -> None:
        self.ctx = ctx
        self.watcher = watcher
        self.token = token
        self.passed: set[tuple[str, int]] = set()  # (folder, uid) read and not our bounce
        self.found: tuple[Folder, int, Bounce] | None = None

    async def find(self, folder: Folder) -> list[int]:
        """The bounce's UID in the selected `folder` (new mail only), else []."""
        w = self.watcher
        first = w.inbox_next if folder.wire == w.inbox.wire else w.junk_next.get(folder.wire, 1)
        uids = await w.client.uid_search("UID", f"{max(first, 1)}:*", "TEXT", self.token)
        for uid in uids:
            if uid < first or (folder.wire, uid) in self.passed:
                continue
            raw, _ = await fetch_message(w.client, uid)
            bounce = parse_bounce(raw, self.token)
            if bounce is None or not bounce.failed:
                self.passed.add((folder.wire, uid))
                if bounce is not None:
                    self.ctx.transcript.note(
                        "*", f"delay notice for the canary ({bounce.status} "
                        f"{bounce.diagnostic}): still waiting")
                continue
            self.found = (folder, uid, bounce)
            return [uid]
        return []

    async def watch(self, accepted: float, deadline: float, stop: asyncio.Event) -> None:
        """Until the bounce is found (then `stop` is set), `stop` or the deadline. A failing
        sender session only ends this watch (noted in the transcript)."""
        try:
            await self.watcher.watch(self.find, accepted, deadline, stop)
        except _SESSION_ERRORS as exc:
            self.ctx.transcript.note("*", f"bounce watch ended: {exc}")
            return
        finally:
            self.ctx.current_phase = "deliver"
        if self.found is not None:
            stop.set()

    async def delete(self) -> None:
        """Delete the bounce (only it) and log out; errors are noted, not raised."""
        try:
            if self.found is not None:
                folder, uid, _ = self.found
                await self.watcher.select(folder)
                if not await self.watcher.client.uid_delete([uid]):
                    self.ctx.extra["cleanup"] = "bounce left marked \\Deleted (no UIDPLUS)"
            await self.watcher.leave_idle()
            await self.watcher.client.logout()
        except _SESSION_ERRORS as exc:
            self.ctx.transcript.note("*", f"could not delete the bounce: {exc}")

    def problem(self) -> Bounced | None:
        """What the verdict raises: the bounce as the SMTP reply it quotes."""
        if self.found is None:
            return None
        bounce = self.found[2]
        self.ctx.extra["bounce"] = bounce.as_json()
        return Bounced(bounce.command, bounce.reply_code, bounce.status, bounce.diagnostic,
                       bounce.recipient)


async def open_bounce_watch(
    ctx: ProbeContext, sender: AccountConfig, token: str, sessions: list[ImapClient],
) -> BounceWatch | None:
    """The sender's session, prepared (UIDNEXT noted, idling) before the canary is sent;
    None when the sender has no IMAP or its session cannot be opened (noted)."""
    if sender.imap is None:
        return None
    client = imap_client_for(ctx, sender)
    sessions.append(client)
    started = time.monotonic()
    try:
        await client.connect()
        await imap_login(client, sender)
        watcher = Watcher(ctx, client)
        await watcher.prepare()
    except _SESSION_ERRORS as exc:
        ctx.transcript.note("*", f"bounces not watched: the sender's IMAP failed: {exc}")
        return None
    ctx.transcript.note("*", f"watching {sender.name}'s mailbox for a bounce "
                        f"(ready in {time.monotonic() - started:.3f} s)")
    return BounceWatch(ctx, watcher, token)


async def watch_both(
    receiver: Watcher, bounces: BounceWatch | None, token: str, accepted: float,
    deadline: float,
) -> Sighting | None:
    """The receiver's watch, with the bounce watch beside it: whichever answers first
    ends both. None when the canary was not seen (bounced or not)."""
    if bounces is None:
        return await receiver.watch(token, accepted, deadline)
    stop = asyncio.Event()
    side = asyncio.create_task(bounces.watch(accepted, deadline, stop))
    try:
        sighting = await receiver.watch(token, accepted, deadline, stop)
    finally:
        stop.set()
        await asyncio.gather(side, return_exceptions=True)
    return sighting
