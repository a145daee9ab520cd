"""One APScheduler job per probe, with start jitter, backoff and connection caps.

Jobs never stack (``max_instances=1``, ``coalesce=True``): a probe that overruns is cut by
its own timeout in the runner. Each probe holds a slot of a global semaphore and one per
server (host:port) while it runs, so the daemon never opens more than a provider tolerates.
After an ``auth`` or ``rate_limited`` failure the probe's interval doubles per consecutive
failure, up to 8x, so repeated bad logins cannot get the account locked; one success
restores the configured interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from mailcanary.config import Config, ImapEndpoint, Pop3Endpoint, SmtpEndpoint
from mailcanary.probes import PROBES, ProbeKind
from mailcanary.probes.runner import run_probe
from mailcanary.probes.selection import select_probes
from mailcanary.result import ProbeResult

log = structlog.get_logger("mailcanary.daemon.scheduler")

BACKOFF_CLASSES = ("auth", "rate_limited")
MAX_BACKOFF = 8
GLOBAL_CONNECTIONS = 32
PER_SERVER_CONNECTIONS = 4
MAX_START_JITTER = 60.0


@dataclass
class JobSpec:
    kind: str
    target: str
    interval: float
    fingerprint: str  # the target's config: a change reschedules the job

    @property
    def job_id(self) -> str:
        return f"{self.kind}:{self.target}"


def interval_of(config: Config, kind: str, target: str) -> float:
    if kind in ("imap", "smtp", "pop3"):
        return config.interval_of(config.account(target))
    if kind == "inbound":
        return config.inbound_watch(target).interval or config.defaults.interval
    route = config.route(target)
    return route.interval or config.defaults.interval


def servers_of(config: Config, kind: str, target: str) -> list[str]:
    """The host:port endpoints a probe connects to (for the per-server cap)."""
    eps: list[ImapEndpoint | SmtpEndpoint | Pop3Endpoint] = []
    if kind == "imap" and (acc := config.account(target)).imap is not None:
        eps.append(acc.imap)
    elif kind == "smtp" and (acc := config.account(target)).smtp is not None:
        eps.append(acc.smtp)
    elif kind == "pop3" and (acc := config.account(target)).pop3 is not None:
        eps.append(acc.pop3)
    elif kind == "roundtrip":
        route = config.route(target)
        if (src := config.account(route.from_).smtp) is not None:
            eps.append(src)
        receiver = config.account(route.to)
        if (dst := receiver.imap or receiver.pop3) is not None:
            eps.append(dst)
    elif kind == "inbound" and (
        box := config.account(config.inbound_watch(target).account).imap
    ) is not None:
        eps.append(box)
    return sorted({f"{ep.host.lower()}:{ep.effective_port}" for ep in eps})


def job_specs(config: Config, registry: dict[str, ProbeKind]) -> list[JobSpec]:
    specs = []
    for kind, target in select_probes(config):
        if kind not in registry:
            log.info("probe_kind_unavailable", probe=kind, target=target,
                     note="this version cannot run it; skipped")
            continue
        if kind in ("imap", "smtp", "pop3"):
            part = config.account(target).model_dump_json()
        elif kind == "inbound":
            watch = config.inbound_watch(target)
            part = watch.model_dump_json() + config.account(watch.account).model_dump_json()
        else:
            part = config.route(target).model_dump_json()
        interval = interval_of(config, kind, target)
        fingerprint = f"{part}|{interval}|{config.defaults.model_dump_json()}"
        specs.append(JobSpec(kind, target, interval, fingerprint))
    return specs


class ProbeScheduler:
    def __init__(
        self,
        config: Config,
        on_result: Callable[[ProbeResult], None],
        *,
        registry: dict[str, ProbeKind] | None = None,
        global_cap: int = GLOBAL_CONNECTIONS,
        server_cap: int = PER_SERVER_CONNECTIONS,
        max_jitter: float = MAX_START_JITTER,
    ) -> None:
        self.config = config
        self.on_result = on_result
        self.registry = registry if registry is not None else PROBES
        self.scheduler = AsyncIOScheduler(
            job_defaults={"max_instances": 1, "coalesce": True, "misfire_grace_time": None}
        )
        self.specs: dict[str, JobSpec] = {}
        self.backoff: dict[str, int] = {}  # job id -> consecutive backoff failures
        self.global_slots = asyncio.Semaphore(global_cap)
        self.server_cap = server_cap
        self.server_slots: dict[str, asyncio.Semaphore] = {}
        self.max_jitter = max_jitter
        self.running: set[asyncio.Task[None]] = set()
        self.stopping = False
        self.on_backoff: Callable[[str, str, float], None] = lambda kind, target, factor: None

    @property
    def is_running(self) -> bool:
        return bool(self.scheduler.running) and not self.stopping

    def start(self) -> list[JobSpec]:
        specs = job_specs(self.config, self.registry)
        for spec in specs:
            self._add(spec)
        self.scheduler.start()
        return specs

    def factor(self, job_id: str) -> int:
        exponent: int = self.backoff.get(job_id, 0)
        return min(1 << min(exponent, 8), MAX_BACKOFF)

    def _add(self, spec: JobSpec, *, first_run_in: float | None = None) -> None:
        if first_run_in is None:
            first_run_in = random.uniform(0, min(spec.interval, self.max_jitter))  # noqa: S311  (spreading load, not security)
        self.specs[spec.job_id] = spec
        self.backoff.pop(spec.job_id, None)
        self.scheduler.add_job(
            self._job,
            IntervalTrigger(seconds=spec.interval),
            args=(spec.kind, spec.target),
            id=spec.job_id,
            name=spec.job_id,
            next_run_time=_at(first_run_in),
            replace_existing=True,
        )

    def apply(self, config: Config) -> tuple[list[JobSpec], list[JobSpec], list[JobSpec]]:
        """Switch to a new config: (added, changed, removed) jobs."""
        self.config = config
        wanted = {s.job_id: s for s in job_specs(config, self.registry)}
        added, changed, removed = [], [], []
        for job_id, spec in list(self.specs.items()):
            if job_id not in wanted:
                self.scheduler.remove_job(job_id)
                del self.specs[job_id]
                self.backoff.pop(job_id, None)
                removed.append(spec)
        for job_id, spec in wanted.items():
            old = self.specs.get(job_id)
            if old is None:
                self._add(spec)
                added.append(spec)
            elif old.fingerprint != spec.fingerprint:
                self._add(spec, first_run_in=random.uniform(0, min(spec.interval, 5.0)))  # noqa: S311  (load spreading)
                changed.append(spec)
        return added, changed, removed

    async def _job(self, kind: str, target: str) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.running.add(task)
        structlog.contextvars.bind_contextvars(probe=kind, target=target)
        try:
            config = self.config
            async with self._slots(config, kind, target):
                result = await run_probe(kind, target, config, registry=self.registry)
            if self.specs.get(f"{kind}:{target}") is None:
                return  # removed by a reload while it ran
            self._adjust_backoff(kind, target, result)
            self.on_result(result)
        finally:
            self.running.discard(task)

    @contextlib.asynccontextmanager
    async def _slots(self, config: Config, kind: str, target: str) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            await stack.enter_async_context(self.global_slots)
            for server in servers_of(config, kind, target):
                sem = self.server_slots.setdefault(server, asyncio.Semaphore(self.server_cap))
                await stack.enter_async_context(sem)
            yield

    def _adjust_backoff(self, kind: str, target: str, result: ProbeResult) -> None:
        job_id = f"{kind}:{target}"
        spec = self.specs[job_id]
        before = self.factor(job_id)
        if result.cls in BACKOFF_CLASSES:
            self.backoff[job_id] = self.backoff.get(job_id, 0) + 1
        else:
            self.backoff.pop(job_id, None)
        after = self.factor(job_id)
        if after != before:
            interval = spec.interval * after
            self.scheduler.reschedule_job(job_id, trigger=IntervalTrigger(seconds=interval))
            if after > before:
                log.warning(
                    "probe_backoff", probe=kind, target=target, factor=after,
                    interval_seconds=interval, reason=result.reason,
                    note=f"{result.cls} failure: probing less often so the account is not "
                    "locked by repeated failed logins",
                )
            else:
                log.info("probe_backoff_cleared", probe=kind, target=target,
                         interval_seconds=interval)
        self.on_backoff(kind, target, float(after))

    def restore_backoff(self, job_id: str, exponent: int, run_in: float) -> None:
        """Resume a backoff saved before a reload or restart (daemon/backoff.py)."""
        spec = self.specs[job_id]
        self.backoff[job_id] = exponent
        interval = spec.interval * self.factor(job_id)
        self.scheduler.reschedule_job(job_id, trigger=IntervalTrigger(seconds=interval))
        self.scheduler.modify_job(job_id, next_run_time=_at(min(max(run_in, 0.0), interval)))

    def effective_interval(self, kind: str, target: str) -> float:
        job_id = f"{kind}:{target}"
        spec = self.specs.get(job_id)
        return spec.interval * self.factor(job_id) if spec else 0.0

    async def stop(self, grace: float) -> int:
        """Stop scheduling, give running probes `grace` seconds, cancel the rest."""
        self.stopping = True
        if self.scheduler.running:
            self.scheduler.pause()
        running = list(self.running)
        cancelled = 0
        if running:
            _done, pending = await asyncio.wait(running, timeout=grace)
            for task in pending:
                task.cancel()
                cancelled += 1
            if pending:
                await asyncio.wait(pending, timeout=2.0)
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        return cancelled


def _at(seconds_from_now: float) -> dt.datetime:
    return dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds_from_now)
