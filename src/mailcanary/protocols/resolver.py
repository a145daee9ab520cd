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
import time
from typing import Any

TTL = 30.0
_MAX_ENTRIES = 4096

Address = tuple[int, tuple[Any, ...]]


class Resolver:
    def __init__(self, ttl: float = TTL) -> None:
        self.ttl = ttl
        self.cache: dict[tuple[str, int], tuple[float, list[Address]]] = {}
        self.pending: dict[tuple[str, int], asyncio.Task[list[Address]]] = {}
        self.lookups = 0  # real getaddrinfo calls (for tests and the benchmark)

    async def resolve(self, host: str, port: int) -> list[Address]:
        key = (host.lower(), port)
        hit = self.cache.get(key)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        task = self.pending.get(key)
        if task is None:
            # A task of its own: a cancelled caller does not cancel the others' answer.
            task = asyncio.ensure_future(self._lookup(key, host, port))
            self.pending[key] = task
        return await asyncio.shield(task)

    async def _lookup(self, key: tuple[str, int], host: str, port: int) -> list[Address]:
        try:
            self.lookups += 1
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
            )
        finally:
            self.pending.pop(key, None)
        addresses = [(int(family), tuple(addr)) for family, _, _, _, addr in infos]
        if len(self.cache) >= _MAX_ENTRIES:
            self.cache.clear()
        self.cache[key] = (time.monotonic() + self.ttl, addresses)
        return addresses


_resolvers: dict[int, Resolver] = {}


def resolver() -> Resolver:
    """The running loop's resolver (futures belong to one loop; tests run many loops)."""
    loop = asyncio.get_running_loop()
    found = _resolvers.get(id(loop))
    if found is None or getattr(found, "_loop", None) is not loop:
        if len(_resolvers) > 16:
            _resolvers.clear()
        found = Resolver()
        found._loop = loop  # type: ignore[attr-defined]
        _resolvers[id(loop)] = found
    return found
