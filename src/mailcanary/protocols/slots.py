"""One server's connection slots: a queue with two priorities and a bound on its waiters.

Why not an `asyncio.Semaphore`: in a provider-wide auth outage each refusal holds its slot
for the server's failure delay (2 s), the demand for slots exceeds the cap, and a FIFO
queue put the healthy accounts' probes behind thousands of failing ones (minutes of wait)
while every waiting probe kept its task and frames in memory (~12.6 KiB each: 10,000 of
them were 300 MiB). So:

- Priority: a freed slot goes to the oldest *normal* waiter first, and only when there is
  none to the oldest *low* one (a probe whose job is in auth or rate-limit backoff: its
  next answer is most likely the same refusal). FIFO within each class.
- A bound: at most `max_waiting(cap)` = max(64, 16 x cap) probes wait, counted over both
  classes. 16 per slot is as many as the slots serve in one failure delay's worth of turns
  16 times over: behind refusals of 2 s, the last waiter of a server with 16 slots gets
  its slot after ~32 s, well inside the default interval (5 min), so a bounded queue
  turns away nothing a run could have used in time; 64 at least, so a small cap (1-4)
  still takes a burst of runs due in the same tick. 256 waiting probes cost ~3 MiB.
  Only waiters that may be turned away (`may_skip`: the daemon's scheduled runs, which
  run again at their next due time) are bounded; `check`, a `/probe` scrape, the settings
  doctor and the sweep always queue. When the queue is full, a normal newcomer turns
  away the newest low waiter that may be turned away, if there is one; otherwise it is
  turned away itself, as is a low newcomer. Turned away means `SlotsFull`: the probe never
  reached the server, so it is a skipped run, not a failure.

Cancellation is exact: a waiter cancelled while queued leaves the queue; one cancelled
after it was handed the slot (before it ran again) hands it on, so `taken` never leaks.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque

MIN_WAITING = 64
WAITING_PER_SLOT = 16

Waiter = tuple["asyncio.Future[None]", bool]  # (its future, whether it may be turned away)


def max_waiting(cap: int) -> int:
    """How many probes may wait for a server of `cap` slots (see the module docstring)."""
    return max(MIN_WAITING, WAITING_PER_SLOT * cap)


class SlotsFull(Exception):
    """A scheduled run turned away: too many probes already wait for this server."""

    def __init__(self, key: str, waiting: int, cap: int, setting: str) -> None:
        self.key, self.waiting, self.cap, self.setting = key, waiting, cap, setting
        super().__init__(
            f"{waiting} probes already wait for a connection slot to {key} ({setting}); "
            "this run is skipped, not queued")


class ServerSlots:
    """`cap` slots of one host:port (`key`); `setting` names the limit in messages."""

    def __init__(self, cap: int, key: str = "", setting: str = "") -> None:
        self.cap = cap
        self.key = key
        self.setting = setting or f"max_connections_per_server = {cap}"
        self.max_waiting = max_waiting(cap)
        self.taken = 0
        self.normal: deque[Waiter] = deque()
        self.low: deque[Waiter] = deque()

    @property
    def waiting(self) -> int:
        return len(self.normal) + len(self.low)

    def locked(self) -> bool:
        return self.taken >= self.cap

    async def acquire(self, *, low: bool = False, may_skip: bool = False) -> None:
        """A slot, at once if one is free (no suspension), or in turn; `SlotsFull` when
        `may_skip` and the queue is full (see the module docstring)."""
        if self.taken < self.cap:  # then nobody waits: a freed slot is handed on at once
            self.taken += 1
            return
        if may_skip and self.waiting >= self.max_waiting:
            self._make_room(low)
        waiter: Waiter = (asyncio.get_running_loop().create_future(), may_skip)
        queue = self.low if low else self.normal
        queue.append(waiter)
        try:
            await waiter[0]
        except BaseException:
            future = waiter[0]
            if not future.done() or future.cancelled():
                with contextlib.suppress(ValueError):  # unless `release` dropped it
                    queue.remove(waiter)
            elif future.exception() is None:
                self.release()  # handed the slot, cancelled before it ran: hand it on
            raise

    def _make_room(self, low: bool) -> None:
        """The queue is full: turn away the newest low waiter for a normal newcomer, or
        else the newcomer (raises)."""
        full = SlotsFull(self.key, self.waiting, self.cap, self.setting)
        if not low:
            for waiter in reversed(self.low):
                future, skippable = waiter
                if skippable and not future.done():
                    self.low.remove(waiter)
                    future.set_exception(full)
                    return
        raise full

    def release(self) -> None:
        """Give a slot back: to the oldest normal waiter, else the oldest low one."""
        for queue in (self.normal, self.low):
            while queue:
                future, _ = queue.popleft()
                if not future.done():  # a cancelled one leaves on its own; skip it here
                    future.set_result(None)
                    return
        if self.taken <= 0:
            raise RuntimeError(f"connection slot of {self.key} released more often than taken")
        self.taken -= 1
