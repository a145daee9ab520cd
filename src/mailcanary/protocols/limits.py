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

Waiting for a slot is not the server's answer time: while a probe waits, its own timeout
stands still (`waits_outside`: the runner hands over its `asyncio.timeout`, which is pushed
out by the wait). Otherwise, in an auth outage, the slow refusals (a provider's 2 s failure
delay each) would hold the slots and the healthy accounts of the same server would be
reported `timeout` for waiting behind them. The wait has its own bound (the runner's:
the interval minus the timeout, at least the timeout), so probes queued behind a dead
server still get a verdict: `SlotTimeout`, a timeout in phase connect whose text names the
server and the limit that was full.

A server's queue (`slots.ServerSlots`) is not FIFO alone: a probe whose job is in auth or
rate-limit backoff (`low_priority`) gets a freed slot only when no other probe waits, so
in an outage the healthy accounts are not served behind the refusals; and at most
max(64, 16 x cap) of the daemon's scheduled runs (`may_skip`) wait for one server: the
next is turned away (`SlotsFull`, a skipped run, not a failure), or, if it is a normal
one, the newest low waiter is. That bounds the memory of an outage (each waiting probe
holds ~12.6 KiB). `check`, `/probe`, the doctor and the sweep are never turned away.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import Iterator
from dataclasses import dataclass, field

from mailcanary.config import Config
from mailcanary.protocols.slots import ServerSlots, SlotsFull

__all__ = ["ConnectionLimits", "ServerSlots", "SlotHolder", "SlotTimeout", "SlotsFull",
           "acquire_for", "holding", "release_held", "waits_outside"]


class ConnectionLimits:
    """The slots: one global semaphore, one `ServerSlots` queue per host:port (created on
    first use)."""

    def __init__(
        self, total: int, per_server: int, caps: dict[str, int] | None = None
    ) -> None:
        self.total = total
        self.per_server = per_server
        self.caps = dict(caps or {})
        self.global_slots = asyncio.Semaphore(total)
        self.servers: dict[str, ServerSlots] = {}
        self.busy: dict[str, int] = {}  # key -> slots taken now

    def configure(self, per_server: int, caps: dict[str, int]) -> None:
        """A reload: a server's new cap applies once none of its slots is taken."""
        self.per_server = per_server
        self.caps = dict(caps)
        for key in list(self.servers):
            if not self.busy.get(key):
                del self.servers[key]

    def server(self, host: str, port: int) -> tuple[str, ServerSlots]:
        key = server_key(host, port)
        slots = self.servers.get(key)
        if slots is None:
            cap = self.caps.get(key, self.per_server)
            slots = self.servers[key] = ServerSlots(cap, key, self.setting(key, cap))
        return key, slots

    def setting(self, key: str, cap: int) -> str:
        """The setting that gave host:port (`key`) its cap of `cap` connections."""
        return f"its endpoint's `max_connections = {cap}`" if key in self.caps else \
            f"`[daemon] max_connections_per_server = {cap}`"

    def describe(self, key: str) -> str:
        """Which limit was full: host:port's (`key`) or the global one (`""`)."""
        if not key:
            return (f"all {self.total} connections allowed by `[daemon] max_concurrent_probes"
                    f" = {self.total}` were in use")
        cap = self.servers[key].cap if key in self.servers else self.per_server
        return f"all {cap} connections to it allowed by {self.setting(key, cap)} were in use"

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


class SlotTimeout(TimeoutError):
    """No slot within the wait's bound: a timeout in phase connect, saying which limit."""


@dataclass
class SlotHolder:
    """The slots one probe holds now; released on its next connection, its delivery wait
    or its end. `deadline`: the probe's timeout, stopped while it waits for a slot, which
    it may do for `budget` seconds in all (None: the wait counts in the timeout).
    `low_priority`: its job is in backoff (served after the others); `may_skip`: it may be
    turned away (`SlotsFull`) by a full queue, for its first connection only (once it has
    reached a server, e.g. a round trip's sent mail, it finishes what it started)."""

    limits: ConnectionLimits
    held: list[tuple[str, ServerSlots | asyncio.Semaphore]] = field(default_factory=list)
    deadline: asyncio.Timeout | None = None
    budget: float = 0.0
    low_priority: bool = False
    may_skip: bool = False

    async def acquire(self, host: str, port: int) -> float:
        """Take host:port's slot, then a global one; the seconds waited."""
        self.release()
        key, server = self.limits.server(host, port)
        deadline = self.deadline
        free = not server.locked() and not self.limits.global_slots.locked()
        if free or deadline is None or deadline.expired() or deadline.when() is None:
            start = asyncio.get_running_loop().time()
            await self._wait(key, server)  # free: returns without suspending
            return 0.0 if free else asyncio.get_running_loop().time() - start
        return await self._wait_outside(deadline, key, server)

    async def _wait_outside(self, deadline: asyncio.Timeout, key: str,
                            server: ServerSlots) -> float:
        """Wait with the probe's timeout stopped, at most `budget` seconds."""
        loop = asyncio.get_running_loop()
        when, start = deadline.when(), loop.time()
        assert when is not None
        deadline.reschedule(None)
        try:
            async with asyncio.timeout(max(self.budget, 0.0)):
                await self._wait(key, server)
        except TimeoutError:
            full = self.limits.describe(key if not self.held else "")
            raise SlotTimeout(
                f"waited {loop.time() - start:.1f} s for a connection slot to {key} in vain: "
                f"{full} (the server answers slowly or not at all, e.g. it refuses "
                "logins with a failure delay or does not answer)") from None
        finally:
            waited = loop.time() - start
            self.budget -= waited
            if not deadline.expired():
                deadline.reschedule(when + waited)
        return waited

    async def _wait(self, key: str, server: ServerSlots) -> None:
        await server.acquire(low=self.low_priority, may_skip=self.may_skip)
        self.may_skip = False
        self.limits.busy[key] = self.limits.busy.get(key, 0) + 1
        self.held = [(key, server)]
        await self.limits.global_slots.acquire()
        self.held.append(("", self.limits.global_slots))

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
def holding(limits: ConnectionLimits | None, *, low_priority: bool = False,
            may_skip: bool = False) -> Iterator[SlotHolder | None]:
    """Within this block (and tasks it starts) connections take slots of `limits`, with
    `low_priority` and `may_skip` (see `SlotHolder`)."""
    holder = None if limits is None else SlotHolder(limits, low_priority=low_priority,
                                                    may_skip=may_skip)
    token = _holder.set(holder)
    try:
        yield holder
    finally:
        _holder.reset(token)
        if holder is not None:
            holder.release()


async def acquire_for(host: str, port: int) -> float:
    """The current probe's slots for a connection to host:port; the seconds it waited."""
    holder = _holder.get()
    return 0.0 if holder is None else await holder.acquire(host, port)


@contextlib.contextmanager
def waits_outside(deadline: asyncio.Timeout, budget: float) -> Iterator[None]:
    """Within this block the current probe's slot waits stop `deadline` (its timeout),
    for at most `budget` seconds in all."""
    holder = _holder.get()
    if holder is None or budget <= 0:  # none: the wait counts in the timeout
        yield
        return
    holder.deadline, holder.budget = deadline, budget
    try:
        yield
    finally:
        holder.deadline = None


def release_held() -> None:
    """Give the current probe's slots back (e.g. before waiting minutes for a delivery)."""
    holder = _holder.get()
    if holder is not None:
        holder.release()
