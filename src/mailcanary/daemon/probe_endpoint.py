"""`GET /probe?probe=KIND&target=NAME`: Prometheus's multi-target exporter pattern.

As with blackbox_exporter, Prometheus passes the target in the URL (relabelled from a
static list) and the answer describes one probe run now: ``probe_success``,
``probe_duration_seconds`` and, on failure, ``mailcanary_probe_failure_info{class,reason,
phase} 1``. The run goes through the daemon's connection limits and backoff; a target in
auth backoff gets its last result (``mailcanary_probe_cached 1``), never a new login, so
scraping cannot lock an account. Parallel requests for one target share one run. These
runs are not the scheduled ones: `/metrics` keeps showing the last scheduled probe.
"""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qs

from mailcanary.daemon.scheduler import ProbeScheduler
from mailcanary.daemon.shards import hashmod
from mailcanary.result import ProbeResult

TEXT = "text/plain; charset=utf-8"
EXPOSITION = "text/plain; version=0.0.4; charset=utf-8"


class BadProbeRequest(ValueError):
    pass


class ProbeEndpoint:
    def __init__(self, scheduler: ProbeScheduler) -> None:
        self.scheduler = scheduler
        self.inflight: dict[str, asyncio.Task[ProbeResult]] = {}

    async def answer(self, query: str) -> tuple[int, str, bytes]:
        try:
            kind, target = self._parse(query)
        except BadProbeRequest as exc:
            return 400, TEXT, f"{exc}\n".encode()
        result, cached = await self._result(kind, target)
        return 200, EXPOSITION, exposition(result, cached=cached).encode()

    def _parse(self, query: str) -> tuple[str, str]:
        params = parse_qs(query, keep_blank_values=True)
        kind = (params.get("probe") or [""])[0]
        target = (params.get("target") or [""])[0]
        if not kind or not target:
            raise BadProbeRequest("/probe needs ?probe=KIND&target=NAME")
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
        return kind, target

    async def _result(self, kind: str, target: str) -> tuple[ProbeResult, bool]:
        job_id = f"{kind}:{target}"
        last = self.scheduler.last.get(job_id)
        if last is not None and self.scheduler.backoff.active(kind, target):
            return last, True
        task = self.inflight.get(job_id)
        if task is None:
            task = asyncio.ensure_future(self.scheduler.run_now(kind, target))
            self.inflight[job_id] = task
            task.add_done_callback(lambda _t: self.inflight.pop(job_id, None))
        return await asyncio.shield(task), False


def exposition(result: ProbeResult, *, cached: bool) -> str:
    lines = [
        "# HELP probe_success 1 if the probe succeeded, 0 if it failed.",
        "# TYPE probe_success gauge",
        f"probe_success {1 if result.ok else 0}",
        "# HELP probe_duration_seconds How long the probe took.",
        "# TYPE probe_duration_seconds gauge",
        f"probe_duration_seconds {result.duration_seconds!r}",
        "# HELP mailcanary_probe_cached 1 if this is the last result of a target in auth "
        "backoff (no new login was made), else 0.",
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
