"""Connecting to the first address that answers (Happy Eyeballs, RFC 8305).

A host name with a dead AAAA (or A) record must not make a probe fail when another address
works: trying addresses one after the other waits out the dead one's whole connect timeout
first. As asyncio's `create_connection(happy_eyeballs_delay=..., interleave=1)` does, the
families alternate and the next address is tried `DELAY` after the previous attempt began
(or at once when it failed); the first connection wins and the others are cancelled. We
keep our own version because we connect a bare socket (each phase timed on its own) from
addresses our cached resolver gave.

Who closes what: an attempt owns its socket until it returns it; a returned socket that
lost the race is closed here; the winner goes to the caller. No transport exists yet.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

from mailcanary.protocols.resolver import Address

DELAY = 0.25  # seconds; RFC 8305's recommended connection attempt delay


def interleave(addresses: list[Address]) -> list[Address]:
    """First address family first, then alternating (RFC 8305 section 4)."""
    queues: dict[int, list[Address]] = {}
    for address in addresses:
        queues.setdefault(address[0], []).append(address)
    out: list[Address] = []
    while any(queues.values()):
        for queue in queues.values():
            if queue:
                out.append(queue.pop(0))
    return out


async def _attempt(address: Address) -> socket.socket:
    family, addr = address
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setblocking(False)
    try:
        await asyncio.get_running_loop().sock_connect(sock, addr)
    except BaseException:
        sock.close()  # ours alone: no transport has seen it
        raise
    return sock


def _close_if_connected(task: asyncio.Task[socket.socket]) -> None:
    if not task.cancelled() and task.exception() is None:
        task.result().close()


async def connect_first(
    addresses: list[Address], note: Callable[[str], None], delay: float = DELAY
) -> tuple[socket.socket, Address]:
    """A connected non-blocking socket to the first of `addresses` that accepts, and which."""
    queue = interleave(addresses)
    if len(queue) == 1:
        return await _attempt(queue[0]), queue[0]
    attempts: dict[asyncio.Task[socket.socket], Address] = {}
    last: BaseException | None = None
    try:
        while queue or attempts:
            if queue:
                address = queue.pop(0)
                attempts[asyncio.ensure_future(_attempt(address))] = address
            done, _ = await asyncio.wait(
                attempts, timeout=delay if queue else None, return_when=asyncio.FIRST_COMPLETED
            )
            winner: tuple[socket.socket, Address] | None = None
            for task in done:
                address = attempts.pop(task)
                exc = task.exception()
                if exc is None and winner is None:
                    winner = task.result(), address
                elif exc is None:
                    task.result().close()  # a second connection in the same instant
                elif isinstance(exc, OSError):
                    note(f"connecting to {address[1][0]} port {address[1][1]} failed: {exc}")
                    last = exc
                else:
                    raise exc
            if winner is not None:
                return winner
    finally:
        for task in attempts:  # the losers close their own sockets when cancelled...
            task.cancel()
            task.add_done_callback(_close_if_connected)  # ...or here, if they connected
    assert last is not None
    raise last
