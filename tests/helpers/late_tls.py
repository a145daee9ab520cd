"""A TLS server that completes its handshakes late, around the client's timeout.

It accepts at once, waits a random while, then does the server side of the handshake and
greets (IMAP or SMTP) and says nothing more. Clients with a timeout inside the delay range
are cancelled before, during and just after their handshake completes: the cancellation
paths a busy daemon goes through when a server answers slowly. It runs on its own event
loop in a thread, so the test's loop (its scraper) stays responsive.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

GREETINGS = {
    "imap": b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR] late but here\r\n",
    "smtp": b"220 late.example.test ESMTP late but here\r\n",
}


@dataclass
class LateTLS:
    ports: dict[str, int] = field(default_factory=dict)
    handshakes: int = 0  # completed server-side
    accepted: int = 0


class _Late(asyncio.Protocol):
    """Reads nothing until the delay is over (the ClientHello waits in the kernel), then
    lets `loop.start_tls` take the connection."""

    def __init__(self, state: LateTLS, greeting: bytes, ctx: ssl.SSLContext,
                 delay: tuple[float, float]) -> None:
        self.state, self.greeting, self.ctx, self.delay = state, greeting, ctx, delay
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.pause_reading()
        self.state.accepted += 1
        asyncio.get_running_loop().create_task(self._late(transport))

    async def _late(self, transport: asyncio.Transport) -> None:
        try:
            await asyncio.sleep(random.uniform(*self.delay))
            loop = asyncio.get_running_loop()
            tls = await loop.start_tls(transport, self, self.ctx, server_side=True,
                                       ssl_shutdown_timeout=1.0)
            assert tls is not None
            self.transport = tls
            self.state.handshakes += 1
            tls.write(self.greeting)
        except (OSError, ssl.SSLError, ConnectionError):
            transport.abort()

    def data_received(self, data: bytes) -> None:
        pass  # whatever the client says, the greeting was all


@contextlib.contextmanager
def late_tls_server(ctx: ssl.SSLContext, delay: tuple[float, float]) -> Iterator[LateTLS]:
    """An IMAP and an SMTP port (implicit TLS) whose handshakes take `delay` seconds."""
    state = LateTLS()
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    servers: list[asyncio.Server] = []

    async def start() -> None:
        for kind, greeting in GREETINGS.items():
            server = await loop.create_server(
                lambda greeting=greeting: _Late(state, greeting, ctx, delay),  # type: ignore[misc]
                "127.0.0.1", 0, backlog=4096)
            servers.append(server)
            state.ports[kind] = server.sockets[0].getsockname()[1]
        ready.set()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True, name="late-tls")
    thread.start()
    ready.wait(10)
    try:
        yield state
    finally:
        async def stop() -> None:
            for server in servers:
                server.close()
            tasks = [t for t in asyncio.all_tasks(loop) if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
