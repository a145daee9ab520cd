"""What an inbound watch remembers between runs, one JSON file per watch in ``state_dir``.

A triggered watch remembers when it last called the trigger and that run's verdict, so a
restart, a reload, ``/probe`` or a repeated ``check`` never calls the app sooner than the
interval (the last verdict is reported again instead). A passive watch remembers its
newest matching arrival, so deleting that message does not make the next run say "lost",
and how far it has read each folder, so every message is examined once.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mailcanary.diagnosis import StateError

DIRECTORY = "inbound"


@dataclass
class Verdict:
    reason: str
    phase: str | None
    detail: str
    hint: str
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Memory:
    last_trigger: float | None = None  # wall time the trigger was called
    verdict: Verdict | None = None  # of the last run that completed
    verdict_at: float | None = None  # that run's trigger time
    newest: dict[str, Any] | None = None  # passive: {"at", "placement", "folder"}
    floors: dict[str, list[int]] = field(default_factory=dict)  # wire -> [uidvalidity, uidnext]


def _path(state_dir: Path, name: str) -> Path:
    return Path(state_dir) / DIRECTORY / f"{name}.json"


def load(state_dir: Path, name: str) -> Memory:
    path = _path(state_dir, name)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return Memory()
    except (OSError, ValueError) as exc:
        raise StateError(f"cannot read {path}: {exc}") from None
    verdict = raw.get("verdict")
    return Memory(
        last_trigger=raw.get("last_trigger"),
        verdict=Verdict(**verdict) if isinstance(verdict, dict) else None,
        verdict_at=raw.get("verdict_at"),
        newest=raw.get("newest"),
        floors={k: list(v) for k, v in (raw.get("floors") or {}).items()},
    )


def save(state_dir: Path, name: str, memory: Memory) -> None:
    """Atomically (write, fsync, rename), so a crash leaves the old or the new file."""
    path = _path(state_dir, name)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{name}.")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(asdict(memory), fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise StateError(f"cannot write {path}: {exc.strerror or exc}") from None
