"""/metrics rendering at fleet size: in slices on the loop vs. in a thread, and what a
probe waiting on the event loop feels meanwhile.

    python bench/exposition.py [--accounts 10000] [--scrapes 20]

Fills a MetricsState with N accounts (imap + smtp, after one successful probe each),
then renders `--scrapes` expositions at once while a ticker task
sleeps 1 ms in a loop and records how late it wakes (what a probe's next step would
wait). Variant "slices": `render_chunks` with the loop given back between slices (what
the daemon does); "thread": the same text built by `asyncio.to_thread`; "one_piece": built
on the loop in one go. Prints one JSON line per variant: render seconds, bytes, the
ticker's p99 and max delay.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from mailcanary.daemon.exposition import render_chunks  # noqa: E402  (after sys.path)
from mailcanary.daemon.metrics import MetricsState  # noqa: E402
from mailcanary.result import ProbeResult  # noqa: E402


def state_of(accounts: int) -> MetricsState:
    state = MetricsState()
    for i in range(accounts):
        for kind in ("imap", "smtp"):
            # An IMAP account over TLS, SMTP with STARTTLS, passwords: as phases_for says.
            reached = ("dns", "connect", "tls", "greeting", "auth",
                       "select" if kind == "imap" else "starttls")
            state.ensure(kind, f"user{i:05d}", (), reached)
            phases = {"dns": 0.0001, "connect": 0.0003, "tls": 0.004, "auth": 0.002}
            state.record(ProbeResult(kind, f"user{i:05d}", True, "ok", "ok", None, "", "",
                                     0.01, phases))
    return state


async def ticker(stop: asyncio.Event, delays: list[float]) -> None:
    while not stop.is_set():
        start = time.perf_counter()
        await asyncio.sleep(0.001)
        delays.append(time.perf_counter() - start - 0.001)


async def slices(state: MetricsState) -> int:
    parts = []
    for chunk in render_chunks(state):
        parts.append(chunk)
        await asyncio.sleep(0)
    return len("".join(parts).encode())


async def thread(state: MetricsState) -> int:
    return await asyncio.to_thread(lambda: len("".join(render_chunks(state)).encode()))


async def one_piece(state: MetricsState) -> int:
    return len("".join(render_chunks(state)).encode())


async def variant(name: str, state: MetricsState, scrapes: int) -> dict[str, object]:
    stop, delays = asyncio.Event(), []
    tick = asyncio.create_task(ticker(stop, delays))
    await asyncio.sleep(0.05)
    delays.clear()
    fn = {"slices": slices, "thread": thread, "one_piece": one_piece}[name]
    start = time.perf_counter()
    sizes = await asyncio.gather(*(fn(state) for _ in range(scrapes)))
    seconds = time.perf_counter() - start
    stop.set()
    await tick
    delays.sort()
    return {
        "variant": name, "scrapes_at_once": scrapes, "seconds_all": round(seconds, 3),
        "bytes": sizes[0], "ticker_p99_ms": round(1000 * delays[int(0.99 * (len(delays) - 1))], 2),
        "ticker_max_ms": round(1000 * delays[-1], 2),
        "ticker_median_ms": round(1000 * statistics.median(delays), 3),
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--accounts", type=int, default=10000)
    parser.add_argument("--scrapes", type=int, default=1)
    args = parser.parse_args()
    state = state_of(args.accounts)
    series = sum(1 for chunk in render_chunks(state) for line in chunk.splitlines()
                 if line and not line.startswith("#"))
    print(json.dumps({"accounts": args.accounts, "targets": len(state.targets),
                      "series": series}))
    for name in ("slices", "thread", "one_piece"):
        print(json.dumps(asyncio.run(variant(name, state, args.scrapes))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
