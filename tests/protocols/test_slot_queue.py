"""A server's slot queue: a probe not in backoff gets a freed slot before one in backoff
(FIFO within each), cancellation never leaks or doubles a slot, and at most
`max_waiting(cap)` of the daemon's scheduled runs wait; the rest are turned away
(`SlotsFull`), newest low-priority waiter first. Real asyncio, no server needed."""

from __future__ import annotations

import asyncio

import pytest

from mailcanary.protocols.limits import (
    ConnectionLimits,
    ServerSlots,
    SlotsFull,
    acquire_for,
    holding,
    release_held,
)
from mailcanary.protocols.slots import max_waiting

HOST = "slow.test"
KEY = "slow.test:993"


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def waiter(slots: ServerSlots, name: str, order: list[str], *, low: bool = False,
           may_skip: bool = False) -> asyncio.Task[None]:
    async def run() -> None:
        await slots.acquire(low=low, may_skip=may_skip)
        order.append(name)
        await asyncio.sleep(0)  # hold it for a moment, then give it back
        slots.release()

    return asyncio.create_task(run())


async def assert_all_free(slots: ServerSlots) -> None:
    """No slot leaked: `cap` acquisitions succeed at once, the next one waits."""
    assert slots.taken == 0 and slots.waiting == 0
    for _ in range(slots.cap):
        await asyncio.wait_for(slots.acquire(), 0.1)
    assert slots.locked()
    for _ in range(slots.cap):
        slots.release()
    assert slots.taken == 0


async def test_a_freed_slot_goes_to_normal_waiters_first_fifo_within_each() -> None:
    slots = ServerSlots(1, KEY)
    await slots.acquire()
    order: list[str] = []
    tasks = [waiter(slots, "low1", order, low=True), waiter(slots, "low2", order, low=True)]
    await settle()
    tasks += [waiter(slots, "normal1", order), waiter(slots, "low3", order, low=True),
              waiter(slots, "normal2", order)]
    await settle()
    assert slots.waiting == 5
    slots.release()
    await asyncio.gather(*tasks)
    assert order == ["normal1", "normal2", "low1", "low2", "low3"]
    await assert_all_free(slots)


async def test_through_the_holder_a_backed_off_probe_waits_behind_a_healthy_one() -> None:
    limits = ConnectionLimits(total=8, per_server=1)
    order: list[str] = []

    async def probe(name: str, low: bool) -> None:
        with holding(limits, low_priority=low, may_skip=True):
            await acquire_for(HOST, 993)
            order.append(name)
            await asyncio.sleep(0)

    with holding(limits):
        await acquire_for(HOST, 993)
        failing = asyncio.create_task(probe("in backoff", True))
        await settle()
        healthy = asyncio.create_task(probe("healthy", False))
        await settle()
    await asyncio.gather(failing, healthy)
    assert order == ["healthy", "in backoff"]
    assert limits.busy == {KEY: 0} and limits.global_slots._value == 8


async def test_a_waiter_cancelled_in_the_queue_leaves_it() -> None:
    slots = ServerSlots(2, KEY)
    await slots.acquire()
    await slots.acquire()
    order: list[str] = []
    gone = waiter(slots, "gone", order, low=True)
    stays = waiter(slots, "stays", order, low=True)
    await settle()
    gone.cancel()
    with pytest.raises(asyncio.CancelledError):
        await gone
    assert slots.waiting == 1 and slots.taken == 2
    slots.release()
    await stays
    assert order == ["stays"]
    slots.release()
    await assert_all_free(slots)


async def test_a_waiter_cancelled_after_it_was_handed_the_slot_hands_it_on() -> None:
    """Handed the slot and cancelled before it ran again (a timeout at that moment): the
    slot goes to the next waiter, and when none waits it is free: never lost, never
    given twice; the holder's `busy` and the global slots stay right."""
    limits = ConnectionLimits(total=4, per_server=1)
    order: list[str] = []

    async def probe(name: str) -> None:
        with holding(limits, may_skip=True):
            await acquire_for(HOST, 993)
            order.append(name)
            await asyncio.sleep(0)

    with holding(limits):
        await acquire_for(HOST, 993)
        handed = asyncio.create_task(probe("handed"))
        await settle()
        after = asyncio.create_task(probe("after"))
        await settle()
        release_held()  # the slot is handed to `handed`, which has not run yet...
        handed.cancel()  # ...and is cancelled now
        with pytest.raises(asyncio.CancelledError):
            await handed
        await after
        assert order == ["after"]
        assert limits.busy == {KEY: 0} and limits.global_slots._value == 4
        slots = limits.servers[KEY]
        await assert_all_free(slots)
        # And alone: handed, cancelled, nobody behind it: the slot is free again.
        await slots.acquire()
        alone = waiter(slots, "alone", order)
        await settle()
        slots.release()
        alone.cancel()
        with pytest.raises(asyncio.CancelledError):
            await alone
        await assert_all_free(slots)


def queue_up(slots: ServerSlots, count: int, *, low: bool, may_skip: bool = True,
             ) -> list[asyncio.Task[None]]:
    return [asyncio.create_task(slots.acquire(low=low, may_skip=may_skip))
            for _ in range(count)]


async def drain(slots: ServerSlots, tasks: list[asyncio.Task[None]]) -> None:
    """The slot held now, then each queued waiter's in turn, given back: all served."""
    for _ in range(len(tasks) + 1):
        slots.release()
        await settle()
    await asyncio.gather(*tasks)
    await assert_all_free(slots)


async def test_the_bound_turns_away_low_newcomers_and_evicts_the_newest_low_waiter() -> None:
    slots = ServerSlots(1, KEY, "`[daemon] max_connections_per_server = 1`")
    bound = max_waiting(1)
    assert bound == 64 and slots.max_waiting == 64
    await slots.acquire()
    lows = queue_up(slots, bound, low=True)
    await settle()
    assert slots.waiting == bound
    with pytest.raises(SlotsFull) as caught:  # a low newcomer: turned away at once
        await asyncio.wait_for(slots.acquire(low=True, may_skip=True), 0.1)
    assert str(caught.value) == (
        f"64 probes already wait for a connection slot to {KEY} (`[daemon] "
        "max_connections_per_server = 1`); this run is skipped, not queued")
    assert (caught.value.key, caught.value.waiting, caught.value.cap) == (KEY, 64, 1)
    normal = asyncio.create_task(slots.acquire(may_skip=True))  # evicts the newest low
    await settle()
    assert lows[-1].done() and isinstance(lows[-1].exception(), SlotsFull)
    assert not any(task.done() for task in lows[:-1]) and slots.waiting == bound
    slots.release()
    await settle()
    assert normal.done() and not any(task.done() for task in lows[:-1])  # it went first
    await drain(slots, lows[:-1])


async def test_with_only_normal_waiters_a_newcomer_is_turned_away() -> None:
    slots = ServerSlots(1, KEY)
    await slots.acquire()
    normals = queue_up(slots, 64, low=False)
    await settle()
    for low in (False, True):
        with pytest.raises(SlotsFull):
            await asyncio.wait_for(slots.acquire(low=low, may_skip=True), 0.1)
    assert slots.waiting == 64 and not any(task.done() for task in normals)
    await drain(slots, normals)


async def test_probes_that_may_not_be_skipped_always_queue_and_are_never_evicted() -> None:
    """`check`, `/probe`, the doctor and the sweep: beyond the bound they still wait; a
    low waiter of theirs is not turned away for a normal newcomer (which is, itself)."""
    slots = ServerSlots(1, KEY)
    await slots.acquire()
    kept = queue_up(slots, 64, low=True, may_skip=False)
    await settle()
    kept += queue_up(slots, 2, low=False, may_skip=False) + queue_up(slots, 2, low=True,
                                                                      may_skip=False)
    await settle()
    assert slots.waiting == 68 and not any(task.done() for task in kept)
    with pytest.raises(SlotsFull):
        await asyncio.wait_for(slots.acquire(may_skip=True), 0.1)
    assert slots.waiting == 68 and not any(task.done() for task in kept)
    await drain(slots, kept)


async def test_only_the_first_connection_of_a_probe_may_be_turned_away() -> None:
    """Once it reached a server (a round trip's IMAP leg), a probe finishes what it started:
    its next connection queues even when that server's queue is full."""
    limits = ConnectionLimits(total=128, per_server=1)
    with holding(limits):
        await acquire_for("full.test", 25)  # full.test:25 known to the limits (cap 1)
    slots = limits.servers["full.test:25"]
    await slots.acquire()
    waiting = queue_up(slots, 64, low=False)
    await settle()
    with holding(limits, may_skip=True):
        with pytest.raises(SlotsFull, match=r"full\.test:25 \(`\[daemon\] "
                           r"max_connections_per_server = 1`\)"):
            await acquire_for("full.test", 25)
        assert limits.busy["full.test:25"] == 0
    with holding(limits, may_skip=True):
        await acquire_for("free.test", 993)  # its first connection
        second = asyncio.create_task(acquire_for("full.test", 25))
        await settle()
        assert not second.done() and slots.waiting == 65
        second.cancel()
        with pytest.raises(asyncio.CancelledError):
            await second
    await drain(slots, waiting)


async def test_a_reload_still_applies_a_new_cap_once_the_server_is_idle() -> None:
    limits = ConnectionLimits(total=8, per_server=1)
    with holding(limits):
        await acquire_for(HOST, 993)
        limits.configure(2, {})
        assert limits.servers[KEY].cap == 1  # busy: the old queue stays
    limits.configure(3, {})
    with holding(limits):
        await acquire_for(HOST, 993)
    assert limits.servers[KEY].cap == 3 and limits.servers[KEY].max_waiting == 64
