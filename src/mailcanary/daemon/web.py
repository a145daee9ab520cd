"""A tiny asyncio HTTP/1.1 server for ``/metrics``, ``/healthz`` and ``/probe``.

It runs on the daemon's own event loop (no thread, no framework), so the renderer reads
the metric state without locks. One request per connection; anything but GET/HEAD on the
paths gets 404/405.

``/metrics`` is rendered at most once per `MAX_AGE` and in slices that give the loop back
between them (`exposition.render_chunks`); parallel scrapes share one render and its
bytes. Measured (bench/fleet.py): rendering in a thread instead let the GIL split the CPU
with the probes anyway, while slices keep every probe's wait below a few milliseconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from mailcanary.daemon.exposition import render_chunks
from mailcanary.daemon.metrics import MetricsState

log = structlog.get_logger("mailcanary.daemon.web")

_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
            503: "Service Unavailable"}
_MAX_HEADER_BYTES = 16384
MAX_AGE = 1.0  # seconds a rendered /metrics is served again
ProbeHandler = Callable[[str], Awaitable[tuple[int, str, bytes]]]


class CachedExposition:
    """/metrics bytes: rendered in slices, at most once per `max_age`, shared by scrapers."""

    def __init__(self, state: MetricsState, registry: CollectorRegistry,
                 max_age: float = MAX_AGE) -> None:
        self.state = state
        self.registry = registry
        self.max_age = max_age
        self.body: list[bytes] = []  # the slices, never joined: one copy in memory
        self.rendered_at = -1e9
        self.pending: asyncio.Task[list[bytes]] | None = None
        self.renders = 0

    async def get(self) -> list[bytes]:
        if time.monotonic() - self.rendered_at < self.max_age:
            return self.body
        if self.pending is None:
            self.pending = asyncio.ensure_future(self._render())
        return await asyncio.shield(self.pending)

    async def _render(self) -> list[bytes]:
        try:
            parts: list[bytes] = []
            for chunk in render_chunks(self.state):
                parts.append(chunk.encode())
                await asyncio.sleep(0)
            parts.append(generate_latest(self.registry))
            self.body = parts
            self.rendered_at = time.monotonic()
            self.renders += 1
            # Not kept past its age: at 10,000 accounts a render is ~20 MB.
            asyncio.get_running_loop().call_later(self.max_age, self._expire, parts)
            return parts
        finally:
            self.pending = None

    def _expire(self, parts: list[bytes]) -> None:
        if self.body is parts:
            self.body = []
            self.rendered_at = -1e9


class WebServer:
    def __init__(
        self,
        metrics: CachedExposition,
        health: Callable[[bool], tuple[bool, dict[str, Any]]],
        probe: ProbeHandler | None = None,
    ) -> None:
        self.metrics = metrics
        self.health = health
        self.probe = probe
        self.server: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> None:
        self.server = await asyncio.start_server(self._handle, host, port)

    @property
    def port(self) -> int:
        assert self.server is not None
        port: int = self.server.sockets[0].getsockname()[1]
        return port

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.server.wait_closed(), 1)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(10):
                head = await reader.readuntil(b"\r\n\r\n")
            if len(head) > _MAX_HEADER_BYTES:
                raise ValueError("headers too long")
            method, path = _request_line(head)
            status, ctype, answer = await self._respond(method, path)
            body = [answer] if isinstance(answer, bytes) else answer
            writer.write(
                f"HTTP/1.1 {status} {_REASONS[status]}\r\nContent-Type: {ctype}\r\n"
                f"Content-Length: {sum(map(len, body))}\r\nConnection: close\r\n\r\n".encode()
            )
            if method != "HEAD":
                for part in body:  # slice by slice: Python 3.11's transport copies its
                    writer.write(part)  # whole send buffer on every partial send, so a
                    await writer.drain()  # 20 MB buffer would cost seconds of memmove
            await writer.drain()
        except (TimeoutError, ValueError, ConnectionError, asyncio.IncompleteReadError,
                asyncio.LimitOverrunError):
            pass
        except Exception:
            log.exception("http_handler_failed")
        finally:
            writer.close()

    async def _respond(self, method: str, target: str) -> tuple[int, str, bytes | list[bytes]]:
        path, _, query = target.partition("?")
        if path not in ("/metrics", "/healthz", "/probe", "/"):
            return 404, "text/plain; charset=utf-8", b"not found: try /metrics or /healthz\n"
        if method not in ("GET", "HEAD"):
            return 405, "text/plain; charset=utf-8", b"method not allowed\n"
        if path == "/metrics":
            return 200, CONTENT_TYPE_LATEST, await self.metrics.get()
        if path == "/probe":
            if self.probe is None:
                return 404, "text/plain; charset=utf-8", b"no /probe here\n"
            return await self.probe(query)
        if path == "/healthz":
            healthy, doc = self.health("summary" in query.split("&"))
            body = json.dumps(doc, indent=1).encode() + b"\n"
            return (200 if healthy else 503), "application/json", body
        page = b"mailcanary: see /metrics, /healthz and /probe?probe=KIND&target=NAME\n"
        return 200, "text/plain; charset=utf-8", page


def _request_line(head: bytes) -> tuple[str, str]:
    line = head.split(b"\r\n", 1)[0].decode("latin-1")
    parts = line.split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        raise ValueError("bad request line")
    return parts[0].upper(), parts[1]
