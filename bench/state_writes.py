"""State-file writes in a provider-wide auth outage: batched vs one write per event.

    python bench/state_writes.py --accounts 5000 --seconds 10

N accounts fail auth, spread over `--seconds` (as their schedule brings them), through the
daemon's real `Backoff` and `AlertEngine` (one webhook sink, after = 1) writing
backoff.json and alerts.json in a temporary state_dir. The baseline forces a whole-file
write after every event, as the code before the batching did; the measured run uses the
daemon's own batching. Prints one JSON summary: writes, bytes written, seconds of the
writes on the loop, and the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import structlog

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from mailcanary.config import config_from_dict
from mailcanary.daemon.alerts import AlertEngine
from mailcanary.daemon.backoff import Backoff
from mailcanary.daemon.metrics import MetricsState
from mailcanary.result import ProbeResult
from mailcanary.state import JsonState, check_state_dir


class Counted(JsonState):
    writes = 0
    bytes = 0
    seconds = 0.0

    def save(self, data: dict[str, Any]) -> None:
        started = time.perf_counter()
        body = json.dumps({"version": self.version, "data": data}, sort_keys=True).encode()
        super().save(data)
        Counted.seconds += time.perf_counter() - started
        Counted.writes += 1
        Counted.bytes += len(body)


def config(root: Path, n: int) -> Any:
    (root / "pw").write_text("pw\n")
    return config_from_dict({
        "daemon": {"state_dir": str(root / "state")},
        "accounts": [{"name": f"a{i}", "address": f"a{i}@example.test",
                      "password_file": str(root / "pw"),
                      "imap": {"host": "127.0.0.1", "port": 993}} for i in range(n)],
        "alerts": [{"kind": "webhook", "url": "http://127.0.0.1:9/x", "after": 1}],
    })


async def outage(root: Path, n: int, seconds: float, per_event: bool) -> dict[str, Any]:
    Counted.writes, Counted.bytes, Counted.seconds = 0, 0, 0.0
    cfg = config(root, n)
    check_state_dir(root / "state")
    backoff = Backoff()
    backoff.attach(root / "state")
    engine = AlertEngine(MetricsState(), lambda: cfg, lambda kind, target: 600.0)
    engine.persist_in(root / "state")
    engine.configure(list(cfg.alerts))
    assert backoff.batch is not None and engine.store is not None
    for batch in (backoff.batch, engine.store.batch):
        batch.file.__class__ = Counted
    started = time.perf_counter()
    for i in range(n):
        target = f"a{i}"
        backoff.record("imap", target, "auth")
        backoff.save(cfg, "imap", target, time.time() + 60)
        engine.observe(ProbeResult("imap", target, False, "auth", "invalid_credentials",
                                   "auth", "NO [AUTHENTICATIONFAILED]", "", 0.1, {}))
        if per_event:
            backoff.batch.flush()
            engine.store.save()
        await asyncio.sleep(seconds / n)
    backoff.close()
    engine.store.save()
    for worker in engine.workers:
        worker.task.cancel()
    return {"writes": Counted.writes, "megabytes": round(Counted.bytes / 1e6, 2),
            "write_seconds": round(Counted.seconds, 3),
            "wall_seconds": round(time.perf_counter() - started, 2)}


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--accounts", type=int, default=5000)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))
    out: dict[str, Any] = {"accounts": args.accounts, "spread_seconds": args.seconds}
    for name, per_event in (("per_event_baseline", True), ("batched", False)):
        with tempfile.TemporaryDirectory() as tmp:
            out[name] = await outage(Path(tmp), args.accounts, args.seconds, per_event)
    base, new = out["per_event_baseline"], out["batched"]
    out["bytes_ratio"] = round(base["megabytes"] / max(new["megabytes"], 1e-9), 1)
    out["write_seconds_ratio"] = round(base["write_seconds"] / max(new["write_seconds"], 1e-9), 1)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
