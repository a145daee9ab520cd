"""`--shard K/N`: which targets this daemon runs, by Prometheus's `hashmod` function.

A target (the account name of a login probe, the route or inbound watch name otherwise)
belongs to shard ``int.from_bytes(md5(name).digest()[8:16], "big") % N`` (the lower 64
bits of the MD5, as Prometheus's relabel action `hashmod` computes them), so N daemons
split a config exactly, and a Prometheus sharded with `hashmod` on the same name scrapes
each target's `/probe` from the daemon that owns it.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

ENV = "MAILCANARY_SHARD"
_SPEC = re.compile(r"^\s*(\d{1,6})\s*/\s*(\d{1,6})\s*$")


class ShardSpecError(ValueError):
    pass


def hashmod(name: str, modulus: int) -> int:
    digest = hashlib.md5(name.encode("utf-8")).digest()  # noqa: S324  (Prometheus's choice, not security)
    return int.from_bytes(digest[8:16], "big") % modulus


@dataclass(frozen=True)
class Shard:
    index: int
    count: int

    def owns(self, target: str) -> bool:
        return self.count == 1 or hashmod(target, self.count) == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(spec: str, *, source: str = "--shard") -> Shard:
    """'K/N' with 0 <= K < N; anything else is a ShardSpecError naming `source`."""
    match = _SPEC.match(spec)
    if match is None:
        raise ShardSpecError(f"{source}: expected K/N (e.g. 0/3), got {spec!r}")
    index, count = int(match.group(1)), int(match.group(2))
    if count < 1 or not 0 <= index < count:
        raise ShardSpecError(f"{source}: {spec!r} needs 0 <= K < N and N >= 1")
    return Shard(index, count)
