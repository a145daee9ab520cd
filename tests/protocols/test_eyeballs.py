"""A host name whose AAAA address is dead (black-holed ::1: a full accept queue drops the
SYN) and whose A address works: the probe connects through the live one at once instead of
waiting out the dead one (Happy Eyeballs, protocols/eyeballs.py)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Iterator

from mailcanary.protocols.eyeballs import DELAY, connect_first, interleave
from mailcanary.protocols.resolver import Address


@contextlib.contextmanager
def black_hole_v6() -> Iterator[int]:
    """A port of ::1 whose SYNs go unanswered: listening, backlog full, never accepting."""
    server = socket.socket(socket.AF_INET6)
    server.bind(("::1", 0))
    server.listen(0)
    port: int = server.getsockname()[1]
    fillers = []
    for _ in range(3):
        filler = socket.socket(socket.AF_INET6)
        filler.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            filler.connect(("::1", port))
        fillers.append(filler)
    time.sleep(0.1)
    try:
        yield port
    finally:
        for sock in [*fillers, server]:
            sock.close()


async def test_dead_aaaa_does_not_delay_the_live_a_record() -> None:
    live = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    live_port = live.sockets[0].getsockname()[1]
    notes: list[str] = []
    with black_hole_v6() as dead_port:
        addresses: list[Address] = [
            (socket.AF_INET6, ("::1", dead_port, 0, 0)),  # first, as getaddrinfo sorts ::1
            (socket.AF_INET, ("127.0.0.1", live_port)),
        ]
        # The dead address alone hangs (what trying addresses in turn would wait out):
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(1.0):
                await connect_first(addresses[:1], notes.append)
                raise AssertionError("the black hole answered")
        start = time.monotonic()
        async with asyncio.timeout(2.0):
            sock, (family, addr) = await connect_first(addresses, notes.append)
        elapsed = time.monotonic() - start
    with sock:
        assert sock.getpeername() == ("127.0.0.1", live_port)
    assert family == socket.AF_INET and addr[1] == live_port
    assert DELAY <= elapsed < DELAY + 0.5, elapsed
    live.close()


async def test_a_refused_address_moves_on_at_once() -> None:
    live = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    live_port = live.sockets[0].getsockname()[1]
    with socket.socket(socket.AF_INET6) as closed:
        closed.bind(("::1", 0))
        refused = closed.getsockname()[1]
    notes: list[str] = []
    start = time.monotonic()
    sock, _ = await connect_first(
        [(socket.AF_INET6, ("::1", refused, 0, 0)), (socket.AF_INET, ("127.0.0.1", live_port))],
        notes.append,
    )
    sock.close()
    assert time.monotonic() - start < DELAY
    assert any("::1" in note and "failed" in note for note in notes), notes
    live.close()


async def test_every_address_dead_raises_the_last_error() -> None:
    ports = []
    for _ in range(2):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
    try:
        await connect_first([(socket.AF_INET, ("127.0.0.1", p)) for p in ports], lambda t: None)
    except ConnectionRefusedError:
        pass
    else:
        raise AssertionError("connected to a closed port")


def test_families_alternate_first_family_first() -> None:
    v6 = [(socket.AF_INET6, (f"::{i}", 1, 0, 0)) for i in range(1, 4)]
    v4 = [(socket.AF_INET, (f"127.0.0.{i}", 1)) for i in range(1, 3)]
    order: list[Address] = [*v6, *v4]
    assert interleave(order) == [v6[0], v4[0], v6[1], v4[1], v6[2]]
