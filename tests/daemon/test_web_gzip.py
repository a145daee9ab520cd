"""/metrics is kept and sent gzipped (Prometheus asks for it): at 10,000 accounts the
render is 23 MB of text, held for a scrape's whole transfer; gzipped a tenth of that. A
client that does not accept gzip gets the same text, unpacked slice by slice."""

from __future__ import annotations

import asyncio
import gzip

import pytest

from mailcanary.daemon.web import accepts_gzip
from tests.daemon.test_web_server import serving


async def _get(port: int, head: str, method: str = "GET") -> tuple[dict[str, str], bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"{method} /metrics HTTP/1.1\r\nHost: x\r\n{head}\r\n".encode())
    raw = await reader.read()
    writer.close()
    top, _, body = raw.partition(b"\r\n\r\n")
    lines = top.decode().split("\r\n")
    assert lines[0] == "HTTP/1.1 200 OK", lines[0]
    headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])}
    return headers, body


async def test_gzip_and_plain_clients_get_the_same_text() -> None:
    async with serving(targets=3000) as server:
        packed_head, packed = await _get(server.port, "Accept-Encoding: gzip\r\n")
        plain_head, plain = await _get(server.port, "")
        refused_head, refused = await _get(server.port, "Accept-Encoding: gzip;q=0\r\n")
        head_only, nothing = await _get(server.port, "Accept-Encoding: gzip\r\n", "HEAD")
    assert packed_head["content-encoding"] == "gzip"
    assert "content-encoding" not in plain_head and "content-encoding" not in refused_head
    assert packed_head["vary"] == plain_head["vary"] == "Accept-Encoding"
    assert int(packed_head["content-length"]) == len(packed)
    assert int(plain_head["content-length"]) == len(plain)
    assert gzip.decompress(packed) == plain == refused
    assert plain.count(b"mailcanary_probe_success{") == 3000
    assert len(packed) < len(plain) / 4
    assert head_only["content-length"] == packed_head["content-length"] and nothing == b""


async def test_the_render_is_kept_gzipped() -> None:
    """What stays in memory while scrapes read it is the packed text, not the text."""
    async with serving(targets=20000) as server:
        parts, length = await server.metrics.get()
    assert length > 2_000_000
    assert sum(map(len, parts)) < length / 4
    assert len(gzip.decompress(b"".join(parts))) == length


@pytest.mark.parametrize(("value", "gzip_ok"), [
    ("gzip", True), ("gzip, deflate, br", True), ("deflate, gzip;q=0.5", True),
    ("*", True), ("x-gzip", True), ("GZIP", True), ("gzip;q=0", False), ("gzip;q=0.0", False),
    ("deflate", False), ("", False), ("identity", False), ("gzip;q=bogus", False),
])
def test_accept_encoding(value: str, gzip_ok: bool) -> None:
    assert accepts_gzip(value) is gzip_ok
