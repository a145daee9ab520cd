"""What an inbound watch remembers between runs, one JSON file per watch in ``state_dir``.

A triggered watch remembers when it last called the trigger and that run's verdict, so a
restart, a reload, ``/probe`` or a repeated ``check`` never calls the app sooner than the
interval (the last verdict is reported again instead). A passive watch remembers its
newest matching arrival, so deleting that message does not make the next run say "lost",
and how far it has read each folder, so every message is examined once.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mailcanary.diagnosis import StateError
from mailcanary.state import load_json, private_dir, write_atomic

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


def _memory(raw: Any) -> Memory:
    """The file's JSON as a Memory; ValueError/TypeError/KeyError on a wrong shape."""
    if not isinstance(raw, dict):
        raise TypeError("not a JSON object")
    verdict = raw.get("verdict")
    floors = raw.get("floors") or {}
    memory = Memory(
        last_trigger=_number(raw.get("last_trigger")),
        verdict=Verdict(**verdict) if verdict is not None else None,
        verdict_at=_number(raw.get("verdict_at")),
        newest=raw.get("newest"),
        floors={str(k): [int(n) for n in v] for k, v in floors.items()},
    )
    if memory.newest is not None and not isinstance(memory.newest, dict):
        raise TypeError("newest is not an object")
    return memory


def _number(value: Any) -> float | None:
    if value is not None and not isinstance(value, int | float):
        raise TypeError(f"{value!r} is not a number")
    return value


def load(state_dir: Path, name: str) -> Memory:
    """What the watch remembers; a file that is not what we wrote (a hand edit, a disk
    fault, a symlink) is moved aside with a warning and the watch starts afresh."""
    memory: Memory | None = load_json(_path(state_dir, name), _memory)
    return memory or Memory()


def save(state_dir: Path, name: str, memory: Memory) -> None:
    """Atomically, 0600, never through a symlink (mailcanary.state.write_atomic)."""
    path = _path(state_dir, name)
    try:
        private_dir(path.parent)
        write_atomic(path, json.dumps(asdict(memory)).encode())
    except OSError as exc:
        raise StateError(f"cannot write {path}: {exc.strerror or exc}") from None
