"""A tiny asyncio HTTP/1.1 server for ``/metrics``, ``/healthz``, ``/probe`` and ``/sd``, with the
optional TLS and basic auth of an exporter-toolkit web.yml (config/webconfig.py).

It runs on the daemon's own event loop (no thread, no framework), so the renderer reads
the metric state without locks. One request per connection; anything but GET/HEAD on the
paths gets 404/405.

``/metrics`` is rendered at most once per `MAX_AGE` and in slices that give the loop back
between them (`exposition.render_chunks`); parallel scrapes share one render and its
bytes. Measured (bench/fleet.py): rendering in a thread instead let the GIL split the CPU
with the probes anyway, while slices keep every probe's wait below a few milliseconds.
The render is kept gzipped (as Prometheus asks for it): at 10,000 accounts 23 MB of text
held for a scrape's whole transfer was the largest thing in the daemon's memory; gzipped
it is a tenth of that, and a client that does not accept gzip gets it unpacked slice by
slice as it is sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import time
import zlib
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from mailcanary.config.webconfig import WebConfig
from mailcanary.daemon.exposition import render_chunks
from mailcanary.daemon.metrics import MetricsState

if TYPE_CHECKING:
    from mailcanary.daemon.webauth import BasicAuth

log = structlog.get_logger("mailcanary.daemon.web")

_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found",
            405: "Method Not Allowed", 503: "Service Unavailable"}
_MAX_HEADER_BYTES = 16384
TEXT = "text/plain; charset=utf-8"
MAX_AGE = 1.0  # seconds a rendered /metrics or /healthz is served again
HEADER_TIMEOUT = 10.0  # a request's headers must arrive within this long
IDLE = 30.0  # a TLS handshake, or each slice of an answer, within this long: else dropped
ProbeHandler = Callable[[str, Mapping[str, str]], Awaitable[tuple[int, str, bytes]]]
StatusHandler = Callable[[str, str], Awaitable[tuple[int, str, bytes]]]  # (path, query)
STATUS_PATHS = ("/status", "/status/status.css", "/status/status.js", "/status/favicon.svg",
                "/api/v1/status")
# The status page loads nothing but its own files, and no other site may frame it.
HTML_HEADERS = ("Content-Security-Policy: default-src 'none'; style-src 'self'; "
                "script-src 'self'; connect-src 'self'; img-src 'self'; form-action 'self'; "
                "frame-ancestors 'none'\r\nX-Content-Type-Options: nosniff\r\n"
                "Referrer-Policy: same-origin\r\n")
GZIP_LEVEL = 1  # text of repeated label sets: level 1 packs it ~10x, several times faster
GZIP_WBITS = 16 + zlib.MAX_WBITS  # the gzip format (Content-Encoding: gzip)
HealthFunc = Callable[[bool], tuple[bool, dict[str, Any]]]
SdHandler = Callable[[Mapping[str, str]], bytes]  # request headers -> /sd's JSON


@dataclass(frozen=True)
class Body:
    """An answer sent slice by slice: `length` bytes in all, with its own headers."""

    parts: Iterable[bytes]
    length: int
    headers: str = ""


class CachedExposition:
    """/metrics: rendered in slices and gzipped, at most once per `max_age`, shared by
    scrapers."""

    def __init__(self, state: MetricsState, registry: CollectorRegistry,
                 max_age: float = MAX_AGE) -> None:
        self.state = state
        self.registry = registry
        self.max_age = max_age
        self.body: list[bytes] = []  # the gzipped slices, never joined: one copy in memory
        self.length = 0  # of the text unpacked
        self.rendered_at = -1e9
        self.pending: asyncio.Task[tuple[list[bytes], int]] | None = None
        self.renders = 0

    async def get(self) -> tuple[list[bytes], int]:
        """(the gzipped slices, the length of the text they hold)."""
        if time.monotonic() - self.rendered_at < self.max_age:
            return self.body, self.length
        if self.pending is None:
            self.pending = asyncio.ensure_future(self._render())
        return await asyncio.shield(self.pending)

    async def answer(self, accept_encoding: str) -> Body:
        """The render gzipped if the client accepts that, else unpacked as it is sent."""
        parts, length = await self.get()
        if accepts_gzip(accept_encoding):
            return Body(parts, sum(map(len, parts)),
                        "Content-Encoding: gzip\r\nVary: Accept-Encoding\r\n")
        return Body(gunzipped(parts), length, "Vary: Accept-Encoding\r\n")

    async def _render(self) -> tuple[list[bytes], int]:
        try:
            packer = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, GZIP_WBITS)
            parts: list[bytes] = []
            length = 0
            for chunk in render_chunks(self.state):
                raw = chunk.encode()
                length += len(raw)
                parts.append(packer.compress(raw))
                await asyncio.sleep(0)
            raw = generate_latest(self.registry)
            length += len(raw)
            parts += [packer.compress(raw), packer.flush()]
            parts = [part for part in parts if part]
            self.body, self.length = parts, length
            self.rendered_at = time.monotonic()
            self.renders += 1
            # Not kept past its age: at 10,000 accounts a render is ~2.5 MB gzipped.
            asyncio.get_running_loop().call_later(self.max_age, self._expire, parts)
            return parts, length
        finally:
            self.pending = None

    def _expire(self, parts: list[bytes]) -> None:
        if self.body is parts:
            self.body, self.length = [], 0
            self.rendered_at = -1e9


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an Accept-Encoding value allows gzip (RFC 9110: `gzip` or `*`, q > 0)."""
    for item in accept_encoding.split(","):
        name, _, params = item.partition(";")
        if name.strip().lower() not in ("gzip", "x-gzip", "*"):
            continue
        q = params.strip().lower()
        try:
            return not q.startswith("q=") or float(q[2:]) > 0
        except ValueError:
            return False
    return False


def gunzipped(parts: list[bytes]) -> Iterator[bytes]:
    """The text of gzipped slices, a slice at a time (never all of it at once)."""
    unpacker = zlib.decompressobj(GZIP_WBITS)
    for part in parts:
        text = unpacker.decompress(part)
        if text:
            yield text
    tail = unpacker.flush()
    if tail:
        yield tail


class CachedHealth:
    """/healthz bytes per variant, built at most once per `max_age`: the full list of
    10,000 targets is 3.5 MB of JSON and ~170 ms of loop, not to be paid per request."""

    def __init__(self, health: HealthFunc, max_age: float = MAX_AGE) -> None:
        self.health = health
        self.max_age = max_age
        self.cache: dict[bool, tuple[float, int, bytes]] = {}
        self.renders = 0

    def get(self, summary: bool) -> tuple[int, bytes]:
        now = time.monotonic()
        hit = self.cache.get(summary)
        if hit is not None and now - hit[0] < self.max_age:
            return hit[1], hit[2]
        healthy, doc = self.health(summary)
        body = json.dumps(doc, indent=1).encode() + b"\n"
        self.renders += 1
        self.cache[summary] = (now, 200 if healthy else 503, body)
        return 200 if healthy else 503, body


class WebServer:
    """At most `max_connections` connections at once (more are closed at once), each with
    a deadline per step, so web clients can never take the descriptors or the memory the
    probes need: a client that stops reading is dropped after `IDLE` seconds, and with it
    its reference to a render."""

    def __init__(
        self,
        metrics: CachedExposition,
        health: HealthFunc,
        probe: ProbeHandler | None = None,
        *,
        max_connections: int = 64,
        web: WebConfig | None = None,
    ) -> None:
        self.metrics = metrics
        self.health = CachedHealth(health)
        self.probe = probe
        self.sd: SdHandler | None = None  # /sd, set with /probe (discovery of its targets)
        self.status: StatusHandler | None = None  # /status and /api/v1/status
        self.server: asyncio.Server | None = None
        self.active = 0
        self.refused = 0  # closed at once: every connection was answering
        self.evicted = 0  # idle ones closed to make room
        self.waiting: dict[asyncio.StreamWriter, None] = {}  # no request yet, oldest first
        self.configure(web or WebConfig(), max_connections)

    def configure(self, web: WebConfig, max_connections: int) -> None:
        """Applies to connections accepted from now on (start-up and SIGHUP)."""
        self.web = web
        self.auth: BasicAuth | None = None
        if web.users:  # bcrypt is imported only when basic auth is configured
            from mailcanary.daemon.webauth import BasicAuth  # noqa: PLC0415

            self.auth = BasicAuth(web.users)
        self.max_connections = max_connections

    async def start(self, host: str, port: int) -> None:
        self.server = await asyncio.start_server(self._handle, host, port, limit=_MAX_HEADER_BYTES)

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

    def _admit(self, writer: asyncio.StreamWriter) -> bool:
        """Room for one more? When full, the oldest connection that has not sent its
        request yet makes room (an idle flood cannot lock a scraper out); when every
        connection is answering, the new one is closed at once."""
        if self.active >= self.max_connections:
            if not self.waiting:
                self.refused += 1
                writer.transport.abort()  # at once: no buffer, no descriptor kept
                return False
            oldest = next(iter(self.waiting))
            del self.waiting[oldest]
            oldest.transport.abort()
            self.evicted += 1
        self.active += 1
        self.waiting[writer] = None
        return True

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self._admit(writer):
            return
        answered = False
        try:
            if self.web.tls is not None:
                async with asyncio.timeout(IDLE):
                    await writer.start_tls(self.web.tls, ssl_handshake_timeout=IDLE)
            await self._exchange(reader, writer)
            answered = True
        except (TimeoutError, ValueError, ConnectionError, ssl.SSLError,
                asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        except Exception:
            log.exception("http_handler_failed")
        finally:
            self.active -= 1
            self.waiting.pop(writer, None)
            if answered:
                writer.close()  # everything was sent: a clean FIN
            else:  # a graceful close would wait for a client that does not read, forever,
                writer.transport.abort()  # holding the descriptor and the send buffer

    async def _exchange(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async with asyncio.timeout(HEADER_TIMEOUT):
            head = await reader.readuntil(b"\r\n\r\n")
        self.waiting.pop(writer, None)  # a request came: no longer evictable
        method, path, headers = _parse_head(head)
        answer: bytes | Body = b"unauthorized\n"
        status, ctype = 401, TEXT
        if self.auth is None or await self.auth.allows(headers.get("authorization")):
            status, ctype, answer = await self._respond(method, path, headers)
        body = answer if isinstance(answer, Body) else Body([answer], len(answer))
        extra = 'WWW-Authenticate: Basic realm="mailcanary"\r\n' if status == 401 else ""
        if ctype.startswith("text/html"):
            extra += HTML_HEADERS
        writer.write(
            f"HTTP/1.1 {status} {_REASONS[status]}\r\nContent-Type: {ctype}\r\n"
            f"Content-Length: {body.length}\r\n{extra}{body.headers}Connection: close"
            "\r\n\r\n".encode()
        )
        if method != "HEAD":
            for part in body.parts:  # slice by slice: Python 3.11's transport copies its
                writer.write(part)  # whole send buffer on every partial send, so a
                async with asyncio.timeout(IDLE):  # 20 MB buffer would cost seconds of
                    await writer.drain()  # memmove; a client that stops reading: dropped
        async with asyncio.timeout(IDLE):
            await writer.drain()

    async def _respond(self, method: str, target: str,
                       headers: Mapping[str, str]) -> tuple[int, str, bytes | Body]:
        path, _, query = target.partition("?")
        if path not in ("/metrics", "/healthz", "/probe", "/sd", "/", *STATUS_PATHS):
            return 404, TEXT, b"not found: try /metrics or /healthz\n"
        if method not in ("GET", "HEAD"):
            return 405, TEXT, b"method not allowed\n"
        if path == "/metrics":
            return 200, CONTENT_TYPE_LATEST, await self.metrics.answer(
                headers.get("accept-encoding", ""))
        if path == "/probe":
            if self.probe is None:
                return 404, TEXT, b"/probe is turned off here ([daemon] probe_endpoint)\n"
            return await self.probe(query, headers)
        if path == "/sd":
            if self.sd is None:
                return 404, TEXT, b"/sd lists /probe targets; /probe is turned off here\n"
            return 200, "application/json", self.sd(headers)
        if path == "/healthz":
            status, body = self.health.get("summary" in query.split("&"))
            return status, "application/json", body
        if path in STATUS_PATHS:
            if self.status is None:
                return 404, TEXT, b"no status page here\n"
            return await self.status(path, query)
        page = (b"mailcanary: see /status, /metrics, /healthz and "
                b"/probe?probe=KIND&target=NAME\n")
        return 200, TEXT, page


def _parse_head(head: bytes) -> tuple[str, str, dict[str, str]]:
    method, target = _request_line(head)
    headers: dict[str, str] = {}
    for line in head.decode("latin-1").split("\r\n")[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return method, target, headers


def _request_line(head: bytes) -> tuple[str, str]:
    line = head.split(b"\r\n", 1)[0].decode("latin-1")
    parts = line.split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        raise ValueError("bad request line")
    return parts[0].upper(), parts[1]
