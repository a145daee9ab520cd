"""Alert state in `state_dir`, so a restart never leaves an alert FIRING forever.

Each sink's streaks are kept under the sink's identity (its kind and where it delivers:
url, or e-mail account and recipients), not its position, so adding, removing or
reordering other sinks, or changing `after`/`repeat`, keeps a sink's state. A firing or
resolved transition is written at once; mere failure counts at most every `FLUSH_EVERY`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog

from mailcanary.config import AlertConfig
from mailcanary.daemon.statefile import JsonState

log = structlog.get_logger("mailcanary.daemon.alerts")

FILE_NAME = "alerts.json"
FLUSH_EVERY = 2.0


def sink_identity(conf: AlertConfig) -> str:
    """Stable across reorders and edits of after/repeat: kind + destination."""
    where: dict[str, Any] = {"kind": conf.kind}
    for key in ("url", "account", "to"):
        value = getattr(conf, key, None)
        if value is not None:
            where[key] = str(value) if not isinstance(value, list) else [str(v) for v in value]
    digest = hashlib.sha256(json.dumps(where, sort_keys=True).encode()).hexdigest()
    return f"{conf.kind}-{digest[:16]}"


class AlertStore:
    def __init__(self, state_dir: Path, snapshot: Callable[[], dict[str, Any]]) -> None:
        self.file = JsonState(state_dir / FILE_NAME)
        self.snapshot = snapshot
        self._pending: asyncio.TimerHandle | None = None

    def load(self) -> dict[str, Any]:
        return self.file.load()

    def changed(self, *, urgent: bool) -> None:
        if urgent:
            self.save()
        elif self._pending is None:
            self._pending = asyncio.get_running_loop().call_later(FLUSH_EVERY, self.save)

    def save(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
        try:
            self.file.save(self.snapshot())
        except OSError as exc:
            log.error("state_write_failed", path=str(self.file.path),
                      error=exc.strerror or str(exc))
