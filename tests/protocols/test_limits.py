"""Connection slots (per server first, then global; given back on the next connection and
for a delivery wait) and the coalescing DNS cache."""

from __future__ import annotations

import asyncio
import socket

import pytest

from mailcanary.protocols import resolver as resolver_mod
from mailcanary.protocols.limits import (
    ConnectionLimits,
    SlotTimeout,
    acquire_for,
    holding,
    release_held,
    waits_outside,
)
from mailcanary.protocols.resolver import Resolver


async def test_waiting_for_a_busy_server_holds_no_global_slot() -> None:
    limits = ConnectionLimits(total=2, per_server=1)
    dead_started = asyncio.Event()
    hold = asyncio.Event()

    async def on_dead_server() -> None:
        with holding(limits):
            await acquire_for("dead.test", 993)
            dead_started.set()
            await hold.wait()  # a hanging connection

    hanging = asyncio.create_task(on_dead_server())
    await dead_started.wait()
    # Ten more probes of the dead server queue for its slot...
    queued = [asyncio.create_task(on_dead_server()) for _ in range(10)]
    await asyncio.sleep(0.01)
    assert limits.global_slots._value == 1  # ...and hold no global slot meanwhile

    async def healthy() -> None:
        with holding(limits):
            await acquire_for("ok.test", 993)

    await asyncio.wait_for(healthy(), 0.5)  # not delayed by the queue
    hold.set()
    await asyncio.gather(hanging, *queued)
    assert limits.global_slots._value == 2
    assert all(v == 0 for v in limits.busy.values())


async def test_next_connection_and_delivery_wait_give_slots_back() -> None:
    limits = ConnectionLimits(total=8, per_server=1, caps={"smtp.test:587": 1})
    with holding(limits):
        await acquire_for("imap.test", 993)
        assert limits.busy == {"imap.test:993": 1}
        await acquire_for("SMTP.test", 587)  # the round trip's second leg
        assert limits.busy == {"imap.test:993": 0, "smtp.test:587": 1}
        release_held()  # the delivery wait
        assert limits.busy["smtp.test:587"] == 0
        assert limits.global_slots._value == 8
        # Meanwhile another probe of the same server gets its slot at once.
        with holding(limits):
            await asyncio.wait_for(acquire_for("smtp.test", 587), 0.5)
    assert limits.global_slots._value == 8


async def hold_slot(limits: ConnectionLimits, host: str, seconds: float) -> None:
    with holding(limits):
        await acquire_for(host, 1)
        await asyncio.sleep(seconds)


async def test_a_slot_wait_stops_the_probe_timeout() -> None:
    """A 0.3 s wait for the only global slot under a 0.2 s timeout: no timeout, and the
    deadline is pushed out by exactly the wait (the probe keeps its whole 0.2 s)."""
    limits = ConnectionLimits(total=1, per_server=4)
    other = asyncio.create_task(hold_slot(limits, "a.test", 0.3))
    await asyncio.sleep(0)
    loop = asyncio.get_running_loop()
    with holding(limits):
        async with asyncio.timeout(0.2) as deadline:
            with waits_outside(deadline, 1.0):
                start = loop.time()
                waited = await acquire_for("b.test", 1)
                assert 0.25 < waited < 0.5
                when = deadline.when()
                assert when is not None and abs(when - (start + waited + 0.2)) < 0.02
                assert await acquire_for("b.test", 1) == 0.0  # free: no wait
    await other


@pytest.mark.parametrize(("total", "per_server", "caps", "names"), [
    (1, 4, {}, "`[daemon] max_concurrent_probes = 1`"),
    (8, 1, {}, "`[daemon] max_connections_per_server = 1`"),
    (8, 4, {"a.test:1": 1}, "its endpoint's `max_connections = 1`"),
])
async def test_a_slot_wait_has_its_own_bound_and_names_the_full_limit(
    total: int, per_server: int, caps: dict[str, int], names: str,
) -> None:
    """Behind a dead server's connection the wait ends after its budget (0.2 s in all,
    across the probe's connections), as a timeout that says which limit was full; the
    probe's own timeout (5 s) is still running afterwards and no slot stays taken."""
    limits = ConnectionLimits(total=total, per_server=per_server, caps=caps)
    other = asyncio.create_task(hold_slot(limits, "a.test", 3600))
    await asyncio.sleep(0)
    loop = asyncio.get_running_loop()
    with holding(limits):
        async with asyncio.timeout(5) as deadline:
            with waits_outside(deadline, 0.2):
                start = loop.time()
                with pytest.raises(SlotTimeout, match=r"waited 0\.2 s for a connection "
                                   r"slot to a\.test:1 in vain") as caught:
                    await acquire_for("a.test", 1)
                assert 0.2 <= loop.time() - start < 0.4
                assert names in str(caught.value)
                assert not deadline.expired()
                with pytest.raises(SlotTimeout):  # the budget is spent: at once
                    await asyncio.wait_for(acquire_for("a.test", 1), 0.05)
    assert all(v == 0 for k, v in limits.busy.items() if k != "a.test:1")
    assert limits.busy["a.test:1"] == 1  # the dead server's own connection only
    other.cancel()


async def test_no_holder_means_no_limits() -> None:
    await asyncio.wait_for(acquire_for("anything.test", 1), 0.1)  # `check`: no daemon


async def test_endpoint_cap_wins_over_default() -> None:
    limits = ConnectionLimits(total=8, per_server=4, caps={"small.test:993": 1})
    _, small = limits.server("small.test", 993)
    _, other = limits.server("other.test", 993)
    assert small.cap == 1 and other.cap == 4


async def test_resolver_coalesces_and_caches(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = 0
    loop = asyncio.get_running_loop()
    real = loop.getaddrinfo

    async def slow(*args: object, **kwargs: object) -> object:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        return await real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(loop, "getaddrinfo", slow)
    res = Resolver(ttl=30)
    answers = await asyncio.gather(*(res.resolve("localhost", 993) for _ in range(200)))
    assert calls == 1 and res.lookups == 1
    assert all(a == answers[0] for a in answers) and answers[0]
    await res.resolve("LOCALHOST", 993)
    assert calls == 1  # cached
    res.cache.clear()
    await res.resolve("localhost", 993)
    assert calls == 2


async def test_resolver_failure_is_shared_not_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    loop = asyncio.get_running_loop()

    async def nxdomain(*args: object, **kwargs: object) -> object:
        await asyncio.sleep(0.01)  # no real lookup: only loopback in tests
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(loop, "getaddrinfo", nxdomain)
    res = resolver_mod.Resolver()
    name = "no-such-host.example.test"
    results = await asyncio.gather(*(res.resolve(name, 1) for _ in range(5)),
                                   return_exceptions=True)
    assert all(isinstance(r, socket.gaierror) for r in results)
    assert res.lookups == 1 and not res.cache
    with pytest.raises(socket.gaierror):
        await res.resolve(name, 1)
    assert res.lookups == 2


async def test_cancelled_caller_does_not_cancel_the_others() -> None:
    res = Resolver()
    first = asyncio.create_task(res.resolve("localhost", 25))
    second = asyncio.create_task(res.resolve("localhost", 25))
    await asyncio.sleep(0)
    first.cancel()
    assert await second
