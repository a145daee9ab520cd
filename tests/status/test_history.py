"""The status page's history store on real SQLite files: what it keeps is bounded and
downsampled without changing the uptime it reports, it survives a reopen (a restart), a
file that is not ours is moved aside, and no SQLite call runs on the event loop."""

from __future__ import annotations

import asyncio
import os
import stat
import threading
import time
from pathlib import Path

import pytest

from mailcanary.daemon.status import history as history_module
from mailcanary.daemon.status.history import (
    DAY,
    DB_NAME,
    HOUR,
    RECENT,
    Current,
    History,
    HistoryDB,
    Run,
)
from mailcanary.result import ProbeResult

KEY = ("imap", "alice")


def run(at: float, ok: bool, target: str = "alice") -> Run:
    return Run("imap", target, at, ok, "ok" if ok else "auth",
               "ok" if ok else "invalid_credentials", None if ok else "auth",
               "" if ok else "The server rejected the username or password.")


def result(at: float, ok: bool, target: str = "alice") -> ProbeResult:
    r = run(at, ok, target)
    return ProbeResult(r.probe, r.target, r.ok, r.cls, r.reason, r.phase, "detail", r.hint,
                       0.1, {}, finished_at=at)


def fill(store: HistoryDB, start: float, end: float, every: float, ok_every: int) -> int:
    """Runs from `start` to `end`; every `ok_every`-th fails. Returns the successes."""
    at, n, oks = start, 0, 0
    while at < end:
        ok = n % ok_every != 0
        oks += ok
        store.write([run(at, ok)], [])
        store.compact(at)
        at += every
        n += 1
    return oks


def test_month_of_runs_is_downsampled_bounded_and_uptime_kept(tmp_path: Path) -> None:
    """31 days of a run every 10 minutes (one in 4 failing): hours older than two days are
    merged into days, days older than history_days are gone, and the 7-day uptime is
    what the raw runs say (to the day's granularity)."""
    store = HistoryDB(tmp_path, days=30)
    store.open()
    end = (time.time() // DAY) * DAY + 13 * HOUR
    fill(store, end - 31 * DAY, end, 600, 4)
    assert store.db is not None
    rows = store.db.execute("SELECT start FROM buckets").fetchall()
    hourly = [s for (s,) in rows if s >= end - 3 * DAY]
    daily = [s for (s,) in rows if s < end - 3 * DAY]
    assert all(s % DAY == 0 for s in daily), "old hours were not merged into days"
    assert len(hourly) <= 3 * 24 and len(daily) <= 30
    assert min(s for (s,) in rows) >= end - 31 * DAY - DAY, "days past history_days kept"
    assert store.db.execute("SELECT count(*) FROM recent").fetchone()[0] == RECENT
    detail = store.details([KEY], end)[KEY]
    for window in ("24h", "7d", "30d"):
        assert detail.uptime[window] == pytest.approx(0.75, abs=0.01), window
    assert len(detail.recent) == RECENT
    assert detail.recent[-1][0] == end - 600, "the newest run is not in the ring"
    assert [at for at, *_ in detail.recent] == sorted(at for at, *_ in detail.recent)
    store.close()


def test_uptime_windows_see_only_their_own_runs(tmp_path: Path) -> None:
    """Down for a day 5 days ago, up since: 24 h is 100 %, 7 d is about 6/7."""
    store = HistoryDB(tmp_path, days=30)
    store.open()
    now = time.time()
    for hour in range(7 * 24):
        at = now - (7 * 24 - hour) * HOUR + 1
        ok = not (5 * 24 - 24 <= 7 * 24 - hour <= 5 * 24)
        store.write([run(at, ok)], [])
    store.compact(now)
    detail = store.details([KEY], now)[KEY]
    assert detail.uptime["24h"] == 1.0
    assert detail.uptime["7d"] == pytest.approx(6 / 7, abs=0.02)
    store.close()


def test_state_since_and_ring_survive_a_reopen(tmp_path: Path) -> None:
    """A restarted daemon knows each target's state and since when; the ring of recent
    runs goes on where it stopped (the newest run is never overwritten first)."""
    store = HistoryDB(tmp_path, days=30)
    assert store.open() == {}
    since = time.time() - 500
    failing = Current(False, "auth", "invalid_credentials", "auth", "hint", since, since)
    store.write([run(since - 100 + i, True) for i in range(RECENT + 5)], [])
    store.write([run(since, False)], [(KEY, failing)])
    store.close()
    again = HistoryDB(tmp_path, days=30)
    loaded = again.open()
    assert loaded[KEY].since == since and not loaded[KEY].ok
    again.write([run(since + 60, False)], [])
    recent = again.details([KEY], since + 61)[KEY].recent
    assert len(recent) == RECENT
    assert recent[-1][0] == since + 60 and recent[-2][0] == since
    again.close()


def test_history_file_is_private_and_never_written_through_a_symlink(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_text("not yours")
    state = tmp_path / "state"
    state.mkdir()
    (state / DB_NAME).symlink_to(target)
    store = HistoryDB(state, days=30)
    store.open()
    store.write([run(time.time(), True)], [])
    store.close()
    assert target.read_text() == "not yours"
    info = (state / DB_NAME).lstat()
    assert stat.S_ISREG(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o600
    assert any(p.name.startswith(DB_NAME + ".corrupt-") for p in state.iterdir())


def test_a_file_that_is_not_a_database_is_moved_aside(tmp_path: Path) -> None:
    (tmp_path / DB_NAME).write_bytes(os.urandom(8192))
    store = HistoryDB(tmp_path, days=30)
    assert store.open() == {}
    store.write([run(time.time(), True)], [])
    assert store.details([KEY], time.time())[KEY].uptime["24h"] == 1.0
    assert any(p.name.startswith(DB_NAME + ".corrupt-") for p in tmp_path.iterdir())
    store.close()


async def test_no_sqlite_call_on_the_event_loop(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Every store call of the daemon's History runs on its worker thread."""
    loop_thread = threading.get_ident()
    seen: list[str] = []

    def on_thread(name: str) -> None:
        seen.append(name)
        assert threading.get_ident() != loop_thread, f"{name} ran on the event loop"

    for name in ("open", "write", "compact", "details", "close"):
        original = getattr(HistoryDB, name)

        def wrapped(self: HistoryDB, *args: object, _n: str = name,
                    _o: object = original) -> object:
            on_thread(_n)
            return _o(self, *args)  # type: ignore[operator]

        monkeypatch.setattr(HistoryDB, name, wrapped)
    monkeypatch.setattr(history_module, "FLUSH_EVERY", 0.05)
    history = History(tmp_path, 30)
    await history.open()
    history.add(result(time.time() - 60, True))
    history.add(result(time.time(), False))
    await asyncio.sleep(0.3)
    detail = (await history.details([KEY]))[KEY]
    assert len(detail.recent) == 2
    assert history.current[KEY].since == pytest.approx(time.time(), abs=5)
    await history.close()
    assert {"open", "write", "compact", "details", "close"} <= set(seen)


async def test_since_moves_only_when_the_state_changes(tmp_path: Path) -> None:
    history = History(tmp_path, 30)
    await history.open()
    t0 = time.time() - 300
    history.add(result(t0, False))
    history.add(result(t0 + 60, False))
    assert history.current[KEY].since == t0
    history.add(result(t0 + 120, True))
    assert history.current[KEY].since == t0 + 120 and history.current[KEY].ok
    await history.close()
    reopened = History(tmp_path, 30)
    await reopened.open()
    assert reopened.current[KEY].since == t0 + 120
    await reopened.close()
