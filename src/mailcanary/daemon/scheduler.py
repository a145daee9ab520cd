"""The probe schedule: APScheduler 3 jobs, connection limits, backoff.

Each (probe, target) is an APScheduler interval job (every `interval` times its backoff
factor), first due after a random start offset: within a minute for a small config, spread
wider when more than 50 jobs a second would start (up to the whole interval), so 10,000
accounts every 5 minutes are 67 logins a second, not a burst of 20,000 each period. A job
runs as a task that lasts as long as its probe, and `max_instances = 1`: when it is due
while its previous run still goes on, APScheduler does not start it; that run is *skipped*,
counted (`on_skip`) and logged once as JSON by us (APScheduler's own plain warning is
silenced), never stacked or queued. `coalesce` and no misfire grace: a late loop gives one
run, never a burst of catch-up runs. The lag from due time to start comes from
APScheduler's submission event (`on_lag`). Start times sit on a `START_GRID` (100 ms)
grid: APScheduler 3 wakes the loop once per distinct due time (a timer, then a hop through
the loop's self-pipe), which cost more CPU than the job itself (2,000 jobs every 10 s: 295 us
of CPU a run off the grid, 56 us on it); jobs due in the same tenth of a second now share
one wake-up, and the spread over the interval is unchanged. A run waits for connection
slots only inside the transport (`protocols.limits`), per server first, so a probe queued
behind a dead server holds nothing another server needs; a job in backoff waits there
behind the others, and a run that finds too many probes already waiting for its server is
turned away (`SlotsFull`): skipped, counted and logged like a run still going on, with no
result (backoff, alerts and the last result stay as they were).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog
from apscheduler.events import (
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_SUBMITTED,
    JobSubmissionEvent,
)
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from mailcanary.config import AccountConfig, Config
from mailcanary.daemon.backoff import Backoff
from mailcanary.daemon.shards import Shard
from mailcanary.probes import PROBES, ProbeKind
from mailcanary.probes.runner import run_probe
from mailcanary.probes.selection import select_probes
from mailcanary.protocols.limits import SlotsFull, server_caps
from mailcanary.protocols.runtime import Runtime
from mailcanary.result import ProbeResult

log = structlog.get_logger("mailcanary.daemon.scheduler")


def _not_a_skip(record: logging.LogRecord) -> bool:
    """Our own `probe_skipped` event says it once, as JSON, with the target; APScheduler's
    "maximum number of running instances reached" warning would say it a second time."""
    return "maximum number of running instances reached" not in str(record.msg)


logging.getLogger("apscheduler.scheduler").addFilter(_not_a_skip)

RELOAD_JITTER = 5.0
PAUSE_CHECK_SECONDS = 5.0  # how soon a paused account notices its new secret
MIN_SPREAD = 60.0  # first runs spread over at least this long (or the interval)...
START_RATE = 50.0  # ...and longer when more jobs would start per second than this
START_GRID = 0.1  # seconds: due times are multiples of it, so jobs share wake-ups


@dataclass(slots=True)
class JobSpec:
    kind: str
    target: str
    interval: float
    fingerprint: str  # a digest of the target's config: a change reschedules the job

    @property
    def job_id(self) -> str:
        return f"{self.kind}:{self.target}"


@dataclass(slots=True)
class Job:
    spec: JobSpec
    task: asyncio.Task[None] | None = None

    @property
    def busy(self) -> bool:
        return self.task is not None and not self.task.done()




def job_specs(
    config: Config, registry: dict[str, ProbeKind], shard: Shard | None = None
) -> list[JobSpec]:
    specs = []
    defaults = config.defaults.model_dump_json()
    for name, target in select_probes(config, registry=registry):
        if shard is not None and not shard.owns(target):
            continue
        kind = registry[name]
        interval = kind.interval(config, target)
        # A digest, not the text: the text repeats [defaults] for every job (11 MiB at
        # 10,000 accounts); equal digests mean an unchanged job all the same.
        fingerprint = hashlib.sha256(
            f"{kind.fingerprint(config, target)}|{interval}|{defaults}".encode()).hexdigest()
        specs.append(JobSpec(name, target, interval, fingerprint))
    return specs


def on_grid(timestamp: float) -> datetime:
    """The first START_GRID boundary at or after `timestamp` (an interval of whole tenths
    of a second keeps every later run on the grid too)."""
    return datetime.fromtimestamp(math.ceil(timestamp / START_GRID) * START_GRID, UTC)


@dataclass
class Hooks:
    """What the daemon wants to hear about (all called on the event loop)."""

    result: Callable[[ProbeResult], None] = lambda result: None
    skip: Callable[[str, str], None] = lambda kind, target: None
    lag: Callable[[float], None] = lambda seconds: None
    backoff: Callable[[str, str, float], None] = lambda kind, target, factor: None
    paused: Callable[[str, str, bool], None] = lambda kind, target, paused: None


class ProbeScheduler:
    def __init__(
        self,
        config: Config,
        on_result: Callable[[ProbeResult], None],
        *,
        registry: dict[str, ProbeKind] | None = None,
        max_jitter: float | None = None,
        shard: Shard | None = None,
        runtime: Runtime | None = None,
    ) -> None:
        self.config = config
        self.runtime = runtime if runtime is not None else Runtime.for_config(config)
        self.hooks = Hooks(result=on_result)
        self.registry = registry if registry is not None else PROBES
        self.shard = shard
        assert self.runtime.limits is not None
        self.limits = self.runtime.limits
        self.backoff = Backoff(self._accounts_of)
        self.jobs: dict[str, Job] = {}
        self.aps = AsyncIOScheduler(
            timezone=UTC,
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )
        self.aps.add_listener(self._on_event, EVENT_JOB_SUBMITTED | EVENT_JOB_MAX_INSTANCES)
        self.last: dict[str, ProbeResult] = {}  # job id -> newest result (scheduled or /probe)
        self.max_jitter = max_jitter  # None: as many jobs need (see _offset)
        self.running: set[asyncio.Task[None]] = set()
        self.stopping = False
        self._pause_watch: asyncio.Task[None] | None = None

    def _accounts_of(self, config: Config, kind: str, target: str) -> list[AccountConfig]:
        """Whose credentials a job logs in with (its backoff identity): its kind says."""
        found = self.registry.get(kind)
        return [] if found is None else found.accounts(config, target)

    @property
    def specs(self) -> dict[str, JobSpec]:
        return {job_id: job.spec for job_id, job in self.jobs.items()}

    @property
    def is_running(self) -> bool:
        return bool(self.aps.running) and not self.stopping

    def start(self) -> list[JobSpec]:
        specs = job_specs(self.config, self.registry, self.shard)
        self.jobs = {s.job_id: Job(s) for s in specs}  # sized first: _offset counts them
        for spec in specs:  # added before aps.start(): no wake-up per job
            self._add(spec, self._offset(spec))
        self.aps.start()
        self._pause_watch = asyncio.get_running_loop().create_task(self._watch_paused())
        return specs

    def _offset(self, spec: JobSpec, starting: int | None = None, least: float = MIN_SPREAD,
                ) -> float:
        """A first run within `least` seconds, or spread wider when `starting` jobs (default:
        all) would start more than START_RATE a second; never beyond the interval."""
        spread = self.max_jitter
        if spread is None:  # 3 jobs: within a minute; 20,000: over 400 s (or the interval)
            spread = max(least, (len(self.jobs) if starting is None else starting) / START_RATE)
        jitter = min(spec.interval, spread)
        return random.uniform(0, jitter)  # noqa: S311  (spreading load, not security)

    def _add(self, spec: JobSpec, first_run_in: float) -> None:
        job = Job(spec)
        old = self.jobs.get(spec.job_id)
        if old is not None:
            job.task = old.task  # still running: APScheduler counts it against the new job
        self.jobs[spec.job_id] = job
        self.backoff.forget(spec.kind, spec.target)
        self._schedule(spec, spec.interval, first_run_in)

    def _schedule(self, spec: JobSpec, every: float, first_run_in: float) -> None:
        """(Re)place the job: every `every` seconds, the first run `first_run_in` from now."""
        first = on_grid(time.time() + first_run_in)
        self.aps.add_job(
            self._fire, IntervalTrigger(seconds=every, start_date=first, timezone=UTC),
            args=[spec.job_id], id=spec.job_id, name=spec.job_id, replace_existing=True,
        )

    def _on_event(self, event: JobSubmissionEvent) -> None:
        job = self.jobs.get(event.job_id)
        if job is None:
            return
        due = min(event.scheduled_run_times)
        if event.code == EVENT_JOB_SUBMITTED:
            self.hooks.lag(max(0.0, (datetime.now(UTC) - due).total_seconds()))
            return
        self._skipped(job.spec, "the previous run still goes on; this run is skipped, not "
                      "queued", due_seconds_ago=round((datetime.now(UTC) - due).total_seconds(), 3))

    def _skipped(self, spec: JobSpec, note: str, **fields: object) -> None:
        """A scheduled run that could not start: counted and logged once, nothing else."""
        self.hooks.skip(spec.kind, spec.target)
        log.warning("probe_skipped", probe=spec.kind, target=spec.target, note=note, **fields)

    def apply(self, config: Config) -> tuple[list[JobSpec], list[JobSpec], list[JobSpec]]:
        """Switch to a new config: (added, changed, removed) jobs."""
        old_config, self.config = self.config, config
        for name in self.backoff.changed_accounts(old_config, config):
            self._set_paused(name, False, "the account's config changed")
        self.limits.configure(config.daemon.max_connections_per_server,
                              server_caps(config))
        wanted = {s.job_id: s for s in job_specs(config, self.registry, self.shard)}
        added, changed, removed = [], [], []
        restarting = sum(  # a changed [defaults] restarts every job: spread like start-up
            1 for job_id, spec in wanted.items()
            if job_id in self.jobs and self.jobs[job_id].spec.fingerprint != spec.fingerprint)
        for job_id, job in list(self.jobs.items()):
            if job_id not in wanted:
                del self.jobs[job_id]
                self.aps.remove_job(job_id)
                self.backoff.forget(job.spec.kind, job.spec.target)
                self.backoff.drop(job_id)
                self.last.pop(job_id, None)
                removed.append(job.spec)
        for job_id, spec in wanted.items():
            old = self.jobs.get(job_id)
            if old is None:
                self._add(spec, self._offset(spec))
                added.append(spec)
            elif old.spec.fingerprint != spec.fingerprint:
                self._add(spec, self._offset(spec, restarting, RELOAD_JITTER))
                changed.append(spec)
        return added, changed, removed

    async def _fire(self, job_id: str) -> None:
        """APScheduler's job: one scheduled run, lasting as long as the probe."""
        job = self.jobs.get(job_id)
        task = asyncio.current_task()
        if job is None or task is None:
            return
        job.task = task
        self.running.add(task)
        task.add_done_callback(self.running.discard)
        try:
            await self._run(job.spec)
        except asyncio.CancelledError:
            if not self.stopping:
                raise
            # Cut by our own stop: not a failure. APScheduler catches BaseException and
            # would log a traceback per probe still running at SIGTERM.

    async def _run(self, spec: JobSpec) -> None:
        structlog.contextvars.bind_contextvars(probe=spec.kind, target=spec.target)
        config = self.config
        paused = self.backoff.paused_in(config, spec.kind, spec.target)
        if paused:  # no login until the secret or the config changes: the last result stands
            last = self.last.get(spec.job_id)
            log.info("probe_paused", probe=spec.kind, target=spec.target, accounts=paused,
                     last_reason=None if last is None else last.reason)
            return
        try:
            result = await run_probe(
                spec.kind, spec.target, config, registry=self.registry, transcript=False,
                runtime=self.runtime, low_priority=self.backoff.active(spec.kind, spec.target),
                may_skip=True)
        except SlotsFull as full:  # it never reached the server: no result, runs when due
            self._skipped(spec, str(full), server=full.key, waiting=full.waiting)
            return
        if self.jobs.get(spec.job_id) is None:
            return  # removed by a reload while it ran
        self._record(spec.kind, spec.target, result)
        self.hooks.result(result)

    def _record(self, kind: str, target: str, result: ProbeResult) -> None:
        """Newest result and the backoff; a changed factor reschedules the job."""
        job_id = f"{kind}:{target}"
        self.last[job_id] = result
        before, after = self.backoff.record(kind, target, result.cls, result.phase)
        pausing = self.backoff.count_login(self.config, kind, target, result)
        if pausing is not None:
            self._set_paused(pausing, True, result.reason)
        job = self.jobs.get(job_id)
        if after != before and job is not None:
            interval = job.spec.interval * after
            if self.aps.get_job(job_id) is not None:
                self._schedule(job.spec, interval, interval)
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
        if job is not None:
            next_due = time.time() + job.spec.interval * after
            self.backoff.save(self.config, kind, target, next_due)
        self.hooks.backoff(kind, target, float(after))

    async def run_now(self, kind: str, target: str, *, time_limit: float | None = None,
                      transcript: bool = False) -> ProbeResult:
        """One probe outside the schedule (`/probe`), through the same limits and backoff.
        Its result is not a scheduled one: it feeds backoff and `last`, not the metrics.
        `time_limit` shortens the probe's own (a scrape's timeout). A paused account's
        job gets its last result (or what the pause says), never a login."""
        paused = self.backoff.paused_in(self.config, kind, target)
        if paused:
            last = self.last.get(f"{kind}:{target}")
            return last if last is not None else self.backoff.paused_result(kind, target,
                                                                            paused[0])
        result = await run_probe(kind, target, self.config, registry=self.registry,
                                 transcript=transcript, time_limit=time_limit,
                                 runtime=self.runtime)
        if f"{kind}:{target}" in self.jobs:
            self._record(kind, target, result)
        return result

    def resume_backoff(self, specs: list[JobSpec]) -> None:
        """After a restart or reload: saved backoffs go on (daemon/backoff.py), and end
        as soon as their credentials turn out to have changed."""
        jobs = [(s.kind, s.target) for s in specs]
        for saved in self.backoff.resume(self.config, jobs, self._reset_backoff):
            if saved.job_id in self.jobs:
                self.restore_backoff(saved.job_id, saved.exponent, saved.run_in)

    def _reset_backoff(self, kind: str, target: str) -> None:
        if f"{kind}:{target}" in self.jobs:
            self.restore_backoff(f"{kind}:{target}", 0, 0.0)  # new credentials: run now

    def _jobs_of(self, account: str) -> list[Job]:
        return [job for job in self.jobs.values()
                if account in {a.name for a in self._accounts_of(self.config, job.spec.kind,
                                                                  job.spec.target)}]

    def _set_paused(self, account: str, paused: bool, why: str) -> None:
        """Pause (or resume) every job of the account; a resumed one runs now."""
        if not paused:
            self.backoff.unpause(account)
        jobs = self._jobs_of(account)
        for job in jobs:
            self.hooks.paused(job.spec.kind, job.spec.target, paused)
            if not paused and self.aps.get_job(job.spec.job_id) is not None:
                self.restore_backoff(job.spec.job_id, 0, 0.0)
        if paused:
            log.warning("logins_paused", account=account, reason=why,
                        after=self.config.defaults.auth_pause_after,
                        jobs=[j.spec.job_id for j in jobs],
                        note="no more logins until its secret or its config changes "
                        "([defaults] auth_pause_after), so the provider does not lock it")
        else:
            log.info("logins_resumed", account=account, reason=why,
                     jobs=[j.spec.job_id for j in jobs])

    def mark_paused(self) -> None:
        """After the saved pauses are loaded (a restart): their jobs show as paused."""
        for account in list(self.backoff.paused):
            for job in self._jobs_of(account):
                self.hooks.paused(job.spec.kind, job.spec.target, True)

    async def _watch_paused(self) -> None:
        """A paused account resumes soon after its secret changes (the job itself may be
        backed off for hours)."""
        while True:
            await asyncio.sleep(PAUSE_CHECK_SECONDS)
            if not self.backoff.paused:
                continue
            try:
                changed = await self.backoff.secrets_changed(self.config)
            except Exception as exc:  # never let the watch die with the daemon running
                log.warning("pause_check_failed", error=f"{type(exc).__name__}: {exc}")
                continue
            for name in changed:
                self._set_paused(name, False, "the secret changed")

    def restore_backoff(self, job_id: str, exponent: int, run_in: float) -> None:
        """Put a job on a saved backoff (or none): its schedule and its factor."""
        job = self.jobs[job_id]
        kind, target = job.spec.kind, job.spec.target
        self.backoff.set(kind, target, exponent)
        interval = job.spec.interval * self.backoff.factor(kind, target)
        self._schedule(job.spec, interval, min(max(run_in, 0.0), interval))
        self.hooks.backoff(kind, target, float(self.backoff.factor(kind, target)))

    def effective_interval(self, kind: str, target: str) -> float:
        job = self.jobs.get(f"{kind}:{target}")
        return job.spec.interval * self.backoff.factor(kind, target) if job else 0.0

    async def stop(self, grace: float) -> int:
        """Stop scheduling, give running probes `grace` seconds, cancel the rest."""
        self.stopping = True
        if self._pause_watch is not None:
            self._pause_watch.cancel()
        if self.aps.running:
            self.aps.pause()  # no new runs; shutdown() would cancel the running ones at once
        running = list(self.running)
        cancelled = 0
        if running:
            _done, pending = await asyncio.wait(running, timeout=grace)
            for task in pending:
                task.cancel()
                cancelled += 1
            if pending:
                await asyncio.wait(pending, timeout=2.0)
        if self.aps.running:
            self.aps.shutdown(wait=False)
        return cancelled
