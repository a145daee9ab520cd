"""The daemon's small state files under `state_dir` (alert state, backoff), crash-safe.

A write goes to a temporary file that is fsynced and renamed over the old one (then the
directory is fsynced), so a crash or kill -9 leaves either the old or the new file, never
half of one. A file that cannot be read as what we wrote (a disk fault, a hand edit) is
moved aside with an error log naming both paths, and the daemon runs on without it.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path
from typing import Any

import structlog

log = structlog.get_logger("mailcanary.daemon.state")


class StateDirError(Exception):
    """`daemon.state_dir` cannot be created or written: the daemon must not start."""


def check_state_dir(path: Path) -> None:
    """Create `path` if needed and prove it writable (a file written, fsynced, removed)."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-test-{os.getpid()}"
        with probe.open("wb") as handle:
            handle.write(b"ok")
            handle.flush()
            os.fsync(handle.fileno())
        probe.unlink()
    except OSError as exc:
        raise StateDirError(
            f"daemon.state_dir: {path} cannot be created or written: {exc.strerror or exc}"
        ) from None


def write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    with contextlib.suppress(OSError):
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class JsonState:
    """One JSON object in one file, with a format version."""

    def __init__(self, path: Path, version: int = 1) -> None:
        self.path = path
        self.version = version

    def load(self) -> dict[str, Any]:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        except OSError as exc:
            log.error("state_file_unreadable", path=str(self.path),
                      error=exc.strerror or str(exc), note="starting without it")
            return {}
        try:
            doc = json.loads(raw)
            if not isinstance(doc, dict) or doc.get("version") != self.version:
                raise ValueError(f"not a version {self.version} state file")
            data = doc.get("data")
            if not isinstance(data, dict):
                raise ValueError("no data object")
            return data
        except (ValueError, UnicodeDecodeError) as exc:
            self._move_aside(exc)
            return {}

    def _move_aside(self, exc: Exception) -> None:
        aside = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}")
        try:
            self.path.replace(aside)
        except OSError as move_error:
            log.error("state_file_corrupt", path=str(self.path), error=str(exc),
                      note=f"could not move it aside: {move_error}; starting without it")
            return
        log.error("state_file_corrupt", path=str(self.path), moved_to=str(aside),
                  error=str(exc), note="moved aside; starting without it")

    def save(self, data: dict[str, Any]) -> None:
        body = json.dumps({"version": self.version, "data": data}, sort_keys=True)
        write_atomic(self.path, body.encode())
