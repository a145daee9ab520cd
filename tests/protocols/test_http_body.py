"""HTTP answers are read to 1 MiB after decompression, in bounded memory, by every reader.

A real local HTTP server sends a gzip bomb (about 300 KiB inflating to 300 MiB, like the
299 KiB answer that cost 621 MiB in 0.x), a deflate bomb, an oversized plain body, an
encoding we cannot bound and a small honest gzip answer. Each reader (inbound trigger,
OAuth2 token endpoint, alert sink) fails the call its own way, and tracemalloc's peak stays
a few MiB.
"""

from __future__ import annotations

import asyncio
import gzip
import time
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from mailcanary.config import InboundTrigger
from mailcanary.daemon.alerts.sinks import SinkError, WebhookSink
from mailcanary.daemon.alerts.state import AlertEvent
from mailcanary.diagnosis import OAuthTokenError, TriggerFailed, classify
from mailcanary.probes.inbound.trigger import call_trigger
from mailcanary.protocols.httpbody import MAX_BODY, BodyTooLarge, capped_request
from mailcanary.protocols.oauth2.tokens import post_token_request
from mailcanary.result import ProbeContext

INFLATED = 300 * 1024 * 1024
PEAK_LIMIT = 16 * 1024 * 1024  # the 1 MiB body, a few network chunks, httpx's buffers


def _bomb(wbits: int) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, wbits)
    zeros = bytes(1024 * 1024)
    return b"".join([*(packer.compress(zeros) for _ in range(INFLATED // len(zeros))),
                     packer.flush()])


GZIP_BOMB = _bomb(31)
DEFLATE_BOMB = _bomb(15)
TOKEN = b'{"access_token": "at-small-1", "expires_in": 3600}'


def answers() -> dict[str, tuple[int, dict[str, str], bytes]]:
    json_type = {"Content-Type": "application/json"}
    return {
        "/gzip-bomb": (200, {**json_type, "Content-Encoding": "gzip"}, GZIP_BOMB),
        "/deflate-bomb": (200, {**json_type, "Content-Encoding": "deflate"}, DEFLATE_BOMB),
        "/big": (200, json_type, b"[" + b"1," * MAX_BODY + b"1]"),
        "/brotli": (200, {**json_type, "Content-Encoding": "br"}, b"\x0b\x02\x80hi\x03"),
        "/small-gzip": (200, {**json_type, "Content-Encoding": "gzip"}, gzip.compress(TOKEN)),
        "/exactly-1mib": (200, {"Content-Encoding": "gzip"}, gzip.compress(bytes(MAX_BODY))),
    }


async def _serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        path = head.split(" ", 2)[1]
        length = next((int(line.split(":", 1)[1]) for line in head.split("\r\n")
                       if line.lower().startswith("content-length:")), 0)
        await reader.readexactly(length)
        status, headers, body = answers()[path]
        lines = [f"HTTP/1.1 {status} OK", *(f"{k}: {v}" for k, v in headers.items())]
        if path != "/big":  # /big: no length, the body ends with the connection
            lines.append(f"Content-Length: {len(body)}")
        writer.write(("\r\n".join([*lines, "Connection: close"]) + "\r\n\r\n").encode())
        writer.write(body)
        await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


@pytest.fixture
async def server() -> AsyncIterator[str]:
    srv = await asyncio.start_server(_serve, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.close()


async def peak_of(call: Callable[[], Awaitable[Any]]) -> tuple[BaseException | None, int]:
    """(what the call raised, tracemalloc's peak of the call in bytes)."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        try:
            await call()
        except Exception as exc:  # returned for the test to look at
            return exc, tracemalloc.get_traced_memory()[1]
        return None, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("path", ["/gzip-bomb", "/deflate-bomb", "/big"])
async def test_helper_stops_at_the_limit_in_bounded_memory(server: str, path: str) -> None:
    async def call() -> None:
        async with httpx.AsyncClient() as client:
            await capped_request(client, "GET", server + path)
    exc, peak = await peak_of(call)
    assert isinstance(exc, BodyTooLarge), exc
    assert peak < PEAK_LIMIT, f"{path}: peak {peak / 2**20:.1f} MiB"


async def test_helper_reads_what_fits(server: str) -> None:
    async with httpx.AsyncClient() as client:
        small = await capped_request(client, "GET", server + "/small-gzip")
        exact = await capped_request(client, "GET", server + "/exactly-1mib")
        with pytest.raises(httpx.DecodingError, match="br"):
            await capped_request(client, "GET", server + "/brotli")
    assert small.json()["access_token"] == "at-small-1"
    assert exact.content == bytes(MAX_BODY)


async def test_a_slow_drip_ends_at_the_total_time() -> None:
    async def drip(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
        for _ in range(100):
            writer.write(b"x")
            await asyncio.sleep(0.2)  # each read is quick: only a total bound ends it
        writer.close()
    srv = await asyncio.start_server(drip, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{srv.sockets[0].getsockname()[1]}/"
    start = time.monotonic()
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            with pytest.raises(httpx.TimeoutException):
                await capped_request(client, "GET", url, total=1.0)
    finally:
        srv.close()
    assert time.monotonic() - start < 3


@pytest.mark.parametrize("path", ["/gzip-bomb", "/big"])
async def test_trigger_fails_as_trigger_failed(server: str, path: str) -> None:
    ctx = ProbeContext(probe="inbound", target="bomb")
    trigger = InboundTrigger(url=server + path)

    async def call() -> None:
        await call_trigger(ctx, trigger, address="a@example.test", token="t0k", limit=10)
    exc, peak = await peak_of(call)
    assert isinstance(exc, TriggerFailed), exc
    assert "larger than 1048576 bytes" in str(exc)
    fail = classify(exc, "trigger")
    assert (fail.cls, fail.reason) == ("trigger", "trigger_failed"), fail
    assert peak < PEAK_LIMIT, f"peak {peak / 2**20:.1f} MiB"


@pytest.mark.parametrize("path", ["/gzip-bomb", "/deflate-bomb", "/big"])
async def test_token_endpoint_fails_as_oauth_token_error(server: str, path: str) -> None:
    async def call() -> None:
        await post_token_request("acct", server + path, {"grant_type": "x"}, None, 10)
    exc, peak = await peak_of(call)
    assert isinstance(exc, OAuthTokenError), exc
    fail = classify(exc, "token")
    assert (fail.cls, fail.reason) == ("auth", "oauth_token_error"), fail
    assert peak < PEAK_LIMIT, f"peak {peak / 2**20:.1f} MiB"


async def test_token_endpoint_small_gzip_answer_works(server: str) -> None:
    data = await post_token_request("acct", server + "/small-gzip", {}, None, 10)
    assert data["access_token"] == "at-small-1"


def event() -> AlertEvent:
    now = time.time()
    return AlertEvent("firing", "imap", "acct", "auth", "auth_failed", "auth", "", "",
                      now, 3, now, now + 300)


@pytest.mark.parametrize("path", ["/gzip-bomb", "/big"])
async def test_sink_send_fails(server: str, path: str) -> None:
    sink = WebhookSink(server + path)

    async def call() -> None:
        await sink.send(event())
    try:
        exc, peak = await peak_of(call)
    finally:
        await sink.aclose()
    assert isinstance(exc, SinkError), exc
    assert "larger than" in str(exc)
    assert peak < PEAK_LIMIT, f"peak {peak / 2**20:.1f} MiB"
