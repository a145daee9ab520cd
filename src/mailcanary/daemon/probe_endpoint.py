"""`GET /probe?probe=KIND&target=NAME`: Prometheus's multi-target exporter pattern.

As with blackbox_exporter, Prometheus passes the target in the URL (relabelled from a
static list) and the answer describes one probe run now: ``probe_success``,
``probe_duration_seconds`` and, on failure, ``mailcanary_probe_failure_info{class,reason,
phase} 1``. The run goes through the daemon's connection limits and backoff; a target in
auth backoff gets its last result (``mailcanary_probe_cached 1``), never a new login, so
scraping cannot lock an account. A roundtrip or inbound target (a canary sent, a trigger
called) is run by /probe at most once per its interval; sooner requests get that run's
result, also with ``mailcanary_probe_cached 1``. Parallel requests for one target share one
run. ``X-Prometheus-Scrape-Timeout-Seconds`` (less half a second, as blackbox_exporter does)
bounds the run; ``debug=true`` answers the run's transcript (secrets masked), its result and
its metrics as text. These runs are not the scheduled ones: `/metrics` keeps showing the
last scheduled probe.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Mapping
from urllib.parse import parse_qs

from mailcanary.daemon.scheduler import ProbeScheduler
from mailcanary.daemon.shards import hashmod
from mailcanary.diagnosis import classify
from mailcanary.result import ProbeResult

TEXT = "text/plain; charset=utf-8"
EXPOSITION = "text/plain; version=0.0.4; charset=utf-8"


# Kinds whose run has side effects (a canary sent, a trigger called): at most one /probe
# run per interval; sooner requests get the last result.
ONCE_PER_INTERVAL = frozenset({"roundtrip", "inbound"})
TIMEOUT_OFFSET = 0.5  # like blackbox_exporter: leave Prometheus time to read the answer
SCRAPE_TIMEOUT = "x-prometheus-scrape-timeout-seconds"


class BadProbeRequest(ValueError):
    pass


class ProbeEndpoint:
    def __init__(self, scheduler: ProbeScheduler) -> None:
        self.scheduler = scheduler
        self.inflight: dict[str, asyncio.Task[ProbeResult]] = {}
        self.runs: dict[str, tuple[float, ProbeResult]] = {}  # job -> (monotonic start, result)

    async def answer(self, query: str, headers: Mapping[str, str]) -> tuple[int, str, bytes]:
        try:
            kind, target, debug = self._parse(query)
            bound = _scrape_bound(headers)
        except BadProbeRequest as exc:
            return 400, TEXT, f"{exc}\n".encode()
        result, cached = await self._result(kind, target, bound)
        metrics = exposition(result, cached=cached)
        if debug:
            return 200, TEXT, debug_text(result, metrics, cached=cached).encode()
        return 200, EXPOSITION, metrics.encode()

    def _parse(self, query: str) -> tuple[str, str, bool]:
        params = parse_qs(query, keep_blank_values=True)
        kind = (params.get("probe") or [""])[0]
        target = (params.get("target") or [""])[0]
        debug = (params.get("debug") or ["false"])[0].lower()
        if not kind or not target:
            raise BadProbeRequest("/probe needs ?probe=KIND&target=NAME")
        if debug not in ("true", "false", "1", "0"):
            raise BadProbeRequest("debug= takes true or false")
        registry = self.scheduler.registry
        if kind not in registry:
            raise BadProbeRequest(
                f"unknown probe {kind!r} (probes: {', '.join(sorted(registry))})"
            )
        if f"{kind}:{target}" not in self.scheduler.jobs:
            shard = self.scheduler.shard
            if shard is not None and not shard.owns(target):
                raise BadProbeRequest(
                    f"target {target!r} belongs to shard {hashmod(target, shard.count)}/"
                    f"{shard.count}, not to this daemon's {shard}"
                )
            raise BadProbeRequest(f"no {kind} probe for target {target!r} in the config")
        return kind, target, debug in ("true", "1")

    async def _result(self, kind: str, target: str,
                      bound: float | None) -> tuple[ProbeResult, bool]:
        job_id = f"{kind}:{target}"
        last = self.scheduler.last.get(job_id)
        if last is not None and self.scheduler.backoff.active(kind, target):
            return self._fresher(job_id, last), True
        ran = self.runs.get(job_id)
        if kind in ONCE_PER_INTERVAL and ran is not None and \
                time.monotonic() - ran[0] < self.scheduler.effective_interval(kind, target):
            return ran[1], True
        task = self.inflight.get(job_id)
        if task is None:
            task = asyncio.ensure_future(self._run(kind, target, bound))
            self.inflight[job_id] = task
            task.add_done_callback(lambda _t: self.inflight.pop(job_id, None))
        try:
            async with asyncio.timeout(bound):  # joined a longer run: this scrape's own bound
                return await asyncio.shield(task), False
        except TimeoutError as exc:
            fail = classify(exc, None)
            return ProbeResult(kind, target, False, fail.cls, fail.reason, None,
                               f"no result within the scrape's {bound:g} s", "",
                               bound or 0.0, {}), False

    async def _run(self, kind: str, target: str, bound: float | None) -> ProbeResult:
        started = time.monotonic()
        result = await self.scheduler.run_now(kind, target, time_limit=bound, transcript=True)
        self.runs[f"{kind}:{target}"] = (started, result)
        return result

    def _fresher(self, job_id: str, last: ProbeResult) -> ProbeResult:
        """The scheduled result, or the newer /probe one (which has a transcript)."""
        ran = self.runs.get(job_id)
        return ran[1] if ran is not None and ran[1].finished_at >= last.finished_at else last


def _scrape_bound(headers: Mapping[str, str]) -> float | None:
    raw = headers.get(SCRAPE_TIMEOUT)
    if raw is None:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        raise BadProbeRequest(f"{SCRAPE_TIMEOUT}: not a number") from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise BadProbeRequest(f"{SCRAPE_TIMEOUT}: must be a positive number")
    return max(seconds - TIMEOUT_OFFSET, seconds / 2) if seconds > TIMEOUT_OFFSET else seconds


def debug_text(result: ProbeResult, metrics: str, *, cached: bool) -> str:
    """Like blackbox_exporter's debug=true: the conversation, then what a scrape gets."""
    runs = "the last run (cached: no new run was made)" if cached else "this run"
    transcript = "\n".join(result.transcript) or "(no transcript kept for this run)"
    return (
        f"Transcript of {runs} (secrets masked):\n{transcript}\n\n"
        f"Result:\n{json.dumps(result.as_json(), indent=1)}\n\n"
        f"Metrics that would have been returned:\n{metrics}"
    )


def exposition(result: ProbeResult, *, cached: bool) -> str:
    lines = [
        "# HELP probe_success 1 if the probe succeeded, 0 if it failed.",
        "# TYPE probe_success gauge",
        f"probe_success {1 if result.ok else 0}",
        "# HELP probe_duration_seconds How long the probe took.",
        "# TYPE probe_duration_seconds gauge",
        f"probe_duration_seconds {result.duration_seconds!r}",
        "# HELP mailcanary_probe_cached 1 if this is an earlier result and no new run was made "
        "(a target in auth backoff; a roundtrip or inbound target run less than its interval "
        "ago), else 0.",
        "# TYPE mailcanary_probe_cached gauge",
        f"mailcanary_probe_cached {1 if cached else 0}",
    ]
    if not result.ok:
        lines += [
            "# HELP mailcanary_probe_failure_info Why the probe failed (always 1).",
            "# TYPE mailcanary_probe_failure_info gauge",
            f'mailcanary_probe_failure_info{{class="{result.cls}",reason="{result.reason}",'
            f'phase="{result.phase or ""}"}} 1',
        ]
    return "\n".join(lines) + "\n"
