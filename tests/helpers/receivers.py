"""A small asyncio HTTP server that records what alert sinks POST to it."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Receiver:
    port: int = 0
    fail_first: int = 0  # answer this many requests with HTTP 500 first
    delay: float = 0.0  # seconds before answering each request (a slow receiver)
    requests: list[tuple[str, Any]] = field(default_factory=list)  # (path, JSON body)
    answered: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def bodies(self, path: str = "/") -> list[Any]:
        return [body for p, body in self.requests if p == path]


async def _handle(rec: Receiver, reader: asyncio.StreamReader,
                  writer: asyncio.StreamWriter) -> None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        path = lines[0].split(" ")[1]
        length = 0
        for line in lines[1:]:
            key, _, val = line.partition(":")
            if key.strip().lower() == "content-length":
                length = int(val)
        body = await reader.readexactly(length)
        if rec.delay:
            await asyncio.sleep(rec.delay)
        rec.answered += 1
        if rec.answered <= rec.fail_first:
            writer.write(b"HTTP/1.1 500 Oops\r\nContent-Length: 4\r\nConnection: close\r\n\r\noops")
        else:
            rec.requests.append((path, json.loads(body)))
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError, ValueError):
        pass
    finally:
        writer.close()


@contextlib.asynccontextmanager
async def receiver(fail_first: int = 0, delay: float = 0.0) -> AsyncIterator[Receiver]:
    rec = Receiver(fail_first=fail_first, delay=delay)
    server = await asyncio.start_server(
        lambda r, w: _handle(rec, r, w), "127.0.0.1", 0
    )
    rec.port = server.sockets[0].getsockname()[1]
    try:
        yield rec
    finally:
        server.close()
