"""Alert state in `state_dir`, so a restart never leaves an alert FIRING forever.

Each sink's streaks are kept under the sink's identity (its kind and where it delivers:
url, or e-mail account and recipients), not its position, so adding, removing or
reordering other sinks, or changing `after`/`repeat`, keeps a sink's state. A
change is written at most every `FLUSH_EVERY` seconds and at stop (one write for 5,000
targets failing at once, not one each).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mailcanary.config import AlertConfig
from mailcanary.daemon.alerts.grouping import ServerGroups
from mailcanary.daemon.alerts.state import AlertTracker
from mailcanary.state import BatchedState, JsonState, StateInvalid

FILE_NAME = "alerts.json"
FLUSH_EVERY = 1.0


def sink_identity(conf: AlertConfig) -> str:
    """Stable across reorders and edits of after/repeat: kind + destination."""
    where: dict[str, Any] = {"kind": conf.kind}
    for key in ("url", "account", "to"):
        value = getattr(conf, key, None)
        if value is not None:
            where[key] = str(value) if not isinstance(value, list) else [str(v) for v in value]
    digest = hashlib.sha256(json.dumps(where, sort_keys=True).encode()).hexdigest()
    return f"{conf.kind}-{digest[:16]}"


def _check(data: dict[str, Any]) -> None:
    """Every sink's rows must load: a wrong shape is found at start-up (and moved aside),
    not as a crash while configuring the sinks."""
    for saved in data.values():
        rows, servers = (saved, None) if isinstance(saved, list) else (
            saved.get("targets") if isinstance(saved, dict) else None,
            saved.get("servers") if isinstance(saved, dict) else None)
        if not isinstance(rows, list) or not isinstance(servers, dict | None):
            raise StateInvalid("a sink's state is not {targets: [...], servers: {...}}")
        tracker = AlertTracker(1, 0.0)
        tracker.load(rows)
        ServerGroups(tracker, 1).load(servers, {})


class AlertStore:
    """Every change marks the file dirty; it is written at most once a second and at stop
    (a firing alert is sent from memory, the file only has to survive a restart)."""

    def __init__(self, state_dir: Path, snapshot: Callable[[], dict[str, Any]]) -> None:
        self.file = JsonState(state_dir / FILE_NAME, check=_check)
        self.batch = BatchedState(self.file, snapshot, every=FLUSH_EVERY)

    def load(self) -> dict[str, Any]:
        return self.file.load()

    def changed(self) -> None:
        self.batch.changed()

    def save(self) -> None:
        self.batch.dirty = True
        self.batch.flush()
