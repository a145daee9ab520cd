"""Canaries in flight, kept in SQLite under ``state_dir`` so a restart loses none.

Probes use `Canaries`: every SQLite call (each a short transaction that may wait up to
5 s for a lock) runs on one worker thread, never on the event loop. `CanaryStore` is the
same store called directly (tests, tools).

A record is written *before* the canary is submitted and updated when the server accepts
it, so a crash at any point leaves a record that a later sweep can match. Records end as
"lost" (kept a while, so a late arrival is recognised and counted once, as late) or are
removed once the canary has been seen and deleted.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import os
import secrets
import sqlite3
import time
from collections.abc import Callable, Collection, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import structlog

from mailcanary.diagnosis import StateError
from mailcanary.state import StateInvalid, move_aside, private_dir, read_state, write_atomic

log = structlog.get_logger("mailcanary.roundtrip.state")

DB_NAME = "roundtrip.sqlite3"
INSTALLATION_FILE = "installation-id"
ORPHAN_GRACE = 60.0  # seconds past its deadline after which nobody still watches a canary
RETENTION = 7 * 86400.0  # how long a lost canary's record waits for a late arrival

_SCHEMA = """
CREATE TABLE IF NOT EXISTS canaries (
    token TEXT PRIMARY KEY,
    route TEXT NOT NULL,
    receiver TEXT NOT NULL,
    status TEXT NOT NULL,           -- sending | in_flight | lost | seen
    created REAL NOT NULL,          -- wall clock
    accepted REAL,                  -- wall clock of the SMTP server's final 250
    deadline REAL NOT NULL,         -- wall clock
    owner_pid INTEGER NOT NULL
)
"""


@dataclass(frozen=True)
class Record:
    token: str
    route: str
    receiver: str
    status: str
    created: float
    accepted: float | None
    deadline: float
    owner_pid: int


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def installation_id(state_dir: Path) -> str:
    """This installation's id: random once, then persisted in the state dir."""
    path = state_dir / INSTALLATION_FILE
    try:
        value = (read_state(path) or b"").decode("ascii", "replace").strip()
        if value:
            return value
    except StateInvalid as exc:
        move_aside(path, exc)
    except OSError as exc:
        raise StateError(f"cannot read {path}: {exc.strerror or exc}") from None
    value = secrets.token_hex(8)
    try:
        write_atomic(path, f"{value}\n".encode())  # two processes agree on the last one
        return (read_state(path) or b"").decode("ascii", "replace").strip()
    except (OSError, StateInvalid) as exc:
        raise StateError(f"cannot write {path}: {exc}") from None


class CanaryStore:
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = Path(state_dir)
        try:
            private_dir(self.state_dir)
        except OSError as exc:
            raise StateError(
                f"cannot create state_dir {self.state_dir}: {exc.strerror or exc}"
            ) from None
        self.installation = installation_id(self.state_dir)
        self.path = self.state_dir / DB_NAME
        _prepare(self.path)
        try:
            with self._db() as db:
                db.execute(_SCHEMA)
        except StateError as exc:
            if not _corrupt(self.path):
                raise
            _move_aside(self.path, exc)
            with self._db() as db:
                db.execute(_SCHEMA)

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        """One short transaction per call: committed atomically or not at all."""
        try:
            with closing(sqlite3.connect(self.path, timeout=5.0)) as db:
                db.execute("PRAGMA journal_mode=WAL")
                # WAL + NORMAL: no fsync per commit (only at checkpoints); a commit survives
                # a crash or kill -9 of the daemon, at worst not a power cut (then the
                # sweep finds the canary without record and deletes it once it is stale).
                db.execute("PRAGMA synchronous=NORMAL")
                with db:
                    yield db
        except sqlite3.Error as exc:
            raise StateError(f"state database {self.path}: {exc}") from None

    def add(self, token: str, route: str, receiver: str, deadline_seconds: float) -> None:
        now = time.time()
        with self._db() as db:
            db.execute(
                "INSERT INTO canaries VALUES (?, ?, ?, 'sending', ?, NULL, ?, ?)",
                (token, route, receiver, now, now + deadline_seconds, os.getpid()),
            )

    def accepted(self, token: str, accepted_wall: float, deadline_seconds: float) -> None:
        with self._db() as db:
            db.execute(
                "UPDATE canaries SET status = 'in_flight', accepted = ?, deadline = ? "
                "WHERE token = ?",
                (accepted_wall, accepted_wall + deadline_seconds, token),
            )

    def set_status(self, token: str, status: str) -> None:
        with self._db() as db:
            db.execute("UPDATE canaries SET status = ? WHERE token = ?", (status, token))

    def remove(self, token: str) -> None:
        with self._db() as db:
            db.execute("DELETE FROM canaries WHERE token = ?", (token,))

    def get(self, token: str) -> Record | None:
        with self._db() as db:
            row = db.execute("SELECT * FROM canaries WHERE token = ?", (token,)).fetchone()
        return Record(*row) if row else None

    def all(self) -> list[Record]:
        with self._db() as db:
            rows = db.execute("SELECT * FROM canaries ORDER BY created").fetchall()
        return [Record(*row) for row in rows]

    def forget_old(self, now: float | None = None) -> int:
        now = time.time() if now is None else now
        with self._db() as db:
            cur = db.execute(
                "DELETE FROM canaries WHERE status IN ('lost', 'seen') AND created < ?",
                (now - RETENTION,),
            )
        return cur.rowcount


T = TypeVar("T")

# One thread for every SQLite call of the process: calls queue there, in order, and the
# event loop never waits for a lock or a disk.
_WORKER = ThreadPoolExecutor(1, thread_name_prefix="mailcanary-sqlite")


async def _off_loop(fn: Callable[..., T], *args: Any) -> T:
    return await asyncio.get_running_loop().run_in_executor(_WORKER, functools.partial(fn, *args))


class Canaries:
    """`CanaryStore` for coroutines: the same methods, awaited, run on the worker thread."""

    def __init__(self, store: CanaryStore) -> None:
        self.sync = store
        self.installation = store.installation

    @classmethod
    async def open(cls, state_dir: Path) -> Canaries:
        return cls(await _off_loop(CanaryStore, Path(state_dir)))

    async def add(self, token: str, route: str, receiver: str, deadline_seconds: float) -> None:
        await _off_loop(self.sync.add, token, route, receiver, deadline_seconds)

    async def accepted(self, token: str, accepted_wall: float, deadline_seconds: float) -> None:
        await _off_loop(self.sync.accepted, token, accepted_wall, deadline_seconds)

    async def set_status(self, token: str, status: str) -> None:
        await _off_loop(self.sync.set_status, token, status)

    async def remove(self, token: str) -> None:
        await _off_loop(self.sync.remove, token)

    async def get(self, token: str) -> Record | None:
        return await _off_loop(self.sync.get, token)

    async def all(self) -> list[Record]:
        return await _off_loop(self.sync.all)

    async def forget_old(self, now: float | None = None) -> int:
        return await _off_loop(self.sync.forget_old, now)


def _prepare(path: Path) -> None:
    """The database file exists, 0600 (SQLite gives its -wal/-shm files the same mode)
    and is no symlink: SQLite itself would follow one and create 0644 under umask 022."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        if exc.errno != errno.ELOOP:
            raise StateError(f"state database {path}: {exc.strerror or exc}") from None
        move_aside(path, "it is a symlink")
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o600)
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


def _corrupt(path: Path) -> bool:
    """Not an SQLite database at all (a disk fault, a stray write), as opposed to a
    database that is merely locked or unreadable."""
    try:
        with closing(sqlite3.connect(path)) as db:
            db.execute("PRAGMA schema_version").fetchone()
    except sqlite3.DatabaseError as exc:
        return "not a database" in str(exc) or "malformed" in str(exc)
    return False


def _move_aside(path: Path, exc: Exception) -> None:
    aside = path.with_name(f"{path.name}.corrupt-{int(time.time())}")
    for suffix in ("-wal", "-shm"):
        with suppress(OSError):
            path.with_name(path.name + suffix).unlink()
    path.replace(aside)
    log.error("state_file_corrupt", path=str(path), moved_to=str(aside), error=str(exc),
              note="moved aside; in-flight canaries it held will be swept as unknown")


def is_orphan(record: Record, now: float | None = None, *,
              active: Collection[str] = ()) -> bool:
    """In flight, but no probe watches it any more (cancelled, crashed or restarted).
    `active`: the tokens whose probe runs in this runtime right now (Runtime.canaries)."""
    if record.status not in ("sending", "in_flight") or record.token in active:
        return False
    now = time.time() if now is None else now
    return (
        record.owner_pid == os.getpid()
        or not _pid_alive(record.owner_pid)
        or now > record.deadline + ORPHAN_GRACE
    )
