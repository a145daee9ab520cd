"""At a stop, alert events a sink has not delivered within the grace time are counted as
dropped (and logged), never lost without a trace."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from mailcanary.config import AlertConfig, load_config
from mailcanary.daemon.alerts import AlertEngine
from mailcanary.daemon.metrics import MetricsState
from tests.daemon.test_alert_persistence import failing
from tests.helpers.daemon_support import daemon_config, free_port


class Hanging:
    """An HTTP server that reads requests and never answers."""

    def __init__(self) -> None:
        self.requests = 0
        self.url = ""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            self.requests += 1
            await asyncio.sleep(3600)
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def hanging() -> AsyncIterator[Hanging]:
    server = Hanging()
    srv = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    server.url = f"http://127.0.0.1:{srv.sockets[0].getsockname()[1]}"
    try:
        yield server
    finally:
        srv.close()


async def test_queued_and_in_flight_events_count_as_dropped(
    hanging: Hanging, tmp_path: Path
) -> None:
    url = f"{hanging.url}/hook"
    config = load_config(daemon_config(tmp_path, free_port(),
                                       f'[[alerts]]\nkind = "webhook"\nurl = "{url}"\nafter = 1\n'))
    metrics = MetricsState()
    engine = AlertEngine(metrics, lambda: config, lambda k, t: 60.0)
    engine.configure([AlertConfig.model_validate({"kind": "webhook", "url": url, "after": 1})])
    label = engine.workers[0].label
    for i, target in enumerate("abc"):
        engine.observe(failing(target, float(i + 1)))
    for _ in range(100):  # the first event is in flight, two wait in the queue
        if hanging.requests:
            break
        await asyncio.sleep(0.05)
    assert hanging.requests == 1
    with capture_logs() as logs:
        await engine.close(grace=0.3)
    assert metrics.notifications.get((label, "dropped")) == 3
    assert metrics.notifications.get((label, "sent"), 0) == 0
    dropped = [e for e in logs if e["event"] == "alert_dropped"]
    assert sorted(e["target"] for e in dropped) == ["a", "b", "c"]
    assert all(e["reason"] == "shutdown" for e in dropped)
