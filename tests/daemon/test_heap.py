"""The daemon gives freed C-heap memory back to the system (daemon/heap.py). Without it,
glibc kept the backoff worker's 16 MiB scrypt buffer for good after the second fingerprint,
and an auth outage grew RSS by the heap's churn (4,000 accounts: +70 MiB, 44 of them free
pages that `malloc_trim` gave back)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from mailcanary.daemon.heap import release_large_buffers, trim
from tests.helpers.daemon_support import daemon_config, free_port, running_daemon
from tests.helpers.support import account, endpoint, password_file

_SCRYPT = """
import json, sys
from concurrent.futures import ThreadPoolExecutor
from mailcanary.credentials import fingerprint
from mailcanary.daemon.heap import release_large_buffers, resident_bytes
fixed = release_large_buffers() if sys.argv[1] == "fixed" else None
pool = ThreadPoolExecutor(1)
pool.submit(fingerprint, "warm", b"s" * 16).result()
before = resident_bytes()
for i in range(4):
    pool.submit(fingerprint, f"secret {i}", b"s" * 16).result()
print(json.dumps({"fixed": fixed, "grew_mib": (resident_bytes() - before) / 2**20}))
"""

# Fragments the heap as TLS buffers and large objects do: 60,000 blocks of 2 KiB (above
# pymalloc's 512 bytes: malloc's), every 50th and the newest kept, the rest freed.
_FRAGMENTED = """
import json, sys
from mailcanary.daemon.heap import resident_bytes, trim
blocks = [bytes(2048) + bytes([i % 7]) for i in range(60_000)]
kept = blocks[::50] + blocks[-1:]
del blocks
before = resident_bytes()
released = trim() if sys.argv[1] == "trim" else 0
print(json.dumps({"released_mib": (released or 0) / 2**20,
                  "dropped_mib": (before - resident_bytes()) / 2**20, "kept": len(kept)}))
"""


def _child(code: str, mode: str) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", code, mode], capture_output=True, text=True,
                         timeout=60, check=True)
    return dict(json.loads(out.stdout))


def test_scrypt_buffer_is_not_kept() -> None:
    fixed, default = _child(_SCRYPT, "fixed"), _child(_SCRYPT, "default")
    assert fixed["fixed"] is True
    assert fixed["grew_mib"] < 4, fixed
    # The control: glibc's dynamic threshold keeps the buffer (this is what the fix is for).
    assert default["grew_mib"] > 12, default


def test_trim_gives_free_heap_pages_back() -> None:
    trimmed, control = _child(_FRAGMENTED, "trim"), _child(_FRAGMENTED, "none")
    assert trimmed["released_mib"] > 60, trimmed  # ~115 MiB of free pages below the top
    assert trimmed["dropped_mib"] > 60, trimmed
    assert control["dropped_mib"] < 10, control  # the heap does not shrink on its own


def test_they_can_be_called_again() -> None:
    assert release_large_buffers() is True
    assert release_large_buffers() is True
    assert trim() is not None


async def test_daemon_trims_after_start_up(tmp_path: Path) -> None:
    """The daemon trims once it has started (the config's parse is freed by then) and on a
    timer after that; at debug level it says so."""
    port, hole = free_port(), free_port()
    pw = password_file(tmp_path)
    config = daemon_config(tmp_path, port, account(
        "alice", imap=endpoint("127.0.0.1", hole), password_file=pw))
    async with running_daemon(config, port, args=["--log-level", "debug"]) as daemon:
        async def trimmed() -> list[dict[str, object]]:
            return [e for e in daemon.logs() if e.get("event") == "heap_trimmed"]
        [first, *_] = await daemon.wait_for(trimmed, 15, "a heap_trimmed line")
        assert isinstance(first["released_bytes"], int) and first["released_bytes"] >= 0
        code, _ = await daemon.stop()
        assert code == 0


_TLS = """
import asyncio, json, ssl, sys
import trustme
from mailcanary.daemon.heap import TLS_READ_BUFFER, small_tls_read_buffers
if sys.argv[1] == "small":
    small_tls_read_buffers()
ca = trustme.CA()
cert = ca.issue_cert("localhost")
server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
cert.configure_cert(server_ctx)
client_ctx = ssl.create_default_context()
ca.configure_trust(client_ctx)
PAYLOAD = bytes(range(256)) * 4096  # 1 MiB: many reads through the smaller buffer

async def serve(reader, writer):
    writer.write(PAYLOAD)
    await writer.drain()
    writer.close()

async def main():
    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=server_ctx)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client_ctx,
                                                   server_hostname="localhost")
    buffer = len(writer.transport._ssl_protocol._ssl_buffer)
    got = await reader.read()
    writer.close()
    server.close()
    print(json.dumps({"buffer": buffer, "intact": got == PAYLOAD, "small": TLS_READ_BUFFER}))

asyncio.run(main())
"""


def test_tls_connections_read_through_a_small_buffer() -> None:
    """asyncio's 256 KiB read buffer per TLS connection became 32 KiB (an outage holds 32
    connections open while the heap churns), and a large answer still arrives intact."""
    small, default = _child(_TLS, "small"), _child(_TLS, "default")
    assert small["intact"] and default["intact"]
    assert small["buffer"] == small["small"] == 32 * 1024
    assert default["buffer"] == 256 * 1024  # the control: what asyncio does by itself
