"""Due times sit on a 100 ms grid, so APScheduler wakes the loop once for every job due in
the same tenth of a second (one wake-up per job cost more CPU than the job at 1,000
accounts); and "run now" (a resumed or re-credentialed job) means now, not one interval
later, as a due time a few microseconds in the past used to."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

from mailcanary.config import load_config
from mailcanary.daemon.scheduler import START_GRID, ProbeScheduler, on_grid
from tests.helpers.support import account, endpoint, password_file, write_config


def _on_the_grid(when: datetime) -> bool:
    tenths = when.timestamp() / START_GRID
    return abs(tenths - round(tenths)) < 1e-3


def test_on_grid_rounds_up_to_the_next_boundary() -> None:
    now = time.time()
    due = on_grid(now)
    assert _on_the_grid(due)
    assert 0 <= due.timestamp() - now < START_GRID + 1e-6
    assert on_grid(1_000.2).timestamp() == 1_000.2


async def test_jobs_are_due_on_the_grid_and_run_now_is_now(tmp_path: Path) -> None:
    accounts = [account(f"a{i}", imap=endpoint("127.0.0.1", 1), smtp=endpoint("127.0.0.1", 1),
                        password_file=password_file(tmp_path)) for i in range(40)]
    config = load_config(write_config(tmp_path, *accounts))
    scheduler = ProbeScheduler(config, lambda result: None)
    scheduler.max_jitter = 3600.0  # first runs spread over the whole interval: none now
    specs = scheduler.start()
    try:
        jobs = scheduler.aps.get_jobs()
        assert len(jobs) == len(specs) == 80
        assert all(_on_the_grid(job.next_run_time) for job in jobs)

        job_id = specs[0].job_id
        scheduler.restore_backoff(job_id, 0, 0.0)  # "run now": new credentials, a resume
        due = scheduler.aps.get_job(job_id).next_run_time
        assert _on_the_grid(due)
        assert due.timestamp() - time.time() < 2 * START_GRID  # not one interval later
    finally:
        await scheduler.stop(1.0)
