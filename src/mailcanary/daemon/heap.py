"""The C heap of a long-running daemon: give freed memory back to the system.

Two habits of glibc's malloc, and one of asyncio's, made the daemon's RSS grow with churn
rather than with what it keeps (measured: an auth outage of 2,000 of 4,000 accounts took
RSS from 123 to 193 MiB, of which `malloc_trim` gave 44 MiB straight back; before the
outage, 30 MiB; docs/scaling.md has the figures after each fix):

- Its heap shrinks only from the top: TLS buffers (asyncio's 256 KiB per connection,
  OpenSSL's), large Python objects and the start-up's config parse come and go, and one
  live block near the top keeps every free page below it. `trim_periodically` calls
  `malloc_trim(0)` (which also releases free pages in the middle of the heap) after
  start-up and every `TRIM_EVERY` seconds: 4-10 ms of the loop each time.
- Its mmap threshold is dynamic: the first large buffer freed raises the threshold to its
  size (up to 32 MiB), and later ones of that size are carved from the heap and kept. So
  one scrypt fingerprint in the backoff worker thread (16 MiB, daemon/backoff.py) stayed
  in the process for good. `release_large_buffers` fixes the threshold at 1 MiB (which
  turns the dynamic one off): every buffer of 1 MiB or more is an mmap of its own,
  unmapped when freed.
- asyncio reads TLS into a 256 KiB buffer per connection (`SSLProtocol.max_size`), zeroed
  when the connection is made: in an auth outage 32 connections are held 2 s each while
  many small blocks come and go beside them, and the freed 256 KiB chunks get split for
  small ones, so each new connection extends the heap by another 256 KiB.
  `small_tls_read_buffers` makes it 32 KiB (two TLS records; a probe's answers are a few
  KiB), which also spares the zeroing of 224 KiB per connection.

Other C libraries (musl) have neither glibc call: nothing is done there but the buffer.
"""

from __future__ import annotations

import asyncio
import asyncio.sslproto
import ctypes
import os
import time
from collections.abc import Callable
from typing import Any

import structlog

log = structlog.get_logger("mailcanary.daemon.heap")

M_MMAP_THRESHOLD = -3  # glibc's malloc.h
THRESHOLD = 1 << 20
TRIM_EVERY = 10.0  # seconds
TLS_READ_BUFFER = 32 * 1024


def _libc_function(name: str, *argtypes: Any) -> Callable[..., int] | None:
    """glibc's `name` with its C argument types; None where it does not exist."""
    try:
        func = getattr(ctypes.CDLL(None), name)
    except (OSError, AttributeError):
        return None
    func.argtypes, func.restype = list(argtypes), ctypes.c_int
    return func  # type: ignore[no-any-return]


def release_large_buffers() -> bool:
    """Fix glibc's mmap threshold at `THRESHOLD`; False where that is not glibc."""
    mallopt = _libc_function("mallopt", ctypes.c_int, ctypes.c_int)
    if mallopt is None:
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, THRESHOLD))


def small_tls_read_buffers() -> None:
    """asyncio's TLS connections of this process read into `TLS_READ_BUFFER` bytes."""
    asyncio.sslproto.SSLProtocol.max_size = TLS_READ_BUFFER


def resident_bytes() -> int:
    """This process's RSS (0 where /proc is missing)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def trim() -> int | None:
    """Give the heaps' free pages back; the RSS released (bytes), None where not glibc."""
    malloc_trim = _libc_function("malloc_trim", ctypes.c_size_t)
    if malloc_trim is None:
        return None
    before = resident_bytes()
    malloc_trim(0)
    return max(0, before - resident_bytes())


async def trim_periodically(every: float = TRIM_EVERY) -> None:
    """`trim` now (after start-up: the config's parse is freed) and every `every` s."""
    while True:
        start = time.perf_counter()
        released = trim()
        if released is None:
            return
        log.debug("heap_trimmed", released_bytes=released,
                  seconds=round(time.perf_counter() - start, 4))
        await asyncio.sleep(every)
