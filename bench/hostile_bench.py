"""Hostile input: parse time of crafted mails and peak memory of a gzip-bomb answer, each
against the 0.x code in the same run.

    python bench/hostile_bench.py [--old-max 65536]

Parse: the crafted mails of tests/helpers/hostile_mail.py at 60 KB and at the 256 KiB fetch
limit through `readable` and through the 0.x regexes + recursive email parser (kept below
as the baseline; sizes above --old-max are skipped for it: 256 KiB of `<` takes about a
minute). Memory: a child process reads a gzip answer (300 KiB inflating to 300 MiB) from a
local server the 0.x way (httpx reads and decodes the whole body) and through
`capped_request`; each reports its peak RSS growth (ru_maxrss). Prints JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import html
import json
import re
import resource
import subprocess
import sys
import threading
import time
import zlib
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from tests.helpers import hostile_mail  # noqa: E402

from mailcanary.probes.inbound.finder import FETCH_LIMIT  # noqa: E402
from mailcanary.probes.inbound.message import Unparseable, readable  # noqa: E402

_SKIP_HTML = re.compile(r"<(script|style|head)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]*>")
_BREAK = re.compile(r"<\s*(br|/p|/div|/tr|/li|/h\d)\b[^>]*>", re.IGNORECASE)


def old_readable(raw: bytes) -> str:
    """0.x: the whole tree by the email package, HTML reduced by regexes."""
    bodies = []
    for part in BytesParser().parsebytes(raw).walk():
        if part.get_content_maintype() != "text":
            continue
        payload = part.get_payload(decode=True)
        text = (payload if isinstance(payload, bytes) else b"").decode("utf-8", "replace")
        if part.get_content_subtype() == "html":
            text = html.unescape(_TAG.sub(" ", _BREAK.sub("\n", _SKIP_HTML.sub(" ", text))))
        bodies.append(text)
    return "\n".join(bodies)


def timed(parse: Any, raw: bytes) -> dict[str, Any]:
    start = time.perf_counter()
    try:
        parse(raw)
        outcome = "parsed"
    except Unparseable as exc:
        outcome = f"skipped: {exc}"
    except RecursionError:
        outcome = "RecursionError"
    return {"seconds": round(time.perf_counter() - start, 4), "outcome": outcome}


def parse_figures(old_max: int) -> list[dict[str, Any]]:
    shapes = {
        "html of <": hostile_mail.html_of,
        "html of '<a '": lambda n: hostile_mail.html_of(n, "<a "),
        "nested multiparts": hostile_mail.nested,
        "many parts": hostile_mail.many_parts,
        "bad encodings": hostile_mail.bad_encodings,
        "header of semicolons": hostile_mail.header_bomb,
    }
    readable(hostile_mail.html_of(4096))  # imports
    rows = []
    for name, build in shapes.items():
        for size in (60_000, 178_000, FETCH_LIMIT):
            raw = build(size)[:FETCH_LIMIT]
            row = {"mail": name, "bytes": len(raw), "new": timed(readable, raw)}
            if size <= old_max:
                row["old"] = timed(old_readable, raw)
            rows.append(row)
    return rows


def _bomb() -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = bytes(1024 * 1024)
    return b"".join([*(packer.compress(zeros) for _ in range(300)), packer.flush()])


def serve_bomb() -> tuple[ThreadingHTTPServer, int]:
    body = _bomb()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, len(body)


async def _child(kind: str, url: str) -> str:
    import httpx  # noqa: PLC0415

    from mailcanary.protocols.httpbody import capped_request  # noqa: PLC0415

    async with httpx.AsyncClient(timeout=60) as client:
        try:
            if kind == "old":
                response = await client.post(url, data={"grant_type": "x"})
                return f"read {len(response.content)} bytes"
            capped = await capped_request(client, "POST", url, data={"grant_type": "x"})
            return f"read {len(capped.content)} bytes"
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}"


def memory_child(kind: str, url: str) -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    outcome = asyncio.run(_child(kind, url))
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    print(json.dumps({"peak_rss_growth_mib": round(grown / 1024, 1), "outcome": outcome}))


def memory_figures() -> dict[str, Any]:
    server, size = serve_bomb()
    url = f"http://127.0.0.1:{server.server_port}/token"
    out: dict[str, Any] = {"gzip_answer_bytes": size, "inflated_bytes": 300 * 2**20}
    try:
        for kind in ("old", "new"):
            done = subprocess.run([sys.executable, __file__, "--memory-child", kind, url],
                                  capture_output=True, text=True, check=True, timeout=300)
            out[kind] = json.loads(done.stdout)
    finally:
        server.shutdown()
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--old-max", type=int, default=65536)
    parser.add_argument("--memory-child", nargs=2, metavar=("KIND", "URL"))
    args = parser.parse_args()
    if args.memory_child:
        memory_child(*args.memory_child)
        return
    print(json.dumps({"parse": parse_figures(args.old_max), "memory": memory_figures()},
                     indent=1))


if __name__ == "__main__":
    main()
