"""Every probe result, kept in SQLite under ``state_dir`` for the status page.

What is kept is bounded whatever the run time: per target, its current state (and since
when), a ring of its last `RECENT` runs (the bar of recent runs), and counts of runs and
successes per hour; hours older than `HOURLY_FOR` are merged into one row per day, and
days older than ``history_days`` are dropped. Uptime over 24 h / 7 d / 30 d sums those
buckets, so it is exact to the hour for 24 h and to the day beyond.

Every SQLite call runs on one worker thread of its own (as probes/roundtrip/state.py
does), never on the event loop; results are written in batches, one transaction per
batch (`FLUSH_EVERY`).
"""

from __future__ import annotations

import asyncio
import functools
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import structlog

from mailcanary.result import ProbeResult
from mailcanary.state import move_aside, private_dir

log = structlog.get_logger("mailcanary.status.history")

DB_NAME = "history.sqlite3"
RECENT = 30  # runs in the bar of recent runs
HOUR = 3600
DAY = 86400
HOURLY_FOR = 2 * DAY  # hours older than this are merged into days
FLUSH_EVERY = 5.0  # seconds between batched writes
WINDOWS = {"24h": DAY, "7d": 7 * DAY, "30d": 30 * DAY}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS targets (
    id INTEGER PRIMARY KEY, probe TEXT NOT NULL, target TEXT NOT NULL, UNIQUE (probe, target));
CREATE TABLE IF NOT EXISTS state (
    id INTEGER PRIMARY KEY, ok INTEGER NOT NULL, cls TEXT NOT NULL, reason TEXT NOT NULL,
    phase TEXT, hint TEXT NOT NULL, since REAL NOT NULL, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS recent (
    id INTEGER NOT NULL, slot INTEGER NOT NULL, at REAL NOT NULL, ok INTEGER NOT NULL,
    cls TEXT NOT NULL, reason TEXT NOT NULL, PRIMARY KEY (id, slot)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS buckets (
    id INTEGER NOT NULL, start INTEGER NOT NULL, runs INTEGER NOT NULL, oks INTEGER NOT NULL,
    PRIMARY KEY (id, start)) WITHOUT ROWID;
"""

T = TypeVar("T")
Key = tuple[str, str]  # (probe, target)


class Run(NamedTuple):
    """One result as history keeps it (no detail: the page shows the hint)."""

    probe: str
    target: str
    at: float
    ok: bool
    cls: str
    reason: str
    phase: str | None
    hint: str

    @classmethod
    def of(cls, result: ProbeResult) -> Run:
        return cls(result.probe, result.target, result.finished_at, result.ok, result.cls,
                   result.reason, result.phase, result.hint)


@dataclass(slots=True)
class Current:
    """A target's state now, and since when it has been in it."""

    ok: bool
    cls: str
    reason: str
    phase: str | None
    hint: str
    since: float
    at: float


@dataclass
class Detail:
    """What the page shows beside the current state: uptime per window and recent runs."""

    uptime: dict[str, float | None] = field(default_factory=dict)
    recent: list[tuple[float, bool, str, str]] = field(default_factory=list)


class HistoryDB:
    """The store itself, synchronous: called on the worker thread (or by a benchmark)."""

    def __init__(self, state_dir: Path, days: int) -> None:
        self.path = Path(state_dir) / DB_NAME
        self.days = days
        self.ids: dict[Key, int] = {}
        self.seq: dict[int, int] = {}  # next ring slot per target id
        self.db: sqlite3.Connection | None = None
        self.compacted_to = 0  # the cutoff of the last compaction (it moves once a day)

    def open(self) -> dict[Key, Current]:
        """Opens (or creates, 0600, never through a symlink) the database and returns every
        target's last known state. A file that is not our database is moved aside."""
        private_dir(self.path.parent)
        try:
            return self._load()
        except (sqlite3.DatabaseError, OSError) as exc:
            self.close()
            move_aside(self.path, exc)
            for suffix in ("-wal", "-shm"):
                self.path.with_name(DB_NAME + suffix).unlink(missing_ok=True)
            self.ids, self.seq = {}, {}
            return self._load()

    def _load(self) -> dict[Key, Current]:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            os.fchmod(fd, 0o600)
        finally:
            os.close(fd)
        db = self.db = sqlite3.connect(self.path, timeout=5.0, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")  # a power cut may lose the last batch
        db.executescript(_SCHEMA)
        for ident, probe, target in db.execute("SELECT id, probe, target FROM targets"):
            self.ids[probe, target] = ident
        newest: dict[int, tuple[float, int]] = {}
        for ident, slot, at in db.execute("SELECT id, slot, at FROM recent"):
            if at >= newest.get(ident, (-1.0, 0))[0]:
                newest[ident] = (at, slot)
        self.seq = {ident: slot + 1 for ident, (_, slot) in newest.items()}
        names = {v: k for k, v in self.ids.items()}
        return {
            names[row[0]]: Current(bool(row[1]), row[2], row[3], row[4], row[5], row[6], row[7])
            for row in db.execute("SELECT * FROM state") if row[0] in names
        }

    def close(self) -> None:
        if self.db is not None:
            self.db.close()
            self.db = None

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        assert self.db is not None, "open() first"
        with self.db:
            yield self.db

    def _id(self, db: sqlite3.Connection, key: Key) -> int:
        ident = self.ids.get(key)
        if ident is None:
            cur = db.execute("INSERT INTO targets (probe, target) VALUES (?, ?)", key)
            ident = self.ids[key] = int(cur.lastrowid or 0)
        return ident

    def write(self, runs: Sequence[Run], changed: Iterable[tuple[Key, Current]]) -> None:
        """One transaction: each run into its hour's bucket and its target's ring, and the
        targets whose state changed."""
        if self.db is None:  # could not be opened: the page shows the state in memory
            return
        with self._tx() as db:
            ring = []
            counts: dict[tuple[int, int], tuple[int, int]] = {}
            for run in runs:
                ident = self._id(db, (run.probe, run.target))
                slot = self.seq.get(ident, 0)
                self.seq[ident] = slot + 1
                ring.append((ident, slot % RECENT, run.at, int(run.ok), run.cls, run.reason))
                hour = int(run.at) // HOUR * HOUR
                total, oks = counts.get((ident, hour), (0, 0))
                counts[ident, hour] = (total + 1, oks + int(run.ok))
            db.executemany("INSERT OR REPLACE INTO recent VALUES (?, ?, ?, ?, ?, ?)", ring)
            db.executemany(
                "INSERT INTO buckets VALUES (?, ?, ?, ?) ON CONFLICT (id, start) DO UPDATE"
                " SET runs = runs + excluded.runs, oks = oks + excluded.oks",
                [(i, h, n, k) for (i, h), (n, k) in counts.items()],
            )
            db.executemany(
                "INSERT OR REPLACE INTO state VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(self._id(db, key), int(c.ok), c.cls, c.reason, c.phase, c.hint, c.since, c.at)
                 for key, c in changed],
            )

    def compact(self, now: float) -> None:
        """Hours older than HOURLY_FOR into their day's row; days past history_days gone;
        targets with no run within history_days forgotten."""
        cutoff = int(now - HOURLY_FOR) // DAY * DAY
        oldest = now - self.days * DAY
        if self.db is None or cutoff == self.compacted_to:
            return
        self.compacted_to = cutoff
        with self._tx() as db:
            db.execute(
                "INSERT INTO buckets SELECT id, start / 86400 * 86400, sum(runs), sum(oks)"
                " FROM buckets WHERE start < ? AND start % 86400 != 0 GROUP BY 1, 2"
                " ON CONFLICT (id, start) DO UPDATE"
                " SET runs = runs + excluded.runs, oks = oks + excluded.oks", (cutoff,))
            db.execute("DELETE FROM buckets WHERE start < ? AND start % 86400 != 0", (cutoff,))
            db.execute("DELETE FROM buckets WHERE start < ?", (oldest - DAY,))
            gone = [r[0] for r in db.execute("SELECT id FROM state WHERE at < ?", (oldest,))]
            for table in ("targets", "state", "recent", "buckets"):
                db.executemany(f"DELETE FROM {table} WHERE id = ?",  # noqa: S608
                               [(i,) for i in gone])
        if gone:
            self.ids = {k: v for k, v in self.ids.items() if v not in set(gone)}

    def details(self, keys: Sequence[Key], now: float) -> dict[Key, Detail]:
        """Uptime per window and recent runs of the given targets (one page's)."""
        if self.db is None:
            return {k: Detail(dict.fromkeys(WINDOWS)) for k in keys}
        wanted = {self.ids[k]: k for k in keys if k in self.ids}
        out: dict[Key, Detail] = {k: Detail() for k in keys}
        ids = list(wanted)
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            marks = ",".join("?" * len(chunk))
            sums = ", ".join(
                f"sum(CASE WHEN start >= {int(now - span) // HOUR * HOUR} THEN runs END),"
                f" sum(CASE WHEN start >= {int(now - span) // HOUR * HOUR} THEN oks END)"
                for span in WINDOWS.values())
            for row in self.db.execute(
                    f"SELECT id, {sums} FROM buckets WHERE id IN ({marks}) GROUP BY id",  # noqa: S608
                    chunk):
                detail = out[wanted[row[0]]]
                for n, name in enumerate(WINDOWS):
                    runs, oks = row[1 + 2 * n], row[2 + 2 * n]
                    detail.uptime[name] = oks / runs if runs else None
            for ident, at, ok, cls, reason in self.db.execute(
                    f"SELECT id, at, ok, cls, reason FROM recent WHERE id IN ({marks})"  # noqa: S608
                    " ORDER BY id, at", chunk):
                out[wanted[ident]].recent.append((at, bool(ok), cls, reason))
        for detail in out.values():
            for name in WINDOWS:
                detail.uptime.setdefault(name, None)
        return out


class History:
    """The daemon's side: keeps every target's current state in memory (filters and
    pagination need all of them), queues runs, and writes them on the worker thread."""

    def __init__(self, state_dir: Path, days: int) -> None:
        self.store = HistoryDB(state_dir, days)
        self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="history")
        self.current: dict[Key, Current] = {}
        self.queue: list[Run] = []
        self.changed: dict[Key, Current] = {}
        self.flushing: asyncio.Task[None] | None = None
        self.compacted = 0.0
        self.failed = False

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.worker, functools.partial(fn, *args))

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Other work for the page that should not hold the loop (a large JSON body)."""
        return await self._call(fn, *args)

    async def open(self) -> None:
        try:
            loaded = await self._call(self.store.open)
        except (sqlite3.Error, OSError) as exc:  # probing goes on; the page has no history
            log.error("history_unusable", path=str(self.store.path), error=str(exc))
            loaded = {}
        for key, state in loaded.items():
            self.current.setdefault(key, state)
        self.flushing = asyncio.create_task(self._flusher())

    def add(self, result: ProbeResult) -> None:
        """On the loop, cheap: the state and a queued run; the write comes later."""
        run = Run.of(result)
        key = (run.probe, run.target)
        now = self.current.get(key)
        if now is None or (now.ok, now.cls, now.reason) != (run.ok, run.cls, run.reason):
            now = Current(run.ok, run.cls, run.reason, run.phase, run.hint, run.at, run.at)
        else:
            now.phase, now.hint, now.at = run.phase, run.hint, run.at
        self.current[key] = now
        self.changed[key] = now
        self.queue.append(run)

    async def flush(self) -> None:
        runs, self.queue = self.queue, []
        changed, self.changed = list(self.changed.items()), {}
        if not runs and not changed:
            return
        try:
            await self._call(self.store.write, runs, changed)
            if time.time() - self.compacted > HOUR:
                await self._call(self.store.compact, time.time())
                self.compacted = time.time()
        except sqlite3.Error as exc:  # history is for people: probing goes on without it
            log.warning("history_write_failed", error=str(exc), runs=len(runs))

    async def _flusher(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_EVERY)
            await self.flush()

    async def details(self, keys: Sequence[Key]) -> dict[Key, Detail]:
        """Queued runs are written first, so the bar and uptime agree with the state."""
        await self.flush()
        return await self._call(self.store.details, keys, time.time())

    async def close(self) -> None:
        if self.flushing is not None:
            self.flushing.cancel()
            self.flushing = None
            await self.flush()
            await self._call(self.store.close)
        self.worker.shutdown(wait=False)


def db_size(state_dir: Path) -> int:
    """Bytes on disk (the database and its write-ahead log)."""
    base = Path(state_dir) / DB_NAME
    return sum(p.stat().st_size for p in (base, base.with_name(DB_NAME + "-wal"))
               if p.exists())

