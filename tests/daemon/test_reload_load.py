"""A reload at fleet size: the TOML and pydantic parsing does not stall the event loop, and a
changed [defaults] (which changes every job) restarts the jobs spread out as start-up does,
not all within a few seconds."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path

from mailcanary.config import load_config
from mailcanary.daemon.app import Daemon
from mailcanary.daemon.scheduler import START_RATE, ProbeScheduler


def fleet_toml(state_dir: Path, accounts: int, timeout: str = "5s", broken: bool = False) -> str:
    head = (f'[daemon]\nstate_dir = "{state_dir}"\n\n[defaults]\ninterval = "5m"\n'
            f'timeout = "{timeout}"\n\n')
    body = "".join(
        f'[[accounts]]\nname = "user{i:05d}"\naddress = "user{i:05d}@example.test"\n'
        'password_env = "MAILCANARY_TEST_UNUSED"\n'
        'imap = { host = "127.0.0.1", port = 1, security = "none", allow_insecure_auth = true }\n'
        for i in range(accounts)
    )
    tail = '[[accounts]]\nname = "broken"\naddress = "not an address"\n' if broken else ""
    return head + body + tail


async def test_reload_parses_off_the_loop(tmp_path: Path) -> None:
    """10,000 accounts and a mistake in the last one: the whole file is read and validated
    (about a second) while the loop goes on answering; the old config stays."""
    path = tmp_path / "mailcanary.toml"
    path.write_text(fleet_toml(tmp_path / "state", 1))
    daemon = Daemon(path, load_config(path))
    path.write_text(fleet_toml(tmp_path / "state", 10_000, broken=True))
    gaps: list[float] = []

    async def ticker() -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    ticking = asyncio.create_task(ticker())
    await asyncio.sleep(0.05)
    started = time.perf_counter()
    assert await daemon.reload() is False
    took = time.perf_counter() - started
    await asyncio.sleep(0.05)  # the ticker notes the gap the reload made, if any
    ticking.cancel()
    assert daemon.metrics.reload_ok == 0.0 and len(daemon.config.accounts) == 1
    assert took > 0.3, f"the parse took {took:.3f} s: too small a file to show anything"
    assert max(gaps) < took / 3, f"the loop stalled {max(gaps):.3f} s of a {took:.3f} s reload"


async def test_changed_defaults_restart_jobs_spread_out(tmp_path: Path) -> None:
    accounts = 1500
    path = tmp_path / "mailcanary.toml"
    path.write_text(fleet_toml(tmp_path / "state", accounts))
    scheduler = ProbeScheduler(load_config(path), lambda result: None)
    scheduler.start()
    try:
        path.write_text(fleet_toml(tmp_path / "state", accounts, timeout="6s"))
        added, changed, removed = scheduler.apply(load_config(path))
        assert not added and not removed and len(changed) == accounts
        now = datetime.now(UTC)
        offsets = sorted((scheduler.aps.get_job(s.job_id).next_run_time - now).total_seconds()
                         for s in changed)
    finally:
        await scheduler.stop(0)
    spread = accounts / START_RATE  # 30 s, as a start-up of this many jobs
    assert offsets[-1] > 0.8 * spread, f"all restarts within {offsets[-1]:.1f} s"
    first_seconds = sum(1 for o in offsets if o < 5.0)
    assert first_seconds < 0.25 * accounts, f"{first_seconds} restarts in the first 5 s"
