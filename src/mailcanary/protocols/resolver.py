"""Host name lookups, cached briefly and coalesced, off the event loop.

Thousands of probes a minute resolve the same few host names. Each `getaddrinfo` goes
through the default thread pool (a handful of threads): one slow resolver answer queued
every probe behind it. Here one lookup per (host, port) is in flight at a time, every
probe that asks meanwhile awaits that same answer, and an answer is kept for `TTL`
seconds. We keep the system resolver (getaddrinfo: /etc/hosts, nsswitch, search domains)
rather than an async DNS library, because probes must resolve exactly as the mail
clients on the same machine do; getaddrinfo reports no TTL, so a short fixed one is used.
Failures are shared by the waiters of that lookup but never cached: the next probe asks
again, so a repaired DNS record is seen at once.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from mailcanary.protocols.shared import SharedAnswers

TTL = 30.0

Address = tuple[int, tuple[Any, ...]]


class Resolver:
    """One per runtime (protocols/runtime.py): a daemon's probes share it, two daemons or two
    `check` runs in one process do not."""

    def __init__(self, ttl: float = TTL) -> None:
        self.answers: SharedAnswers[tuple[str, int], list[Address]] = SharedAnswers(ttl)

    @property
    def cache(self) -> dict[tuple[str, int], tuple[float, list[Address]]]:
        return self.answers.answers

    @property
    def lookups(self) -> int:
        """Real getaddrinfo calls (for tests and the benchmark)."""
        return self.answers.started

    async def resolve(self, host: str, port: int) -> list[Address]:
        return await self.answers.get((host.lower(), port), lambda: _lookup(host, port))


async def _lookup(host: str, port: int) -> list[Address]:
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    return [(int(family), tuple(addr)) for family, _, _, _, addr in infos]
