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

With `[daemon] nameservers` set, a host name is looked up (A and AAAA) at those servers
instead (protocols/dns.py, loaded only then), so every DNS query of mailcanary goes where
the config says; IP literals and "localhost" need no DNS and still go to getaddrinfo.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Sequence
from typing import Any

from mailcanary.protocols.shared import SharedAnswers

TTL = 30.0

Address = tuple[int, tuple[Any, ...]]


class Resolver:
    """One per runtime (protocols/runtime.py): a daemon's probes share it, two daemons or two
    `check` runs in one process do not."""

    def __init__(self, ttl: float = TTL, nameservers: Sequence[str] = ()) -> None:
        self.answers: SharedAnswers[tuple[str, int], list[Address]] = SharedAnswers(ttl)
        self.nameservers = tuple(nameservers)

    def use_nameservers(self, nameservers: Sequence[str]) -> None:
        """A reload's `[daemon] nameservers`: a change forgets the answers of the old ones."""
        if tuple(nameservers) != self.nameservers:
            self.nameservers = tuple(nameservers)
            self.cache.clear()

    @property
    def cache(self) -> dict[tuple[str, int], tuple[float, list[Address]]]:
        return self.answers.answers

    @property
    def lookups(self) -> int:
        """Real getaddrinfo calls (for tests and the benchmark)."""
        return self.answers.started

    async def resolve(self, host: str, port: int) -> list[Address]:
        if self.nameservers and _needs_dns(host):
            servers = self.nameservers
            return await self.answers.get((host.lower(), port),
                                          lambda: _lookup_at(servers, host, port))
        return await self.answers.get((host.lower(), port), lambda: _lookup(host, port))


def _needs_dns(host: str) -> bool:
    if host.lower() in ("localhost", "localhost."):
        return False
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return True
    return False


async def _lookup_at(nameservers: tuple[str, ...], host: str, port: int) -> list[Address]:
    from mailcanary.protocols.dns import Dns  # noqa: PLC0415  (dnspython: only when configured)

    found = await Dns(nameservers).addresses(host)
    if not found:
        raise socket.gaierror(socket.EAI_NONAME, f"{host} has no A or AAAA record")
    return [(int(socket.AF_INET6), (a, port, 0, 0)) if ":" in a
            else (int(socket.AF_INET), (a, port)) for a in found]


async def _lookup(host: str, port: int) -> list[Address]:
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    return [(int(family), tuple(addr)) for family, _, _, _, addr in infos]
