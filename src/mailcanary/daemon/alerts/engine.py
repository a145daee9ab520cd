"""Feeds probe results to every sink's tracker and delivers events without blocking probes.

Each sink has a bounded queue and one worker task: a slow or dead receiver delays only its
own notifications. Failed sends are retried with exponential backoff, then dropped; what is
still queued or in flight when the grace time at a stop or reload ends is dropped too; every
outcome is counted in ``mailcanary_alert_notifications_total{sink,status}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog

from mailcanary.config import AlertConfig, Config
from mailcanary.daemon.alerts.grouping import ServerGroups
from mailcanary.daemon.alerts.sinks import Sink, SinkError, make_sink
from mailcanary.daemon.alerts.state import AlertEvent, AlertTracker
from mailcanary.daemon.alerts.store import AlertStore, sink_identity
from mailcanary.daemon.metrics import MetricsState
from mailcanary.probes.kind import Whereabouts
from mailcanary.result import ProbeResult

log = structlog.get_logger("mailcanary.daemon.alerts")

QUEUE_SIZE = 1000
ATTEMPTS = 5
FIRST_RETRY = 1.0
MAX_RETRY = 60.0


def sink_labels(sinks: list[AlertConfig]) -> list[str]:
    """"webhook" when it is the only one of its kind, else "webhook1", "webhook2", ..."""
    labels: list[str] = []
    for i, sink in enumerate(sinks):
        same = [s for s in sinks if s.kind == sink.kind]
        if len(same) == 1:
            labels.append(sink.kind)
        else:
            labels.append(f"{sink.kind}{sum(s.kind == sink.kind for s in sinks[: i + 1])}")
    return labels


class _SinkWorker:
    def __init__(
        self, label: str, conf: AlertConfig, sink: Sink, metrics: MetricsState,
        retry_base: float,
    ) -> None:
        self.identity = sink_identity(conf)
        self.label = label
        self.conf = conf
        self.sink = sink
        self.metrics = metrics
        self.retry_base = retry_base
        self.tracker = AlertTracker(
            conf.after, conf.repeat, refresh_every_failure=conf.kind == "alertmanager"
        )
        self.groups = ServerGroups(self.tracker, conf.server_min_targets)
        self.queue: asyncio.Queue[AlertEvent] = asyncio.Queue(QUEUE_SIZE)
        self.sending: AlertEvent | None = None  # taken from the queue, not yet delivered
        self.task = asyncio.create_task(self._work(), name=f"alert-sink-{label}")

    def enqueue(self, event: AlertEvent) -> None:
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.metrics.count_notification(self.label, "dropped")
            log.error("alert_dropped", sink=self.label, reason="queue full",
                      probe=event.probe, target=event.target)

    async def _work(self) -> None:
        while True:
            event = self.sending = await self.queue.get()
            try:
                await self._deliver(event)
                self.sending = None
            except Exception:  # a bug in a sink must not end its worker silently
                self.sending = None
                self.metrics.count_notification(self.label, "failed")
                log.exception("alert_sink_error", sink=self.label, status=event.status,
                              probe=event.probe, target=event.target)
            finally:
                self.queue.task_done()

    async def _deliver(self, event: AlertEvent) -> None:
        delay = self.retry_base
        for attempt in range(1, ATTEMPTS + 1):
            try:
                await self.sink.send(event)
            except Exception as exc:  # a sink's bug too: retried, logged with its traceback
                if not isinstance(exc, SinkError | OSError):
                    log.error("alert_sink_error", sink=self.label, status=event.status,
                              probe=event.probe, target=event.target, exc_info=True)
                last = attempt == ATTEMPTS
                self.metrics.count_notification(self.label, "failed" if last else "retried")
                log.warning(
                    "alert_send_failed", sink=self.label, status=event.status,
                    probe=event.probe, target=event.target, attempt=attempt,
                    error=str(exc), retry_in=None if last else delay,
                )
                if last:
                    return
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_RETRY)
            else:
                self.metrics.count_notification(self.label, "sent")
                log.info("alert_sent", sink=self.label, status=event.status,
                         probe=event.probe, target=event.target, reason=event.reason,
                         failures=event.failures)
                return

    async def close(self, grace: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.queue.join(), grace)
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        self._drop_unsent()
        await self.sink.aclose()

    def _drop_unsent(self) -> None:
        """What the grace time did not deliver (in flight or queued) is counted and logged
        as dropped: a stop must not lose notifications without a trace."""
        unsent = [self.sending] if self.sending is not None else []
        self.sending = None
        while not self.queue.empty():
            unsent.append(self.queue.get_nowait())
        for event in unsent:
            self.metrics.count_notification(self.label, "dropped")
            log.warning("alert_dropped", sink=self.label, reason="shutdown", status=event.status,
                        probe=event.probe, target=event.target)


class AlertEngine:
    def __init__(
        self,
        metrics: MetricsState,
        config: Callable[[], Config],
        ttl_of: Callable[[str, str], float],
        *,
        retry_base: float = FIRST_RETRY,
    ) -> None:
        self.metrics = metrics
        self.config = config
        self.ttl_of = ttl_of
        self.retry_base = retry_base
        self.workers: list[_SinkWorker] = []
        self.store: AlertStore | None = None
        self._saved: dict[str, Any] = {}

    def persist_in(self, state_dir: Path) -> None:
        """Keep alert state in `state_dir` (loaded now, written as it changes)."""
        self.store = AlertStore(state_dir, self.snapshot)
        self._saved = self.store.load()

    def snapshot(self) -> dict[str, Any]:
        return {w.identity: {"targets": w.tracker.dump(), "servers": w.groups.dump()}
                for w in self.workers}

    def _where(self, probe: str, target: str) -> Whereabouts:
        series = self.metrics.targets.get((probe, target))
        return series.where if series is not None else Whereabouts()

    def _restore(self, worker: _SinkWorker) -> None:
        saved = self._saved.pop(worker.identity, [])
        rows, servers = (saved, None) if isinstance(saved, list) else (
            saved["targets"], saved["servers"])
        worker.tracker.load(rows)
        where = {key: self._where(*key) for key in worker.tracker.streaks}
        worker.groups.load(servers, where)

    def configure(self, sinks: list[AlertConfig]) -> list[_SinkWorker]:
        """Keep each sink's alert state by its identity (not its position or label);
        return the workers no longer needed."""
        old = {w.identity: w for w in self.workers}
        new: list[_SinkWorker] = []
        for label, conf in zip(sink_labels(sinks), sinks, strict=True):
            kept = old.pop(sink_identity(conf), None)
            if kept is None or kept.conf != conf or kept.label != label:
                worker = _SinkWorker(label, conf, make_sink(conf, self.config), self.metrics,
                                     self.retry_base)
                if kept is not None:  # same destination, other settings: same state
                    worker.tracker.streaks = kept.tracker.streaks
                    worker.groups = kept.groups
                    worker.groups.tracker = worker.tracker
                    worker.groups.min_targets = conf.server_min_targets
                    old[f"replaced-{id(kept)}"] = kept
                else:
                    self._restore(worker)
                for status in ("sent", "failed"):
                    self.metrics.notifications.setdefault((label, status), 0)
                kept = worker
            new.append(kept)
        self.workers = new
        if self.store is not None:
            self.store.changed()
        return list(old.values())

    async def reconfigure(self, sinks: list[AlertConfig]) -> None:
        for worker in self.configure(sinks):
            await worker.close(grace=2.0)

    def observe(self, result: ProbeResult) -> None:
        now = time.time()
        changed = False
        where = self._where(result.probe, result.target)
        ttl = self.ttl_of(result.probe, result.target)
        for worker in self.workers:
            had = (result.probe, result.target) in worker.tracker.streaks
            event = worker.tracker.observe(result, now, ttl)
            changed = changed or had or not result.ok
            for out in worker.groups.process(result, where, event, now, ttl):
                worker.enqueue(out)
        if self.store is not None and changed:
            self.store.changed()

    def removed(self, probe: str, target: str) -> None:
        """A target left the config: its firing alerts are resolved (the detail says why)."""
        now = time.time()
        for worker in self.workers:
            event = worker.tracker.removed(probe, target, now)
            for out in worker.groups.removed((probe, target), event, now):
                worker.enqueue(out)
        if self.store is not None:
            self.store.changed()  # start-up pruning of 5,000 stale keys: one write

    def prune(self, targets: set[tuple[str, str]]) -> None:
        """After a restart: resolve the alerts of targets the config no longer has."""
        for worker in self.workers:
            for key in list(worker.tracker.streaks):
                if key not in targets:
                    self.removed(*key)

    async def close(self, grace: float = 2.0) -> None:
        if self.store is not None:
            self.store.save()
        await asyncio.gather(*(w.close(grace) for w in self.workers))
        self.workers = []
