"""A tiny asyncio HTTP/1.1 server for ``/metrics`` and ``/healthz``.

It runs on the daemon's own event loop (no thread, no framework), so the collector reads
the metric state without locks. One request per connection; anything but GET/HEAD on the
two paths gets 404/405.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import Any

import structlog
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

log = structlog.get_logger("mailcanary.daemon.web")

_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
            503: "Service Unavailable"}
_MAX_HEADER_BYTES = 16384


class WebServer:
    def __init__(
        self,
        registry: CollectorRegistry,
        health: Callable[[], tuple[bool, dict[str, Any]]],
    ) -> None:
        self.registry = registry
        self.health = health
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
            status, ctype, body = self._respond(method, path)
            writer.write(
                f"HTTP/1.1 {status} {_REASONS[status]}\r\nContent-Type: {ctype}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            )
            if method != "HEAD":
                writer.write(body)
            await writer.drain()
        except (TimeoutError, ValueError, ConnectionError, asyncio.IncompleteReadError,
                asyncio.LimitOverrunError):
            pass
        except Exception:
            log.exception("http_handler_failed")
        finally:
            writer.close()

    def _respond(self, method: str, path: str) -> tuple[int, str, bytes]:
        path = path.split("?", 1)[0]
        if path not in ("/metrics", "/healthz", "/"):
            return 404, "text/plain; charset=utf-8", b"not found: try /metrics or /healthz\n"
        if method not in ("GET", "HEAD"):
            return 405, "text/plain; charset=utf-8", b"method not allowed\n"
        if path == "/metrics":
            return 200, CONTENT_TYPE_LATEST, generate_latest(self.registry)
        if path == "/healthz":
            healthy, doc = self.health()
            body = json.dumps(doc, indent=1).encode() + b"\n"
            return (200 if healthy else 503), "application/json", body
        page = b"mailcanary: see /metrics and /healthz\n"
        return 200, "text/plain; charset=utf-8", page


def _request_line(head: bytes) -> tuple[str, str]:
    line = head.split(b"\r\n", 1)[0].decode("latin-1")
    parts = line.split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        raise ValueError("bad request line")
    return parts[0].upper(), parts[1]
