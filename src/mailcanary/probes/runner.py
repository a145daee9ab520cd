"""Runs one probe: timeout, timing, classification and the one outcome log line.

`run_probe` never raises (except for cancellation of the caller itself, and `SlotsFull`
for a run that asked to be turned away rather than queue behind a full server: it never
reached the server, so it has no result): whatever a probe does, including a bug, comes
back as a `ProbeResult`, so one account can never stop another. Its connections take the
slots of its runtime's limits (the daemon's or `check`'s).
"""

from __future__ import annotations

import asyncio
import time
import traceback

import structlog

from mailcanary.config import Config
from mailcanary.diagnosis import Failure, classify, failure
from mailcanary.probes import PROBES
from mailcanary.probes.doctor import consult
from mailcanary.probes.kind import ProbeKind
from mailcanary.protocols.limits import (
    SlotsFull,
    SlotTimeout,
    holding,
    release_held,
    waits_outside,
)
from mailcanary.protocols.runtime import Runtime
from mailcanary.result import ProbeContext, ProbeResult

log = structlog.get_logger("mailcanary.probe")


async def run_probe(
    kind: str,
    target: str,
    config: Config,
    *,
    registry: dict[str, ProbeKind] | None = None,
    transcript: bool = True,
    time_limit: float | None = None,
    runtime: Runtime | None = None,
    low_priority: bool = False,
    may_skip: bool = False,
) -> ProbeResult:
    """`transcript=False` (the daemon) skips building and redacting the conversation;
    `time_limit` (a /probe scrape's) shortens the probe's own. `runtime`: what this probe
    shares with the others of its daemon or `check` run; None (tests, benchmarks): a
    runtime of its own, with the config's limits. `low_priority` (a job in backoff) waits
    for a server's slot behind the others; `may_skip` (a scheduled run) raises `SlotsFull`
    instead of waiting when too many probes already wait for it (`protocols.slots`)."""
    if runtime is None:
        runtime = Runtime.for_config(config)
    with holding(runtime.limits, low_priority=low_priority, may_skip=may_skip):
        return await _run(kind, target, config, (registry or PROBES)[kind],
                          transcript=transcript, time_limit=time_limit, runtime=runtime)


async def _run(kind: str, target: str, config: Config, probe: ProbeKind, *,
               transcript: bool, time_limit: float | None, runtime: Runtime) -> ProbeResult:
    ctx = ProbeContext(probe=kind, target=target, keep_transcript=transcript, runtime=runtime)
    start = time.perf_counter()
    fail: Failure | None = None
    queued = False  # no slot within the wait's bound: it never reached the server
    try:
        limit = probe.timeout(config, target)
        limit = limit if time_limit is None else min(limit, time_limit)
        async with asyncio.timeout(limit) as deadline:
            with waits_outside(deadline, slot_budget(probe, config, target, limit, time_limit)):
                await probe.run(ctx, config, target)
    except TimeoutError as exc:
        fail = classify(exc, ctx.current_phase, ctx.where)
        queued = isinstance(exc, SlotTimeout)
        words = str(exc) if queued else \
            f"no answer within {limit:g} s (phase {ctx.current_phase})"
        fail = Failure(fail.cls, fail.reason, words, fail.hint)
    except SlotsFull:
        raise  # turned away before it reached the server: a skipped run, not a result
    except Exception as exc:
        fail = classify(exc, ctx.current_phase, ctx.where)
        log_exception(ctx, exc, fail.reason)
    duration = time.perf_counter() - start
    if fail is not None and probe.doctor and not queued:  # a wrong port? the doctor says
        release_held()  # the probe's connection is over: waiting for the doctor holds no slot
        fail = await consult(ctx, config, fail)
    if fail is None:
        fail = failure("ok", "", ctx.where)
        phase = None
    else:
        phase = ctx.current_phase
    result = ProbeResult(
        probe=kind,
        target=target,
        ok=fail.cls == "ok",
        cls=fail.cls,
        reason=fail.reason,
        phase=phase,
        detail=ctx.redact(fail.detail),
        hint=ctx.redact(fail.hint),
        duration_seconds=duration,
        phases=dict(ctx.phases),
        tls=ctx.tls,
        extra=ctx.extra,
        transcript=ctx.transcript.lines,
    )
    log_result(result)
    return result


def slot_budget(probe: ProbeKind, config: Config, target: str, limit: float,
                time_limit: float | None) -> float:
    """How long a probe may wait for connection slots with its timeout stopped: until its
    next run is due less its timeout (at least the timeout), so it ends before that run.
    A scrape's `time_limit` is a hard one: there the wait counts in the timeout (0)."""
    if time_limit is not None:
        return 0.0
    return max(limit, probe.interval(config, target) - limit)


def log_exception(ctx: ProbeContext, exc: BaseException, reason: str) -> None:
    """Our own bug: the traceback at level error; a server's odd reply: at debug. Either
    way the text is redacted, since an exception may quote what was sent."""
    if reason not in ("internal_error", "protocol_error") or isinstance(exc, OSError):
        return
    trace = ctx.redact("".join(traceback.format_exception(exc)))
    if reason == "internal_error":
        log.error("internal_error", probe=ctx.probe, target=ctx.target, traceback=trace)
    else:
        log.debug("probe_exception", probe=ctx.probe, target=ctx.target, traceback=trace)


def log_result(result: ProbeResult) -> None:
    """The canonical line: one per probe, everything needed to grep an incident."""
    fields = {
        "probe": result.probe,
        "target": result.target,
        "ok": result.ok,
        "class": result.cls,
        "reason": result.reason,
        "phase": result.phase,
        "duration_seconds": round(result.duration_seconds, 4),
        "phases": {k: round(v, 4) for k, v in result.phases.items()},
    }
    if not result.ok:
        fields["detail"] = result.detail
    for key in ("placement", "delivery_seconds"):
        if key in result.extra:
            fields[key] = result.extra[key]
    if result.ok:
        log.info("probe", **fields)
    else:
        log.warning("probe", **fields)
