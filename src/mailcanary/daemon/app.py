"""`mailcanary run`: wires config, scheduler, metrics, HTTP, alerts, signals and systemd.

Start-up: load the config (exit 2 if bad), listen for /metrics, create every target's
series, start the jobs, tell systemd READY=1. SIGHUP, or an edit of the config files
(daemon/confwatch.py), reloads (RELOADING=1 ... READY=1), keeping the old config when the
new one is invalid. SIGTERM/SIGINT: STOPPING=1, no new
probes, running ones get a grace period and are then cancelled, exit 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import structlog
from prometheus_client import CollectorRegistry
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from mailcanary import __version__
from mailcanary.config import Config, ConfigError, load_config, warnings_for
from mailcanary.config.webconfig import web_config_of
from mailcanary.daemon import sd
from mailcanary.daemon.alerts import AlertEngine
from mailcanary.daemon.confwatch import ConfigWatcher
from mailcanary.daemon.heap import (
    release_large_buffers,
    small_tls_read_buffers,
    trim_periodically,
)
from mailcanary.daemon.metrics import MetricsCollector, MetricsState
from mailcanary.daemon.probe_endpoint import ProbeEndpoint
from mailcanary.daemon.scheduler import JobSpec, ProbeScheduler
from mailcanary.daemon.sdnotify import Notifier
from mailcanary.daemon.shards import Shard
from mailcanary.daemon.status.history import History
from mailcanary.daemon.status.page import StatusPage
from mailcanary.daemon.web import CachedExposition, WebServer
from mailcanary.probes import PROBES, ProbeKind
from mailcanary.probes.kind import Sweeper
from mailcanary.probes.runner import log_result
from mailcanary.protocols.runtime import Runtime
from mailcanary.result import ProbeResult
from mailcanary.state import StateDirError, check_state_dir

log = structlog.get_logger("mailcanary.daemon")

STOP_GRACE = 5.0  # running probes may finish for this long; then cancelled (exit < 10 s)
SWEEP_FIRST_DELAY = 5.0  # the start-up sweep waits for the first probes to get going
SWEEP_EVERY = 900.0  # then every 15 minutes


class Daemon:
    def __init__(
        self,
        config_path: Path,
        config: Config,
        *,
        registry: dict[str, ProbeKind] | None = None,
        notifier: Notifier | None = None,
        shard: Shard | None = None,
    ) -> None:
        self.config_path = config_path
        self.config = config
        self.registry = registry if registry is not None else PROBES
        self.notifier = notifier or Notifier()
        self.metrics = MetricsState()
        self.prom = CollectorRegistry()
        self.prom.register(MetricsCollector(self.metrics))
        for extra in (ProcessCollector, PlatformCollector, GCCollector):
            extra(registry=self.prom)
        self.runtime = Runtime.for_config(config)  # what this daemon's probes share
        self.scheduler = ProbeScheduler(config, self.on_result, registry=self.registry,
                                        shard=shard, runtime=self.runtime)
        hooks = self.scheduler.hooks
        hooks.backoff, hooks.skip, hooks.lag, hooks.paused = (
            self._set_backoff, self.metrics.count_skip, self.metrics.observe_lag,
            self._set_paused,
        )
        self.exposition = CachedExposition(self.metrics, self.prom)
        self.probe_endpoint = ProbeEndpoint(self.scheduler)
        probe = self.probe_endpoint.answer if config.daemon.probe_endpoint else None
        self.web = WebServer(self.exposition, self.health, probe,
                             max_connections=config.daemon.max_web_connections)
        self.web.sd = self.discovery if config.daemon.probe_endpoint else None
        self.alerts = AlertEngine(self.metrics, lambda: self.config, self._alert_ttl)
        self.history = History(config.daemon.state_dir, config.daemon.history_days)
        self.web.status = StatusPage(self.history, lambda: list(self.metrics.targets),
                                     lambda: self.config, self.registry,
                                     paused=self._is_paused).answer
        self.stop_requested = asyncio.Event()
        self._reload_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[Any]] = set()

    # ------------------------------------------------------------------ results

    def on_result(self, result: ProbeResult) -> None:
        self.metrics.record(result)
        self.alerts.observe(result)
        self.history.add(result)

    def _set_backoff(self, kind: str, target: str, factor: float) -> None:
        series = self.metrics.targets.get((kind, target))
        if series is not None:
            series.backoff = factor

    def _set_paused(self, kind: str, target: str, paused: bool) -> None:
        series = self.metrics.targets.get((kind, target))
        if series is not None:
            series.paused = paused

    def _is_paused(self, kind: str, target: str) -> bool:
        series = self.metrics.targets.get((kind, target))
        return series is not None and series.paused

    def _alert_ttl(self, kind: str, target: str) -> float:
        """Alertmanager's endsAt: three missed runs, each as long as the probe may take
        (a route's deadline), so a slow probe does not make the alert flap."""
        interval = self.scheduler.effective_interval(kind, target) or self.config.defaults.interval
        try:
            takes = self.registry[kind].timeout(self.config, target)
        except (KeyError, LookupError):
            takes = self.config.defaults.timeout
        return 3 * (interval + takes) + 60

    def _add_series(self, specs: list[JobSpec]) -> None:
        for spec in specs:
            kind = self.registry[spec.kind]
            self.metrics.ensure(spec.kind, spec.target, kind.reasons,
                                kind.preset_phases(self.config, spec.target),
                                delivery=kind.delivery, interval=spec.interval,
                                where=kind.whereabouts(self.config, spec.target))

    def health(self, summary: bool = False) -> tuple[bool, dict[str, Any]]:
        """`summary` (``/healthz?summary``, for liveness probes): no per-target list, which
        at 10,000 accounts is 3.5 MB of JSON and 150 ms on the loop."""
        healthy = self.scheduler.is_running
        doc: dict[str, Any] = {"status": "ok" if healthy else "stopped", "version": __version__}
        paused = sorted(f"{s.probe}:{s.target}" for s in self.metrics.targets.values()
                        if s.paused)
        if summary:  # logins paused after repeated auth failures: listed when there are any
            extra = {"paused": paused} if paused else {}
            return healthy, {**doc, "targets": len(self.metrics.targets), **extra}
        doc["paused"] = paused
        targets = []
        for series in sorted(self.metrics.targets.values(), key=lambda s: (s.target, s.probe)):
            last = series.last
            targets.append({
                "probe": series.probe,
                "target": series.target,
                "ok": None if last is None else last.ok,
                "class": None if last is None else last.cls,
                "reason": None if last is None else last.reason,
                "phase": None if last is None else last.phase,
                "finished_at": None if last is None else last.finished_at,
                "backoff_factor": series.backoff,
                "paused": series.paused,
            })
        return healthy, {**doc, "targets": targets}

    def discovery(self, headers: Mapping[str, str]) -> bytes:
        """/sd: this daemon's (this shard's) targets for Prometheus's http_sd_configs."""
        here = sd.address(self.config.daemon.listen_host, self.web.port, headers)
        jobs = [(spec.kind, spec.target) for spec in self.scheduler.specs.values()]
        return sd.render(self.config, self.registry, jobs, here)

    # ------------------------------------------------------------------ lifecycle

    async def run(self) -> int:
        daemon = self.config.daemon
        try:
            self.web.configure(web_config_of(self.config), daemon.max_web_connections)
        except ConfigError as exc:
            log.error("web_config_invalid", problems=exc.problems)
            print(exc.report(), file=sys.stderr)
            return 2
        await self.history.open()  # before listening: /metrics has every series at once
        try:
            await self.web.start(daemon.listen_host, daemon.listen_port)
        except OSError as exc:
            log.error("listen_failed", listen=daemon.listen, error=exc.strerror or str(exc))
            await self.history.close()
            return 1
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self.stop_requested.set)
        loop.add_signal_handler(signal.SIGINT, self.stop_requested.set)
        loop.add_signal_handler(signal.SIGHUP, self._spawn_reload)
        self.metrics.reload_success_time = time.time()
        self.alerts.persist_in(daemon.state_dir)
        self.alerts.configure(list(self.config.alerts))
        specs = self.scheduler.start()
        self._add_series(specs)
        self.alerts.prune({(s.kind, s.target) for s in specs})
        self.scheduler.backoff.attach(daemon.state_dir)
        self.scheduler.resume_backoff(specs)
        self.scheduler.mark_paused()
        for warning in warnings_for(self.config):
            log.warning("config_warning", warning=warning)
        log.info(
            "daemon_started", version=__version__, config=str(self.config_path),
            listen=f"{daemon.listen_host}:{self.web.port}", probes=len(specs),
            shard=str(self.scheduler.shard) if self.scheduler.shard else None,
            alert_sinks=len(self.config.alerts),
        )
        self.notifier.ready(f"probing {len(specs)} targets")
        self._start_background()
        watchdog = None
        if self.notifier.watchdog_seconds:
            watchdog = asyncio.create_task(self._watchdog(self.notifier.watchdog_seconds / 3))
        await self.stop_requested.wait()
        started = time.monotonic()
        self.notifier.stopping()
        log.info("daemon_stopping", running_probes=len(self.scheduler.running))
        cancelled = await self.scheduler.stop(STOP_GRACE)
        self.scheduler.backoff.close()
        for task in list(self._tasks):
            task.cancel()
        if watchdog is not None:
            watchdog.cancel()
        await self.alerts.close(grace=1.0)
        await self.history.close()
        await self.web.stop()
        await self.runtime.close()
        log.info("daemon_stopped", seconds=round(time.monotonic() - started, 3),
                 cancelled_probes=cancelled)
        return 0

    def _start_background(self) -> None:
        """The sweeper, the heap trimmer (daemon/heap.py) and the config watcher."""
        self._spawn(self._sweeper())
        self._spawn(trim_periodically())  # free heap pages back to the system
        self.watcher = ConfigWatcher(self.config_path, self.reload)  # edits reload as SIGHUP
        self._spawn(self.watcher.run())

    async def _watchdog(self, every: float) -> None:
        while True:
            if self.scheduler.is_running:
                self.notifier.watchdog()
            await asyncio.sleep(every)

    def _spawn_reload(self) -> None:
        self._spawn(self.reload())

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _sweeper(self) -> None:
        """Start-up and periodic upkeep of every kind that has one (a round trip's: the
        canaries nobody watches any more after a crash, a restart, a probe that gave up)."""
        await asyncio.sleep(SWEEP_FIRST_DELAY)
        while True:
            pending_until = await self.sweep_once()
            wait = SWEEP_EVERY  # or sooner: an in-flight canary's verdict is due at its deadline
            if pending_until is not None:
                wait = min(wait, max(pending_until - time.time() + 1.0, 1.0))
            await asyncio.sleep(wait)

    async def sweep_once(self) -> float | None:
        """Each kind's upkeep once (kinds without targets skipped); the earliest time one
        wants to run again."""
        due: list[float] = []
        for kind in self.registry.values():
            if kind.sweep is not None and kind.targets(self.config):
                pending_until = await self._upkeep(kind, kind.sweep)
                if pending_until is not None:
                    due.append(pending_until)
        return min(due, default=None)

    async def _upkeep(self, kind: ProbeKind, sweeper: Sweeper) -> float | None:
        shard = self.scheduler.shard
        try:
            done = await sweeper(self.config, self.runtime,
                                 self.scheduler.backoff.active, shard.owns if shard else None)
        except Exception as exc:  # the sweep must never take the daemon down
            log.warning("sweep_failed", probe=kind.name, error=f"{type(exc).__name__}: {exc}")
            return None
        self.metrics.swept += done.removed
        for target, count in done.late.items():
            self.metrics.late[target] = self.metrics.late.get(target, 0) + count
        for result in done.results:  # verdicts nobody gave: counted like any other
            log_result(result)
            self.on_result(result)
        if not done.errors:
            self.metrics.sweep_success_time = time.time()
        log.info("sweep", probe=kind.name, removed=done.removed, errors=done.errors,
                 **done.log)
        return done.pending_until

    async def reload(self) -> bool:
        async with self._reload_lock:
            self.notifier.reloading()
            try:
                try:  # TOML + pydantic: ~1 s at 10,000 accounts, off the loop
                    new = await asyncio.to_thread(load_config, self.config_path)
                except ConfigError as exc:
                    self.metrics.reload_ok = 0.0
                    log.error("config_reload_failed", config=str(self.config_path),
                              problems=exc.problems, note="keeping the previous configuration")
                    return False
                return await self._apply(new)
            finally:
                self.notifier.ready()

    async def _apply(self, new: Config) -> bool:
        if new.daemon.listen != self.config.daemon.listen:
            log.warning("config_listen_changed", old=self.config.daemon.listen,
                        new=new.daemon.listen, note="takes effect after a restart")
        try:
            self.web.configure(web_config_of(new), new.daemon.max_web_connections)
        except ConfigError as exc:
            self.metrics.reload_ok = 0.0
            log.error("config_reload_failed", config=str(self.config_path),
                      problems=exc.problems, note="keeping the previous configuration")
            return False
        self.config = new
        self.history.store.days = new.daemon.history_days
        self.web.probe = self.probe_endpoint.answer if new.daemon.probe_endpoint else None
        self.web.sd = self.discovery if new.daemon.probe_endpoint else None
        self.runtime.reconfigure(new)
        added, changed, removed = self.scheduler.apply(new)
        for spec in removed:
            self.metrics.forget(spec.kind, spec.target)
            self.alerts.removed(spec.kind, spec.target)  # a firing alert gets its resolved
        self._add_series(list(self.scheduler.specs.values()))  # labels, server may change
        self.scheduler.resume_backoff(list(self.scheduler.specs.values()))
        self.scheduler.mark_paused()
        await self.alerts.reconfigure(list(new.alerts))
        for warning in warnings_for(new):
            log.warning("config_warning", warning=warning)
        self.metrics.reload_ok = 1.0
        self.metrics.reload_success_time = time.time()
        log.info("config_reloaded", config=str(self.config_path),
                 added=[s.job_id for s in added], changed=[s.job_id for s in changed],
                 removed=[s.job_id for s in removed])
        return True


async def run_daemon(config_path: Path, config: Config, shard: Shard | None = None) -> int:
    release_large_buffers()  # a freed 16 MiB scrypt buffer or /metrics render goes back
    small_tls_read_buffers()  # 32 KiB, not 256 KiB, per TLS connection (daemon/heap.py)
    try:
        check_state_dir(config.daemon.state_dir)
    except StateDirError as exc:
        log.error("state_dir_unusable", error=str(exc))
        print(f"mailcanary: {exc}", file=sys.stderr)
        return 2
    daemon = Daemon(config_path, config, shard=shard)
    try:
        return await daemon.run()
    finally:
        with contextlib.suppress(Exception):
            await daemon.scheduler.stop(0)
