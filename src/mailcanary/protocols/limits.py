"""Connection slots: how many connections the daemon *establishes* at once, per server and
in total, without one server's queue ever holding what another server needs.

What a slot bounds: one connection being opened and used for its short exchange (dns,
connect, TLS, greeting, login, the probe's few commands). A probe waits for its server's
slot first and only then takes a global one, so probes queued behind a dead or busy server
hold nothing global. A probe holds at most one connection's slots at a time: opening its
next connection (a round trip's SMTP leg after its IMAP login) gives the previous ones
back, and the delivery wait gives them back too (`release_held`), because an idling
connection costs the server a file descriptor, not a login.

The daemon installs a `SlotHolder` per probe in a context variable (`holding`); the
transport calls `acquire_for` before it connects. `check` takes the same slots (its runtime's
`ConnectionLimits`), and so do the settings doctor's candidate connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import Iterator
from dataclasses import dataclass, field

from mailcanary.config import Config


class ConnectionLimits:
    """The semaphores: one global, one per host:port (created on first use)."""

    def __init__(
        self, total: int, per_server: int, caps: dict[str, int] | None = None
    ) -> None:
        self.total = total
        self.per_server = per_server
        self.caps = dict(caps or {})
        self.global_slots = asyncio.Semaphore(total)
        self.servers: dict[str, tuple[asyncio.Semaphore, int]] = {}  # key -> (sem, its cap)
        self.busy: dict[str, int] = {}  # key -> slots taken now

    def configure(self, per_server: int, caps: dict[str, int]) -> None:
        """A reload: a server's new cap applies once none of its slots is taken."""
        self.per_server = per_server
        self.caps = dict(caps)
        for key in list(self.servers):
            if not self.busy.get(key):
                del self.servers[key]

    def server(self, host: str, port: int) -> tuple[str, asyncio.Semaphore]:
        key = server_key(host, port)
        entry = self.servers.get(key)
        if entry is None:
            cap = self.caps.get(key, self.per_server)
            entry = self.servers[key] = (asyncio.Semaphore(cap), cap)
        return key, entry[0]

    @classmethod
    def for_config(cls, config: Config) -> ConnectionLimits:
        daemon = config.daemon
        return cls(daemon.max_concurrent_probes, daemon.max_connections_per_server,
                   server_caps(config))


def server_key(host: str, port: int) -> str:
    return f"{host.lower().strip('[]')}:{port}"


def server_caps(config: Config) -> dict[str, int]:
    """host:port -> an endpoint's own `max_connections` (the smallest, if several)."""
    caps: dict[str, int] = {}
    for account in config.accounts:
        for name in ("imap", "smtp", "pop3"):
            ep = getattr(account, name, None)
            cap = getattr(ep, "max_connections", None)
            if ep is not None and cap is not None:
                key = server_key(ep.host, ep.effective_port)
                caps[key] = min(cap, caps.get(key, cap))
    return caps


@dataclass
class SlotHolder:
    """The slots one probe holds now; released on its next connection, its delivery wait
    or its end."""

    limits: ConnectionLimits
    held: list[tuple[str, asyncio.Semaphore]] = field(default_factory=list)

    async def acquire(self, host: str, port: int) -> None:
        self.release()
        limits = self.limits
        key, server = limits.server(host, port)
        await server.acquire()
        limits.busy[key] = limits.busy.get(key, 0) + 1
        self.held = [(key, server)]
        await limits.global_slots.acquire()
        self.held.append(("", limits.global_slots))

    def release(self) -> None:
        held, self.held = self.held, []
        for key, sem in held:
            sem.release()
            if key:
                self.limits.busy[key] -= 1


_holder: contextvars.ContextVar[SlotHolder | None] = contextvars.ContextVar(
    "mailcanary_slot_holder", default=None
)


@contextlib.contextmanager
def holding(limits: ConnectionLimits | None) -> Iterator[SlotHolder | None]:
    """Within this block (and tasks it starts) connections take slots of `limits`."""
    holder = SlotHolder(limits) if limits is not None else None
    token = _holder.set(holder)
    try:
        yield holder
    finally:
        _holder.reset(token)
        if holder is not None:
            holder.release()


async def acquire_for(host: str, port: int) -> None:
    holder = _holder.get()
    if holder is not None:
        await holder.acquire(host, port)


def release_held() -> None:
    """Give the current probe's slots back (e.g. before waiting minutes for a delivery)."""
    holder = _holder.get()
    if holder is not None:
        holder.release()
