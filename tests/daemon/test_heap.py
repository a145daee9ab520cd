"""A freed large buffer goes back to the system (daemon/heap.py): without it, glibc keeps
the backoff worker's 16 MiB scrypt buffer in the heap for good after the second fingerprint."""

from __future__ import annotations

import json
import subprocess
import sys

from mailcanary.daemon.heap import release_large_buffers

_CHILD = """
import json, sys
from concurrent.futures import ThreadPoolExecutor
from mailcanary.credentials import fingerprint
from mailcanary.daemon.heap import release_large_buffers
def rss():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS:")) / 1024
fixed = release_large_buffers() if sys.argv[1] == "fixed" else None
pool = ThreadPoolExecutor(1)
pool.submit(fingerprint, "warm", b"s" * 16).result()
before = rss()
for i in range(4):
    pool.submit(fingerprint, f"secret {i}", b"s" * 16).result()
print(json.dumps({"fixed": fixed, "grew_mib": rss() - before}))
"""


def _grown(mode: str) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", _CHILD, mode], capture_output=True, text=True,
                         timeout=60, check=True)
    return dict(json.loads(out.stdout))


def test_scrypt_buffer_is_not_kept() -> None:
    fixed, default = _grown("fixed"), _grown("default")
    assert fixed["fixed"] is True
    assert fixed["grew_mib"] < 4, fixed
    # The control: glibc's dynamic threshold keeps the buffer (this is what the fix is for).
    assert default["grew_mib"] > 12, default


def test_it_can_be_called_again() -> None:
    assert release_large_buffers() is True
    assert release_large_buffers() is True
