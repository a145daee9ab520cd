"""The status page's history at fleet size: 10,000 targets every 5 minutes for 30 days.

    python bench/history_bench.py --targets 10000 --days 30

Feeds the daemon's real `HistoryDB` (the code the worker thread runs) a simulated month:
every target's run every `--interval` seconds, 2 % of targets failing for a few hours at a
time, and its compaction. To fill a month in minutes, one write holds `--batch-seconds`
of runs (the tables end the same); the cost of a daemon-sized flush (5 s of runs) is then
measured on the full database. Then opens the history
as a restarted daemon does (`History.open`) and renders the real `/status` page (first page
of 100, a filtered page, the last page) and `/api/v1/status` for one page.

Baselines in the same run: size on disk of keeping every run (one row per result, measured
for `--raw-sample` targets over the whole period and scaled up) and the same page rendered
for every target at once (no pagination). Prints one JSON summary.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from mailcanary.config import config_from_dict
from mailcanary.daemon.status.history import (
    DB_NAME,
    FLUSH_EVERY,
    Current,
    History,
    HistoryDB,
    Run,
    db_size,
)
from mailcanary.daemon.status.page import Query, StatusPage
from mailcanary.probes import PROBES

HINT = "The server rejected the username or password. Check whether the password was changed."


def simulate(state_dir: Path, targets: int, days: int, interval: int, raw: int,
             end: float, batch: int) -> dict[str, Any]:
    store = HistoryDB(state_dir, days)
    store.open()
    rng = random.Random(7)
    names = [("imap", f"acct{i:05d}") for i in range(targets)]
    current: dict[tuple[str, str], Current] = {}
    broken_until = [0.0] * targets
    raw_db = sqlite3.connect(state_dir / "raw.sqlite3")
    raw_db.execute("CREATE TABLE runs (id INTEGER, at REAL, ok INTEGER, cls TEXT, reason TEXT)")
    started = time.perf_counter()
    writes = 0.0
    t = end - days * 86400
    runs: list[Run] = []
    changed: list[tuple[tuple[str, str], Current]] = []
    raws: list[tuple[Any, ...]] = []
    batches = 0
    while t < end:
        for i, key in enumerate(names):
            if broken_until[i] < t and rng.random() < 0.02 / 36:  # ~2 % broken at any time
                broken_until[i] = t + rng.uniform(1, 6) * 3600
            ok = broken_until[i] < t
            at = t + (i % interval)
            run = Run(key[0], key[1], at, ok, "ok" if ok else "auth",
                      "ok" if ok else "invalid_credentials", None if ok else "auth",
                      "" if ok else HINT)
            runs.append(run)
            now = current.get(key)
            if now is None or now.ok != ok:
                now = current[key] = Current(ok, run.cls, run.reason, run.phase, run.hint, at, at)
                changed.append((key, now))
            if i < raw:
                raws.append((i, at, int(ok), run.cls, run.reason))
        t += interval
        if int(t) // batch != int(t - interval) // batch or t >= end:
            began = time.perf_counter()
            store.write(runs, changed)
            store.compact(t)
            writes += time.perf_counter() - began
            batches += 1
            raw_db.executemany("INSERT INTO runs VALUES (?, ?, ?, ?, ?)", raws)
            runs, changed, raws = [], [], []
    # What the daemon writes per flush: FLUSH_EVERY seconds of runs, on the full database.
    per_flush = max(1, int(targets * FLUSH_EVERY / interval))
    flush_times = []
    for n in range(20):
        sample = [Run("imap", names[(n * per_flush + j) % targets][1], end + n, True, "ok",
                      "ok", None, "") for j in range(per_flush)]
        began = time.perf_counter()
        store.write(sample, [])
        flush_times.append(time.perf_counter() - began)
    raw_db.commit()
    raw_db.execute("VACUUM")
    raw_db.close()
    store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # type: ignore[union-attr]
    store.close()
    raw_bytes = (state_dir / "raw.sqlite3").stat().st_size
    return {"simulated_seconds": round(time.perf_counter() - started, 1),
            "fill_write_seconds": round(writes, 1), "fill_batches": batches,
            "runs_per_daemon_flush": per_flush,
            "daemon_flush_ms_median": round(sorted(flush_times)[10] * 1000, 2),
            "raw_bytes_for_all": int(raw_bytes * targets / max(raw, 1))}


async def render(state_dir: Path, targets: int, days: int) -> dict[str, Any]:
    config = config_from_dict({
        "daemon": {"state_dir": str(state_dir), "history_days": days},
        "accounts": [{"name": f"acct{i:05d}", "address": f"a{i}@example.test",
                      "password": "x", "imap": {"host": f"imap{i % 50}.example.test"}}
                     for i in range(targets)],
    })
    began = time.perf_counter()
    history = History(state_dir, days)
    await history.open()
    opened = time.perf_counter() - began
    keys = [("imap", a.name) for a in config.accounts]
    page = StatusPage(history, lambda: keys, lambda: config, PROBES)
    await page.html("")  # the first render builds the Jinja2 environment
    timings: dict[str, float] = {}
    stall = {"max": 0.0}

    async def ticker() -> None:  # the longest the loop was held while pages were served
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            stall["max"] = max(stall["max"], now - last)
            last = now

    tick = asyncio.create_task(ticker())
    await asyncio.sleep(0.01)
    for name, query in (("first_page", ""), ("failing_only", "state=failing"),
                        ("one_server", "server=imap7.example.test:993"),
                        ("last_page", f"page={targets // 100}")):
        began = time.perf_counter()
        status, _, body = await page.html(query)
        timings[name] = round(time.perf_counter() - began, 3)
        assert status == 200 and b"</html>" in body, (name, status)
    began = time.perf_counter()
    await page.api("page=1")
    timings["api_one_page"] = round(time.perf_counter() - began, 3)
    began = time.perf_counter()
    await page.api("")
    timings["api_all_targets"] = round(time.perf_counter() - began, 3)
    tick.cancel()
    loop_held = round(stall["max"], 3)
    # Baseline: every target on one page (what pagination avoids).
    rows, total = await page._page(Query(filters={}, per_page=0))
    began = time.perf_counter()
    rows, total = await page._page(Query(filters={}, per_page=0))
    page.renderer.page("en", rows=rows, query=Query({}), total=total, pages=1, options={
        "state": [], "probe": [], "provider": []}, now=time.time(),
        rfc3339=str, took=0.0)
    timings["baseline_all_on_one_page"] = round(time.perf_counter() - began, 3)
    await history.close()
    return {"open_seconds": round(opened, 3), "render_seconds": timings,
            "longest_loop_stall_seconds": loop_held}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--targets", type=int, default=10000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--interval", type=int, default=300)
    parser.add_argument("--raw-sample", type=int, default=100)
    parser.add_argument("--batch-seconds", type=int, default=3600,
                        help="simulated time per write while filling (the end state is the "
                             "same as the daemon's 5 s flushes; their cost is measured apart)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        state_dir = Path(tmp)
        end = time.time()
        out: dict[str, Any] = {"targets": args.targets, "days": args.days,
                               "interval_seconds": args.interval}
        out.update(simulate(state_dir, args.targets, args.days, args.interval,
                            args.raw_sample, end, args.batch_seconds))
        out["history_bytes"] = db_size(state_dir)
        out["size_ratio_vs_every_run"] = round(out["history_bytes"] / out["raw_bytes_for_all"], 4)
        with sqlite3.connect(state_dir / DB_NAME) as db:
            out["rows"] = {t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                           for t in ("targets", "state", "recent", "buckets")}
        out.update(asyncio.run(render(state_dir, args.targets, args.days)))
        timings = out["render_seconds"]
        out["first_page_vs_all_on_one_page"] = round(
            timings["first_page"] / max(timings["baseline_all_on_one_page"], 1e-6), 3)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
