"""The one way state files are written and read (backoff, alerts, inbound memory, rotated
OAuth2 tokens, the installation id).

Writing: a new temporary file (``O_EXCL|O_NOFOLLOW``, so a planted symlink or file at its
name is never followed or reused) made 0600 with fchmod whatever the umask, fsynced, renamed
over the old file (a symlink there is replaced, its target never touched), then the
directory fsynced: a crash leaves the old or the new file, never half of one. Directories we
create are 0700. Reading: ``O_NOFOLLOW|O_NONBLOCK``, regular files only. A file that cannot
be read as what we wrote, in syntax or in shape, is moved aside (``name.corrupt-<time>``)
with a warning naming both paths, and the daemon runs on without it.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import secrets
import stat
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import structlog

log = structlog.get_logger("mailcanary.state")

FILE_MODE = 0o600
DIR_MODE = 0o700


class StateDirError(Exception):
    """`daemon.state_dir` cannot be created or written: the daemon must not start."""


class StateInvalid(ValueError):
    """A state file that is not what we wrote (a symlink, a FIFO, a hand edit, a disk fault)."""


def private_dir(path: Path) -> None:
    """Create `path` (and parents) 0700; an existing one we own loses group/other access.
    A symlink in its place is refused: nothing of ours is written through one."""
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    info = path.lstat()
    if stat.S_ISLNK(info.st_mode):
        raise OSError(errno.ELOOP, f"{path} is a symlink")
    if stat.S_IMODE(info.st_mode) & 0o077 and info.st_uid == os.geteuid():
        os.chmod(path, DIR_MODE, follow_symlinks=False)


def check_state_dir(path: Path) -> None:
    """Create `path` 0700 if needed and prove it writable (a file written, then removed).
    The state_dir itself may be a symlink an admin made; what we create in it may not."""
    try:
        path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        info = path.stat()
        if stat.S_IMODE(info.st_mode) & 0o077 and info.st_uid == os.geteuid():
            os.chmod(path, DIR_MODE)
        probe = path / f".write-test-{os.getpid()}"
        write_atomic(probe, b"ok")
        probe.unlink()
    except OSError as exc:
        raise StateDirError(
            f"daemon.state_dir: {path} cannot be created or written: {exc.strerror or exc}"
        ) from None


def write_atomic(path: Path, data: bytes, *, mode: int | None = FILE_MODE) -> None:
    """Replace `path` with `data`. `mode` None keeps an existing file's mode (0600 for a new
    one) and, when we run as root, its owner: for secret files an admin placed."""
    owner: tuple[int, int] | None = None
    if mode is None:
        try:
            old = path.stat()
            mode, owner = stat.S_IMODE(old.st_mode), (old.st_uid, old.st_gid)
        except FileNotFoundError:
            mode = FILE_MODE
    dfd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    tmp = f".{path.name}.{secrets.token_hex(6)}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     FILE_MODE, dir_fd=dfd)
        try:
            os.fchmod(fd, mode)
            if owner is not None and os.geteuid() == 0:
                os.fchown(fd, *owner)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path.name, src_dir_fd=dfd, dst_dir_fd=dfd)
        with contextlib.suppress(OSError):
            os.fsync(dfd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=dfd)
        raise
    finally:
        os.close(dfd)


def read_state(path: Path, limit: int = 64 << 20) -> bytes | None:
    """The file's bytes; None when it does not exist. `StateInvalid` for a symlink, a
    non-regular file or one larger than `limit`; `OSError` for a disk or permission fault."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise StateInvalid("it is a symlink") from None
        raise
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise StateInvalid("it is not a regular file")
        if info.st_size > limit:
            raise StateInvalid(f"it is larger than {limit} bytes")
        return handle.read(limit + 1)


def move_aside(path: Path, why: object) -> None:
    """Rename a state file we cannot use to ``name.corrupt-<time>`` and say so."""
    aside = path.with_name(f"{path.name}.corrupt-{time.time():.0f}")
    try:
        path.replace(aside)  # a symlink is renamed itself, never followed
    except OSError as move_error:
        log.warning("state_file_corrupt", path=str(path), error=str(why),
                    note=f"could not move it aside: {move_error}; starting without it")
        return
    log.error("state_file_corrupt", path=str(path), moved_to=str(aside), error=str(why),
                note="moved aside; starting without it")


def load_json(path: Path, check: Callable[[Any], Any]) -> Any | None:
    """`check(json)` of the file (it raises ValueError/TypeError/KeyError on a wrong shape);
    None when absent, unreadable or moved aside."""
    try:
        raw = read_state(path)
        if raw is None:
            return None
        return check(json.loads(raw))
    except OSError as exc:
        log.warning("state_file_unreadable", path=str(path), error=exc.strerror or str(exc),
                    note="starting without it")
        return None
    except (ValueError, TypeError, KeyError, AttributeError, UnicodeDecodeError) as exc:
        move_aside(path, exc)
        return None


class JsonState:
    """One JSON object in one file, with a format version; `check` validates its data."""

    def __init__(self, path: Path, version: int = 1,
                 check: Callable[[dict[str, Any]], object] | None = None) -> None:
        self.path = path
        self.version = version
        self.check = check

    def _data(self, doc: Any) -> dict[str, Any]:
        if not isinstance(doc, dict) or doc.get("version") != self.version:
            raise StateInvalid(f"not a version {self.version} state file")
        data = doc.get("data")
        if not isinstance(data, dict):
            raise StateInvalid("no data object")
        if self.check is not None:
            self.check(data)
        return data

    def load(self) -> dict[str, Any]:
        data: dict[str, Any] | None = load_json(self.path, self._data)
        return data or {}

    def save(self, data: dict[str, Any]) -> None:
        write_atomic(self.path, dumps_chunked({"version": self.version, "data": data}).encode())


CHUNK = 256  # dict items per json.dumps call


def dumps_chunked(value: Any) -> str:
    """`json.dumps(value, sort_keys=True)`, the same text, but a large dict is encoded a
    slice of items at a time: the C encoder holds the GIL for a whole call, so in a worker
    thread one call of 10,000 entries (36 ms) would stall the event loop as long."""
    if not isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    keys = sorted(value)
    if len(keys) <= CHUNK:
        return "{" + ", ".join(f"{json.dumps(k)}: {dumps_chunked(value[k])}" for k in keys) + "}"
    slices = (json.dumps({k: value[k] for k in keys[i:i + CHUNK]}, sort_keys=True)[1:-1]
              for i in range(0, len(keys), CHUNK))
    return "{" + ", ".join(slices) + "}"


class BatchedState:
    """A JsonState written at most once per `every` seconds (and at `close`): 5,000 targets
    changing state in one outage are a few whole-file writes, not 5,000.

    `off_loop`: encoded and written in a worker thread, one write at a time (backoff.json
    is 1.4 MB at 10,000 jobs in an outage, written once a second). Then `snapshot` must
    return a copy that the loop does not change afterwards."""

    def __init__(self, file: JsonState, snapshot: Callable[[], dict[str, Any]],
                 every: float = 1.0, *, off_loop: bool = False) -> None:
        self.file = file
        self.snapshot = snapshot
        self.every = every
        self.dirty = False
        self.writes = 0
        self._last = 0.0
        self._pending: asyncio.TimerHandle | None = None
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="mailcanary-state") \
            if off_loop else None
        self._writing: Future[None] | None = None

    def changed(self) -> None:
        self.dirty = True
        if self._pending is not None or self._writing is not None:
            return  # a write is due, or one is under way (its end schedules the next)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()  # no loop (a command, a test): write now
            return
        wait = max(0.0, self._last + self.every - time.monotonic())
        self._pending = loop.call_later(wait, self.flush)

    def flush(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
        if not self.dirty or self._writing is not None:
            return
        self.dirty = False
        self._last = time.monotonic()
        data = self.snapshot()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if self._pool is None or loop is None:
            self._write(data)
            return
        self._writing = self._pool.submit(self._write, data)
        self._writing.add_done_callback(
            lambda _: loop.call_soon_threadsafe(self._written) if not loop.is_closed()
            else None)

    def _write(self, data: dict[str, Any]) -> None:
        try:
            self.file.save(data)
            self.writes += 1
        except OSError as exc:
            log.error("state_write_failed", path=str(self.file.path),
                      error=exc.strerror or str(exc))

    def _written(self) -> None:
        self._writing = None
        if self.dirty:
            self.changed()

    def close(self) -> None:
        """The last write, now (after the one under way, if any)."""
        if self._writing is not None:
            self._writing.result()
            self._writing = None
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
        if self.dirty:
            self.dirty = False
            self._write(self.snapshot())
        if self._pool is not None:
            self._pool.shutdown(wait=False)
