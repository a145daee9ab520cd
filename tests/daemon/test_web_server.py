"""The web server under hostile clients, in-process on real sockets: a connection limit
that idle floods cannot use to lock scrapers out, a client that stops reading dropped with
its render, /healthz built at most once a second, bcrypt verdicts cached."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import bcrypt
import httpx
import pytest
from prometheus_client import CollectorRegistry

from mailcanary.config.webconfig import WebConfig
from mailcanary.daemon import web
from mailcanary.daemon.metrics import MetricsState
from mailcanary.daemon.web import CachedExposition, WebServer
from mailcanary.daemon.webauth import BasicAuth


def big_state(targets: int) -> MetricsState:
    state = MetricsState()
    for i in range(targets):
        state.ensure("imap", f"target-{i:05d}", ("invalid_credentials", "timeout"))
    return state


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


def healthy(summary: bool) -> tuple[bool, dict[str, Any]]:
    return True, {"status": "ok", "summary": summary}


@contextlib.asynccontextmanager
async def serving(targets: int = 10, **kwargs: Any) -> AsyncIterator[WebServer]:
    server = WebServer(CachedExposition(big_state(targets), CollectorRegistry()), healthy,
                       **kwargs)
    await server.start("127.0.0.1", 0)
    try:
        yield server
    finally:
        await server.stop()


async def idle_connection(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port)


async def closed_by_server(reader: asyncio.StreamReader, within: float) -> bool:
    try:
        async with asyncio.timeout(within):
            return await reader.read(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


async def test_idle_flood_is_bounded_and_cannot_lock_a_scraper_out() -> None:
    async with serving(max_connections=8) as server, httpx.AsyncClient(timeout=5) as client:
        idle = [await idle_connection(server.port) for _ in range(40)]
        await asyncio.sleep(0.2)
        assert server.active <= 8
        assert server.evicted >= 32  # the oldest idle ones made room
        # The flood is still open on our side; a scraper gets its answer at once.
        started = time.monotonic()
        response = await client.get(f"http://127.0.0.1:{server.port}/metrics")
        assert response.status_code == 200
        assert "mailcanary_probe_success" in response.text
        assert time.monotonic() - started < 1.0
        closed = [await closed_by_server(r, 0.5) for r, _ in idle[:32]]
        assert all(closed)
        for _, writer in idle:
            writer.close()


async def test_client_that_stops_reading_is_dropped_with_its_render(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every slot busy writing to clients that never read: more connections are closed
    at once; after IDLE seconds without progress the readers are dropped, the slots and
    the ~MBs of render they held come free."""
    monkeypatch.setattr(web, "IDLE", 1.0)
    async with serving(targets=20000, max_connections=3) as server:
        stuck = []
        for _ in range(3):
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.connect(("127.0.0.1", server.port))
            reader, writer = await asyncio.open_connection(sock=sock)
            writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            stuck.append((reader, writer))
        await asyncio.sleep(0.5)
        assert server.active == 3 and not server.waiting
        late_reader, late_writer = await idle_connection(server.port)
        assert await closed_by_server(late_reader, 0.5)  # closed at once: all were busy
        assert server.refused == 1
        with_stuck = open_descriptors()
        started = time.monotonic()
        while server.active:
            assert time.monotonic() - started < 5, "a non-reading client was kept"
            await asyncio.sleep(0.1)
        print(f"non-reading clients dropped after {time.monotonic() - started + 0.5:.1f} s")
        await asyncio.sleep(0.1)
        # The server's three sockets are gone (a graceful close would keep them open,
        # their send buffers full, for as long as the clients do not read).
        assert open_descriptors() == with_stuck - 3
        await asyncio.sleep(1.2)  # the render's own max age
        assert server.metrics.body == []
        for _, writer in [*stuck, (late_reader, late_writer)]:
            writer.close()


async def test_healthz_is_built_at_most_once_a_second() -> None:
    calls = 0

    def counting(summary: bool) -> tuple[bool, dict[str, Any]]:
        nonlocal calls
        calls += 1
        return True, {"status": "ok", "targets": [{"n": i} for i in range(1000)]}

    server = WebServer(CachedExposition(MetricsState(), CollectorRegistry()), counting)
    await server.start("127.0.0.1", 0)
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            url = f"http://127.0.0.1:{server.port}/healthz"
            answers = await asyncio.gather(*(client.get(url) for _ in range(30)))
            assert {a.status_code for a in answers} == {200}
            assert calls == 1
            await asyncio.sleep(web.MAX_AGE + 0.1)
            assert (await client.get(url)).status_code == 200
            assert calls == 2
    finally:
        await server.stop()


async def test_basic_auth_checks_bcrypt_once_per_credentials() -> None:
    password = "s3cret-Pass-for-web"
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=10))
    users = {"prom": hashed}
    async with serving(web=WebConfig(users=users)) as server, \
            httpx.AsyncClient(timeout=5) as client:
        url = f"http://127.0.0.1:{server.port}/metrics"
        assert server.auth is not None
        for _ in range(20):
            assert (await client.get(url, auth=("prom", password))).status_code == 200
        assert server.auth.checks == 1
        started = time.monotonic()
        for _ in range(20):
            assert (await client.get(url, auth=("prom", password))).status_code == 200
        print(f"20 authenticated scrapes: {time.monotonic() - started:.3f} s")
        denied = await client.get(url, auth=("prom", "wrong"))
        assert denied.status_code == 401
        assert denied.headers["www-authenticate"].startswith("Basic")
        assert (await client.get(url)).status_code == 401
        assert (await client.get(url, auth=("nobody", password))).status_code == 401


async def test_auth_cache_keeps_no_password() -> None:
    password = "An0ther-Secret-Value"
    auth = BasicAuth({"prom": bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4))})
    blob = base64.b64encode(f"prom:{password}".encode()).decode()
    assert await auth.allows(f"Basic {blob}")
    assert not await auth.allows("Basic !!notbase64")
    assert not await auth.allows(f"Bearer {blob}")
    dump = repr(vars(auth)).encode()
    assert password.encode() not in dump and blob.encode() not in dump
