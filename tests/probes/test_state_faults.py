"""The in-flight canary database under faults: a corrupt file is moved aside (error log
naming it) and a new one used; records of a route and receiver removed from the config are
cleaned once their deadline has long passed."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from mailcanary.config import load_config
from mailcanary.probes.roundtrip.state import DB_NAME, ORPHAN_GRACE, CanaryStore
from mailcanary.probes.roundtrip.sweep import sweep
from tests.helpers.faults import closed_port
from tests.helpers.support import account, endpoint, password_file, write_config
from tests.probes.test_roundtrip import MakeConfig, route, run_route


def test_corrupt_database_is_moved_aside(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / DB_NAME).write_bytes(b"this is not sqlite at all " * 100)
    with capture_logs() as logs:
        store = CanaryStore(state)
    store.add("tok", "r", "bob", 60)
    assert [r.token for r in store.all()] == ["tok"]
    [event] = [e for e in logs if e["event"] == "state_file_corrupt"]
    assert event["log_level"] == "error" and event["path"] == str(state / DB_NAME)
    assert len(list(state.glob(f"{DB_NAME}.corrupt-*"))) == 1


async def test_records_of_removed_receivers_are_cleaned(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, account(
        "alice", imap=endpoint("127.0.0.1", closed_port()), password_file=password_file(tmp_path)))
    config = load_config(cfg)
    store = CanaryStore(config.daemon.state_dir)
    store.add("old", "gone-route", "gone", -(ORPHAN_GRACE + 10))
    store.add("recent", "gone-route", "gone", 600)
    report = await sweep(config)
    assert [r.token for r in store.all()] == ["recent"]  # its deadline has not passed yet
    assert not report.errors


async def test_kill_between_delete_and_record_removal_is_no_false_lost(
    make_config: MakeConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The process dies right after the canary was deleted, before its record is removed:
    the next sweep must not report a lost canary (it was delivered and cleaned up)."""
    config = load_config(make_config(route("a2b", "alice", "bob", deadline="2s")))
    real_remove = CanaryStore.remove

    def die(self: CanaryStore, token: str) -> None:
        raise asyncio.CancelledError  # the kill: nothing after this line runs

    monkeypatch.setattr(CanaryStore, "remove", die)
    with pytest.raises(asyncio.CancelledError):
        await run_route(config, "a2b")
    monkeypatch.setattr(CanaryStore, "remove", real_remove)
    await asyncio.sleep(2.5)  # past the canary's deadline
    report = await sweep(config)
    assert report.lost == [] and report.late == [], report


async def test_a_locked_database_never_blocks_the_event_loop(tmp_path: Path) -> None:
    """Another process holds the write lock for 1.5 s (a backup, a second daemon): the
    sweep's SQLite calls wait on their worker thread while the loop goes on ticking."""
    cfg = write_config(tmp_path, account(
        "alice", imap=endpoint("127.0.0.1", closed_port()), password_file=password_file(tmp_path)))
    config = load_config(cfg)
    CanaryStore(config.daemon.state_dir).add("old", "gone-route", "gone", 600)
    holder = sqlite3.connect(config.daemon.state_dir / DB_NAME, isolation_level=None,
                             check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")
    threading.Timer(1.5, holder.rollback).start()
    gaps: list[float] = []

    async def tick() -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.02)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    ticker = asyncio.create_task(tick())
    started = time.monotonic()
    await sweep(config)
    ticker.cancel()
    holder.close()
    assert time.monotonic() - started >= 1.4  # it did wait for the lock...
    assert max(gaps) < 0.5, max(gaps)  # ...but not on the loop
