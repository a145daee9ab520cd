"""A passive inbound watch: did a matching message arrive within the deadline?

Mail that nobody can trigger (a nightly report, a partner's feed) is watched by its
arrivals: INBOX and Junk are read from where the last run stopped (UIDNEXT per
UIDVALIDITY, in ``state_dir``), each new message is matched once, and the newest matching
arrival is remembered, so deleting it does not make the next run report it lost.
"""

from __future__ import annotations

import time
from typing import Any

from mailcanary.config import Config, InboundConfig
from mailcanary.diagnosis import DeliveryProblem, Where
from mailcanary.diagnosis import spam as spam_diagnosis
from mailcanary.probes.inbound import memory as memory_store
from mailcanary.probes.inbound.finder import Found, MessageFinder
from mailcanary.probes.inbound.memory import Memory
from mailcanary.probes.mailbox.headers import auth_results, parse_headers
from mailcanary.protocols.imap import ImapClient, imap_client_for
from mailcanary.protocols.mailboxes import Folder, junk_folders
from mailcanary.protocols.signin import imap_login
from mailcanary.result import ProbeContext


async def passive(ctx: ProbeContext, config: Config, watch: InboundConfig) -> None:
    account = config.account(watch.account)
    assert account.imap is not None
    state_dir = config.daemon.state_dir
    mem = memory_store.load(state_dir, watch.name)
    ctx.where = Where(account.imap.host, account.imap.effective_port, "imap")
    imap = imap_client_for(ctx, account)
    try:
        await imap.connect()
        await imap_login(imap, account)
        with ctx.phase("select"):
            folders = await imap.list_folders()
        inbox = next((f for f in folders if f.is_inbox), Folder("INBOX", "INBOX", frozenset(),
                                                               None))
        now = time.time()
        with ctx.phase("deliver"):
            for folder, placement in [(inbox, "inbox"),
                                      *((f, "spam") for f in junk_folders(folders))]:
                await _look(ctx, imap, watch, mem, folder, placement=placement, now=now)
        memory_store.save(state_dir, watch.name, mem)
        await imap.logout()
    finally:
        imap.close()
    _verdict(ctx, watch, mem, now)


async def _look(
    ctx: ProbeContext, imap: ImapClient, watch: InboundConfig, mem: Memory, folder: Folder,
    *, placement: str, now: float,
) -> None:
    """New messages of one folder: match, remember the newest, delete if asked to."""
    status = await imap.status(folder, "UIDNEXT", "UIDVALIDITY")
    validity, uidnext = status.get("UIDVALIDITY", 0), status.get("UIDNEXT", 0)
    floor = mem.floors.get(folder.wire)
    floors = {folder.wire: floor[1]} if floor and floor[0] == validity else {}
    await imap.select_folder(folder, readonly=watch.cleanup == "keep")
    finder = MessageFinder(lambda: imap, watch.match.patterns(""), floors, now - watch.deadline,
                           label=watch.name)
    uids = await finder(folder)
    found = [finder.get(folder, uid) for uid in uids]
    for item in found:
        _remember(mem, item, placement, now)
    if found and watch.cleanup == "delete":
        await imap.uid_delete([item.uid for item in found])
    mem.floors[folder.wire] = [validity, max(uidnext, *(u + 1 for u in uids or [0]))]
    ctx.extra["messages_fetched"] = ctx.extra.get("messages_fetched", 0) + finder.fetched


def _remember(mem: Memory, found: Found, placement: str, now: float) -> None:
    arrived = found.arrived if found.arrived is not None else now
    if mem.newest is not None and mem.newest.get("at", 0) > arrived:
        return
    headers = parse_headers(found.raw)
    newest: dict[str, Any] = {"at": arrived, "placement": placement, "folder": found.folder.name,
                              "auth_results": auth_results(headers)}
    if placement == "spam":
        newest["spam"] = spam_diagnosis.as_json(spam_diagnosis.explain_spam(headers))
    mem.newest = newest


def _verdict(ctx: ProbeContext, watch: InboundConfig, mem: Memory, now: float) -> None:
    newest = mem.newest
    ctx.extra.update(placement="missing", age_seconds=None)
    ctx.current_phase = "deliver"
    if newest is None:
        raise DeliveryProblem(
            "lost", f"no matching message arrived in INBOX or Junk within {watch.deadline:g} s "
            "(none seen since the watch started)",
        )
    age = max(0.0, now - float(newest["at"]))
    ctx.extra["age_seconds"] = round(age, 3)
    ctx.extra["auth_results"] = newest.get("auth_results")
    if age > watch.deadline:
        raise DeliveryProblem(
            "lost", f"no matching message arrived in INBOX or Junk within {watch.deadline:g} s; "
            f"the newest arrived {age:.0f} s ago",
        )
    ctx.extra.update(placement=newest["placement"], folder=newest["folder"])
    if newest["placement"] == "spam":
        explanation = spam_diagnosis.from_json(newest.get("spam"))
        what = f"the newest matching message ({age:.0f} s ago) is in {newest['folder']!r}"
        if explanation is None:
            raise DeliveryProblem("spam_folder", what)
        ctx.extra["spam"] = newest.get("spam")
        raise DeliveryProblem("spam_folder", f"{what}; {explanation.detail()}", explanation.hint)
    ctx.current_phase = None
