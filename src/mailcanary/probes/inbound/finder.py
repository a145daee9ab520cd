"""Finding the app's message over IMAP: only new UIDs, each fetched and matched once.

In INBOX and Junk a message counts only with a UID at or past the UIDNEXT captured before
the trigger (``UID SEARCH UID n:*`` also returns the last message when none is newer, so
the result is filtered). Folders without a captured UIDNEXT (the other folders after the
deadline, a passive watch's first look) count messages by INTERNALDATE instead. Bodies are
fetched with BODY.PEEK, so the user's \\Seen flags stay untouched. Anyone can send mail
here: a message is decoded in a worker thread (the loop keeps serving /metrics and other
probes), and one that cannot be parsed is skipped with a warning, like any examined UID.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import structlog

from mailcanary.probes.inbound.message import Readable, Unparseable, matches, readable
from mailcanary.protocols.imap import ImapClient
from mailcanary.protocols.mailboxes import Folder

log = structlog.get_logger("mailcanary.inbound")

_INTERNALDATE = re.compile(rb'INTERNALDATE "([^"]+)"')
_UID = re.compile(rb"\bUID (\d+)")
FETCH_LIMIT = 256 * 1024
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass
class Found:
    folder: Folder
    uid: int
    raw: bytes
    arrived: float | None  # INTERNALDATE as a wall time


def imap_date(wall: float) -> str:
    day = datetime.fromtimestamp(wall, UTC)
    return f"{day.day}-{_MONTHS[day.month - 1]}-{day.year}"


async def fetch_message(client: ImapClient, uid: int) -> tuple[bytes, float | None]:
    """The message's first FETCH_LIMIT bytes and its INTERNALDATE, without setting \\Seen.

    An app's mail is small; the limit keeps a stranger's 30 MB attachment in the same
    mailbox from costing memory and time (the text parts come first)."""
    response = await client.command(
        "FETCH", str(uid), f"(INTERNALDATE BODY.PEEK[]<0.{FETCH_LIMIT}>)", uid=True, fetch=True
    )
    raw, arrived = b"", None
    for line in response.lines[:-1]:
        if isinstance(line, bytearray):
            raw = raw or bytes(line)
        else:
            arrived = _internaldate(bytes(line)) or arrived
    return raw, arrived


def _internaldate(line: bytes) -> float | None:
    match = _INTERNALDATE.search(line)
    if match is None:
        return None
    try:
        return datetime.strptime(match.group(1).decode(), "%d-%b-%Y %H:%M:%S %z").timestamp()
    except ValueError:
        return None


def uid_set(uids: list[int]) -> str:
    """Sorted UIDs as an IMAP sequence set with ranges: [1, 2, 3, 7] -> "1:3,7"."""
    parts: list[str] = []
    start = prev = uids[0]
    for uid in [*uids[1:], -1]:
        if uid == prev + 1:
            prev = uid
            continue
        parts.append(str(start) if start == prev else f"{start}:{prev}")
        start = prev = uid
    return ",".join(parts)


async def arrived_since(client: ImapClient, since: float) -> list[int]:
    """UIDs of the selected folder whose INTERNALDATE is `since` or later: a day's SEARCH,
    then one FETCH of the dates (no bodies), so a big folder costs two commands."""
    uids = await client.uid_search("SINCE", imap_date(since - 86400))
    if not uids:
        return []
    response = await client.command(
        "FETCH", uid_set(uids), "(UID INTERNALDATE)", uid=True, fetch=True
    )
    out = []
    for line in response.lines[:-1]:
        uid = _UID.search(bytes(line))
        arrived = _internaldate(bytes(line))
        if uid is not None and arrived is not None and arrived >= since:
            out.append(int(uid.group(1)))
    return sorted(out)


@dataclass
class MessageFinder:
    """A `Watcher` finder: matching UIDs in the selected folder, newest last.

    `session` returns the IMAP client to use now (the watcher's, which may reconnect)."""

    session: Callable[[], ImapClient]
    patterns: dict[str, re.Pattern[str]]
    floors: dict[str, int]  # folder wire name -> first UID that counts
    not_before: float  # wall time: elsewhere, only messages that arrived since then count
    examined: dict[str, set[int]] = field(default_factory=dict)
    found: dict[tuple[str, int], Found] = field(default_factory=dict)
    fetched: int = 0
    cpu: float = 0.0  # process time spent decoding and matching
    label: str = ""  # the watch's name, for the log
    skipped: int = 0  # messages that could not be parsed

    @property
    def client(self) -> ImapClient:
        return self.session()

    async def candidates(self, folder: Folder) -> list[int]:
        floor = self.floors.get(folder.wire)
        if floor is not None:
            uids = await self.client.uid_search("UID", f"{floor}:*")
            return [u for u in uids if u >= floor]
        return await arrived_since(self.client, self.not_before)

    async def __call__(self, folder: Folder) -> list[int]:
        seen = self.examined.setdefault(folder.wire, set())
        hits = [uid for (wire, uid) in self.found if wire == folder.wire]
        for uid in await self.candidates(folder):
            if uid in seen:
                continue
            raw, arrived = await fetch_message(self.client, uid)
            seen.add(uid)
            self.fetched += 1
            if folder.wire not in self.floors and (arrived is None or arrived < self.not_before):
                continue
            if await asyncio.to_thread(self.is_match, raw, folder.name, uid):
                self.found[folder.wire, uid] = Found(folder, uid, raw, arrived)
                hits.append(uid)
        return sorted(hits)

    def is_match(self, raw: bytes, folder: str = "", uid: int = 0) -> bool:
        """False also for a message that cannot be parsed (warned about once: the caller
        never examines a UID twice, a passive watch saves how far it has read)."""
        start = time.process_time()
        try:
            message: Readable = readable(raw)
            return matches(message, self.patterns)
        except Unparseable as exc:
            self._skip(folder, uid, str(exc), False)
        except Exception as exc:  # our bug, or the email package's: still this mail only
            self._skip(folder, uid, f"{type(exc).__name__}: {exc}", True)
        finally:
            self.cpu += time.process_time() - start
        return False

    def _skip(self, folder: str, uid: int, reason: str, bug: bool) -> None:
        self.skipped += 1
        log.warning("message_skipped", watch=self.label or None, folder=folder, uid=uid,
                    reason=reason, exc_info=bug)

    def get(self, folder: Folder, uid: int) -> Found:
        return self.found[folder.wire, uid]
