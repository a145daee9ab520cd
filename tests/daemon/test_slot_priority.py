"""In an auth outage the refusals (with their failure delay) hold a server's slots: the
healthy accounts must not wait behind the jobs already in backoff, and the queue must not
grow without bound (each waiting probe costs memory). Through the daemon's real scheduler
and metrics against a real slow server: healthy probes are served first, and runs beyond
the bound are skipped (counted in `mailcanary_probe_skipped_total`, logged as
`probe_skipped`), with no result and no change to their backoff."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from mailcanary.config import load_config
from mailcanary.daemon.app import Daemon
from mailcanary.daemon.exposition import render_chunks
from mailcanary.protocols.limits import acquire_for, holding
from mailcanary.result import ProbeResult
from tests.helpers.daemon_support import parse_metrics, value
from tests.helpers.faults import Script, fake_server
from tests.helpers.support import account, endpoint, password_file, write_config

HOST = "127.0.0.74"
BAD = [f"bad{i:02d}" for i in range(68)]  # in backoff: low priority
GOOD = [f"good{i}" for i in range(3)]
BOUND = 64  # max(64, 16 x 1) may wait for the server's one slot
TURNED_AWAY = len(BAD) + len(GOOD) - BOUND  # 4 low newcomers, 3 evicted by the good ones


def config_file(tmp_path: Path, port: int) -> Path:
    pw = password_file(tmp_path)
    accounts = [account(name, username=name, password_file=pw, timeout="10s",
                        imap=endpoint(HOST, port)) + 'interval = "1h"\n'
                for name in BAD + GOOD]
    path = write_config(tmp_path, *accounts)
    path.write_text(path.read_text().replace(
        "[daemon]\n", "[daemon]\nmax_connections_per_server = 1\n"))
    return path


async def until(condition: Callable[[], bool], within: float) -> bool:
    """Whether `condition` came true within `within` seconds."""
    loop = asyncio.get_running_loop()
    end = loop.time() + within
    while not condition():
        if loop.time() > end:
            return False
        await asyncio.sleep(0.02)
    return True


async def test_healthy_first_and_the_queue_bounded_in_an_outage(tmp_path: Path) -> None:
    """One slot, taken (as by a long refusal) while every job comes due at once: 68 jobs
    in backoff and then 3 healthy ones. 64 may wait; the 7 turned away are all jobs in
    backoff. Once the slot is free, the healthy ones are served first."""
    script = Script("imap", refused=frozenset(BAD), refusal_delay=0.05)
    async with fake_server(script, host=HOST) as port:
        path = config_file(tmp_path, port)
        daemon = Daemon(path, load_config(path))
        scheduler, key = daemon.scheduler, f"{HOST}:{port}"
        results: list[ProbeResult] = []

        def seen(result: ProbeResult) -> None:
            results.append(result)
            daemon.metrics.record(result)

        scheduler.hooks.result = seen
        started: list[float] = []
        scheduler.hooks.lag = started.append
        try:
            with capture_logs() as logs:
                with holding(scheduler.limits):
                    await acquire_for(HOST, port)  # the server's one slot, busy
                    with pytest.MonkeyPatch.context() as patch:
                        patch.setattr(scheduler, "_offset", lambda *args, **kwargs: 0.3)
                        daemon._add_series(scheduler.start())
                    for name in BAD:
                        scheduler.backoff.set("imap", name, 1)  # 2x: low priority
                    assert await until(lambda: len(started) == len(BAD + GOOD), 20)
                    await until(lambda: len([e for e in logs if e["event"] == "probe_skipped"])
                                >= TURNED_AWAY, 5)  # then all the others wait
                assert await until(lambda: len(results) >= BOUND, 30), len(results)
        finally:
            await scheduler.stop(0.0)
            await scheduler.runtime.close()
    skipped = [e for e in logs if e["event"] == "probe_skipped"]
    assert {e["target"] for e in skipped} <= set(BAD) and len(skipped) == TURNED_AWAY
    for event in skipped:
        assert (event["server"], event["waiting"]) == (key, BOUND), event
        assert event["note"] == (
            f"64 probes already wait for a connection slot to {key} (`[daemon] "
            "max_connections_per_server = 1`); this run is skipped, not queued"), event
    served = [r.target for r in results]
    assert len(served) == BOUND, served
    assert sorted(served[:3]) == GOOD and all(r.ok for r in results[:3]), results[:3]
    assert all(r.reason == "invalid_credentials" for r in results[3:]), results[3:]
    metrics = parse_metrics("".join(render_chunks(daemon.metrics)))
    for name in BAD + GOOD:
        count = value(metrics, "mailcanary_probe_skipped_total", probe="imap", target=name)
        if name in {e["target"] for e in skipped}:  # no result, its backoff unchanged
            assert count == 1 and name not in served and f"imap:{name}" not in scheduler.last
            assert scheduler.backoff.get("imap", name) == 1
        else:
            assert count == 0 and name in served, name
            assert scheduler.backoff.get("imap", name) == (2 if name in BAD else 0)
