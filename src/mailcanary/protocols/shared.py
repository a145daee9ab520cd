"""One answer per key in flight, shared by everyone who asks meanwhile, kept a while.

The resolver cache, the settings doctor and the HELO name all have the same shape: a slow
question (a DNS lookup, a candidate search of 3-5 s, `getfqdn()`) that many probes ask at
once about the same thing. The first asker starts the work in a task of its own; the others
await that same task (a cancelled asker does not cancel the answer the others wait for);
the answer is kept for `ttl` seconds. A failure is shared by the askers of that flight but
never kept: the next asker tries again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class SharedAnswers(Generic[K, V]):
    def __init__(self, ttl: float, max_entries: int = 4096) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self.answers: dict[K, tuple[float, V]] = {}  # key -> (expires, answer)
        self.flights: dict[K, asyncio.Task[V]] = {}
        self.started = 0  # how many times the work really ran (tests, benchmarks)

    def cached(self, key: K) -> tuple[bool, V | None]:
        hit = self.answers.get(key)
        if hit is not None and hit[0] > time.monotonic():
            return True, hit[1]
        return False, None

    async def get(self, key: K, work: Callable[[], Awaitable[V]]) -> V:
        hit = self.answers.get(key)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        task = self.flights.get(key)
        if task is None:
            task = asyncio.ensure_future(self._fly(key, work))
            self.flights[key] = task
        return await asyncio.shield(task)

    async def _fly(self, key: K, work: Callable[[], Awaitable[V]]) -> V:
        self.started += 1
        try:
            answer = await work()
        finally:
            self.flights.pop(key, None)
        if len(self.answers) >= self.max_entries:
            self.answers.clear()
        self.answers[key] = (time.monotonic() + self.ttl, answer)
        return answer

    def clear(self) -> None:
        """Forget the kept answers (a reload); flights in progress finish for their askers."""
        self.answers.clear()

    async def close(self) -> None:
        """Cancel the flights nobody will wait for any more (shutdown)."""
        flights = list(self.flights.values())
        for task in flights:
            task.cancel()
        if flights:
            await asyncio.wait(flights, timeout=1.0)
