"""The C heap of a long-running daemon: give large freed buffers back to the system.

glibc serves an allocation of 128 KiB or more with its own mmap and returns it on free,
but its threshold is dynamic: the first such buffer freed raises the threshold to its size
(up to 32 MiB), and every later one of that size is carved from the heap and kept there.
So one scrypt fingerprint in the backoff worker thread (16 MiB, daemon/backoff.py) stays
in the process for good, and a /metrics render's slices (20 MB at 10,000 accounts) grow the
heap instead of coming and going. A fixed threshold (which turns the dynamic one off) makes
every buffer of 1 MiB or more an mmap of its own, unmapped when freed; smaller ones, the
interpreter's own, are untouched. Other C libraries (musl) have no mallopt: nothing to do.
"""

from __future__ import annotations

import ctypes

M_MMAP_THRESHOLD = -3  # glibc's malloc.h
THRESHOLD = 1 << 20


def release_large_buffers() -> bool:
    """Fix glibc's mmap threshold at `THRESHOLD`; False where that is not glibc."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, THRESHOLD))
