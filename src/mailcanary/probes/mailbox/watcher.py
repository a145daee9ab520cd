"""Watching a mailbox for one message: IDLE plus cheap, quickly backed-off checks.

IDLE alone is late on Dovecot (it waits 500 ms before telling an idling client), so the
checks that date the arrival are ``UID SEARCH HEADER X-Mailcanary-Token <token>`` on INBOX
(pipelined with ``STATUS <junk> (UIDNEXT)`` for each Junk folder), sent 5, 15, 35, 75 ms ...
after the server accepted the canary, when arrival is likeliest. Between sparse checks the
session idles, so a push wakes us early. The arrival time is the middle of the check that
first saw the canary: the server looked then.

Each search covers only UIDs from the UIDNEXT noted before the canary was sent (``UID
n:* HEADER ...``): the canary cannot have an older UID, and the server then scans a
handful of new messages instead of the whole mailbox. While waiting the probe holds no
connection slot (`limits.release_held`): an idling session costs the server a socket,
not a login, and other probes of the same server must not wait for a delivery.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeAlias

from mailcanary.diagnosis import ImapReplyError
from mailcanary.protocols.imap import ImapClient
from mailcanary.protocols.limits import release_held
from mailcanary.protocols.mailboxes import Folder, junk_folders
from mailcanary.result import ProbeContext

FIRST_CHECK = 0.005  # seconds after the SMTP accept
FAST_GROWTH = 2.0  # back off quickly while arrival is likely...
FAST_UNTIL = 0.5  # ...up to this gap between checks,
SLOW_GROWTH = 1.25  # then grow gently
CAP_WITH_IDLE = 5.0  # the push wakes us in between
CAP_POLLING = 15.0
IDLE_MIN = 0.2  # gaps shorter than this are slept, not idled (IDLE + DONE cost two RTTs)
MAX_REOPENS = 5  # connections lost while waiting for one canary before giving up

Reopen = Callable[[], Awaitable[ImapClient]]


@dataclass(frozen=True)
class Sighting:
    folder: Folder
    uid: int
    seen_at: float  # time.monotonic() when the server saw it
    placement: str  # inbox | spam | other


# What to look for in the selected folder: matching UIDs. A string means a search of the
# watcher's `token_header` for it (a round trip's canary token); inbound watches pass their
# own finder (UIDs past UIDNEXT, regexes).
Finder = Callable[[Folder], Awaitable[list[int]]]
Look: TypeAlias = str | Finder  # what check/watch/search_elsewhere look for


def next_gap(gap: float, *, idle: bool) -> float:
    grown = gap * (FAST_GROWTH if gap < FAST_UNTIL else SLOW_GROWTH)
    return min(grown, CAP_WITH_IDLE if idle else CAP_POLLING)


def _inbox(folders: list[Folder]) -> Folder:
    for folder in folders:
        if folder.is_inbox:
            return folder
    return Folder("INBOX", "INBOX", frozenset(), None)


class Watcher:
    def __init__(
        self, ctx: ProbeContext, client: ImapClient, *, use_special_use: bool = True,
        reopen: Reopen | None = None, token_header: str | None = None,
    ):
        self.ctx = ctx
        self.token_header = token_header  # the header a string `Look` is searched in
        self.client = client
        self.reopen = reopen  # a new logged-in session, when the server drops ours
        self.reopened = 0
        self.use_special_use = use_special_use
        self.folders: list[Folder] = []
        self.inbox = _inbox([])
        self.junk: list[Folder] = []
        self.junk_next: dict[str, int] = {}
        self.inbox_next = 1  # INBOX's UIDNEXT before the canary was sent
        self.selected: tuple[str, bool] | None = None  # (wire name, read-only)
        self.idling = False

    async def prepare(self) -> None:
        """LIST, SELECT INBOX, note Junk's UIDNEXT, then IDLE: all before the canary is sent."""
        self.folders = await self.client.list_folders()
        self.inbox = _inbox(self.folders)
        self.junk = junk_folders(self.folders, use_special_use=self.use_special_use)
        self.ctx.transcript.note(
            "*", "junk folder(s): " + (", ".join(f.name for f in self.junk) or "none found")
        )
        self.inbox_next = (await self.client.status(self.inbox, "UIDNEXT")).get("UIDNEXT", 1)
        await self.select(self.inbox)
        for folder in self.junk:
            self.junk_next[folder.wire] = (await self.client.status(folder, "UIDNEXT"))["UIDNEXT"]
        await self.idle()

    async def select(self, folder: Folder, *, readonly: bool = False) -> None:
        await self.leave_idle()
        if self.selected == (folder.wire, readonly) or (
            readonly and self.selected == (folder.wire, False)
        ):
            return
        await self.client.select_folder(folder, readonly=readonly)
        self.selected = (folder.wire, readonly)

    def selected_folder(self) -> Folder:
        for folder in [self.inbox, *self.folders]:
            if self.selected is not None and folder.wire == self.selected[0]:
                return folder
        return self.inbox

    async def idle(self) -> None:
        if self.client.supports_idle and not self.idling:
            # Before the await: an IDLE whose start was cut short (a watch stopped by
            # the other one) still needs its DONE, or the next command waits forever.
            self.idling = True
            await self.client.idle_start()

    async def leave_idle(self) -> None:
        if self.idling:
            self.idling = False
            await self.client.idle_stop()

    def finder(self, what: Look) -> Finder:
        if not isinstance(what, str):
            return what
        token = what

        async def by_token(folder: Folder) -> list[int]:
            if folder.wire == self.inbox.wire:
                return await self.search_new(token, self.inbox_next)
            return await self.search_new(token, self.junk_next.get(folder.wire, 1))

        return by_token

    async def check(self, token: Look) -> Sighting | None:
        """One look at INBOX and the Junk folders' UIDNEXT, pipelined."""
        find = self.finder(token)
        await self.select(self.inbox)
        start = time.monotonic()
        # Sent back to back: the replies come in one round trip.
        search = asyncio.ensure_future(find(self.inbox))
        statuses = [asyncio.ensure_future(self.client.status(f, "UIDNEXT")) for f in self.junk]
        try:
            found = await search
            junk_status = [await s for s in statuses]
        finally:
            for task in statuses:
                task.cancel()
        at = (start + time.monotonic()) / 2
        if found:
            return Sighting(self.inbox, found[-1], at, "inbox")
        for folder, status in zip(self.junk, junk_status, strict=True):
            uidnext = status.get("UIDNEXT", 0)
            if uidnext == self.junk_next.get(folder.wire):
                continue
            await self.select(folder, readonly=True)
            uids = await find(folder)
            if uids:
                return Sighting(folder, uids[-1], at, "spam")
            self.junk_next[folder.wire] = uidnext
        return None

    async def search_new(self, token: str, first_uid: int) -> list[int]:
        """The UIDs among messages from `first_uid` on whose `token_header` holds `token`
        (``n:*`` also names the highest UID when all are older, hence the filter)."""
        if self.token_header is None:
            raise ValueError("a token search needs the watcher's token_header")
        uids = await self.client.uid_search(
            "UID", f"{max(first_uid, 1)}:*", "HEADER", self.token_header, token
        )
        return [uid for uid in uids if uid >= first_uid]

    async def watch(
        self, token: Look, accepted: float, deadline: float, stop: asyncio.Event | None = None
    ) -> Sighting | None:
        """Checks from `accepted` (monotonic) until `deadline` (monotonic); None if unseen
        or once `stop` is set (another watch found the answer: a bounce). A connection
        lost meanwhile is re-opened and the wait goes on."""
        release_held()
        gap = FIRST_CHECK
        next_check = accepted + gap
        while stop is None or not stop.is_set():
            try:
                sighting = await self._wait_and_check(token, next_check, deadline, stop)
            except (OSError, asyncio.IncompleteReadError) as exc:
                await self._reopen(exc)
                next_check = time.monotonic()
                continue
            if sighting is not None:
                return sighting
            now = time.monotonic()
            if now >= deadline:
                return None
            gap = next_gap(gap, idle=self.client.supports_idle)
            next_check = max(next_check + gap, now)
        return None

    async def _wait_and_check(
        self, token: Look, next_check: float, deadline: float, stop: asyncio.Event | None
    ) -> Sighting | None:
        wait = min(next_check, deadline) - time.monotonic()
        if wait > 0:
            await self._pause(wait, stop)
            if stop is not None and stop.is_set():
                return None
        return await self.check(token)

    async def _pause(self, wait: float, stop: asyncio.Event | None) -> None:
        """Idle (or sleep) for `wait` seconds, or until `stop` is set."""
        pause = asyncio.ensure_future(self._idle_or_sleep(wait))
        if stop is None:
            await pause
            return
        stopped = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({pause, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (pause, stopped):
                task.cancel()
            await asyncio.gather(pause, stopped, return_exceptions=True)
        failed = None if pause.cancelled() else pause.exception()
        if failed is not None:
            raise failed  # a lost connection: `watch` re-opens it

    async def _idle_or_sleep(self, wait: float) -> None:
        if self.client.supports_idle and wait >= IDLE_MIN:
            await self.idle()
            pushed = await self.client.idle_wait(wait)
            if pushed:
                self.ctx.transcript.note("*", "server pushed news: checking now")
        else:
            await self.leave_idle()
            await asyncio.sleep(wait)

    async def _reopen(self, lost: BaseException) -> None:
        """A new session in place of the lost one, looking where the old one looked (the
        Junk folders' UIDNEXT from before the send is kept). If that fails, the round trip
        fails in phase deliver."""
        self.reopened += 1
        if self.reopen is None or self.reopened > MAX_REOPENS:
            raise lost
        self.ctx.transcript.note("*", f"connection lost while waiting ({lost}): re-opening")
        self.client.close()
        self.selected, self.idling = None, False
        known, inbox_next = dict(self.junk_next), self.inbox_next
        try:
            self.client = await self.reopen()
            await self.prepare()
        finally:
            self.ctx.current_phase = "deliver"  # the new session's phases ended inside it
            release_held()  # the new session waits too: it holds no connection slot
        self.junk_next.update({k: v for k, v in known.items() if k in self.junk_next})
        self.inbox_next = inbox_next  # the canary may have arrived before the new session

    async def search_elsewhere(self, token: Look) -> Sighting | None:
        """After the deadline: is it in some other folder (All Mail, Archive, a rule's)?"""
        find = self.finder(token)
        skip = {self.inbox.wire} | {f.wire for f in self.junk}
        for folder in self.folders:
            if not folder.selectable or folder.wire in skip:
                continue
            try:
                await self.select(folder, readonly=True)
            except ImapReplyError as exc:  # a folder we may not open is no verdict
                self.ctx.transcript.note("*", f"cannot open {folder.name}: {exc}")
                continue
            uids = await find(folder)
            if uids:
                return Sighting(folder, uids[-1], time.monotonic(), "other")
        return None
