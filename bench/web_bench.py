"""The web server's per-request cost: /healthz cached vs built per request, and a
basic-auth scrape with the bcrypt verdict cached vs checked each time.

    python bench/web_bench.py [--targets 10000] [--requests 20]

In-process, real sockets: a WebServer over a MetricsState of N targets (each with a last
result, as in a running daemon) answers sequential GETs from httpx. Reported: the event
loop's busy time per request (time spent in handlers, measured by the loop's own clock,
not the client's) and wall time per request; ratios come from the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import bcrypt
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from prometheus_client import CollectorRegistry  # noqa: E402

from mailcanary.config.webconfig import WebConfig  # noqa: E402
from mailcanary.daemon import webauth  # noqa: E402
from mailcanary.daemon.metrics import MetricsState  # noqa: E402
from mailcanary.daemon.web import CachedExposition, WebServer  # noqa: E402
from mailcanary.result import ProbeResult  # noqa: E402


def state_of(targets: int) -> MetricsState:
    state = MetricsState()
    for i in range(targets):
        state.ensure("imap", f"acct{i:05d}", ("invalid_credentials",))
        state.record(ProbeResult("imap", f"acct{i:05d}", True, "ok", "", None, "", "", 0.05,
                                 {"auth": 0.01}))
    return state


def health_of(state: MetricsState) -> Any:
    """The shape of Daemon.health: one dict per target, sorted."""
    def health(summary: bool) -> tuple[bool, dict[str, Any]]:
        if summary:
            return True, {"status": "ok", "targets": len(state.targets)}
        targets = []
        for s in sorted(state.targets.values(), key=lambda s: (s.target, s.probe)):
            last = s.last
            targets.append({"probe": s.probe, "target": s.target,
                            "ok": None if last is None else last.ok,
                            "class": None if last is None else last.cls,
                            "reason": None if last is None else last.reason,
                            "phase": None if last is None else last.phase,
                            "finished_at": None if last is None else last.finished_at,
                            "backoff_factor": s.backoff})
        return True, {"status": "ok", "targets": targets}
    return health


async def timed(server: WebServer, path: str, requests: int,
                auth: tuple[str, str] | None = None) -> dict[str, float]:
    async with httpx.AsyncClient(timeout=60) as client:
        url = f"http://127.0.0.1:{server.port}{path}"
        await client.get(url, auth=auth)  # warm: the first render / check
        cpu0, wall0 = time.thread_time(), time.perf_counter()
        for _ in range(requests):
            response = await client.get(url, auth=auth)
            assert response.status_code == 200, response.status_code
        cpu, wall = time.thread_time() - cpu0, time.perf_counter() - wall0
    return {"cpu_ms_per_request": 1000 * cpu / requests,
            "wall_ms_per_request": 1000 * wall / requests}


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--targets", type=int, default=10000)
    parser.add_argument("--requests", type=int, default=20)
    args = parser.parse_args()
    state = state_of(args.targets)
    out: dict[str, Any] = {"targets": args.targets, "requests": args.requests}
    for name, max_age in (("healthz_uncached", 0.0), ("healthz_cached", 1.0)):
        server = WebServer(CachedExposition(state, CollectorRegistry()), health_of(state))
        server.health.max_age = max_age
        await server.start("127.0.0.1", 0)
        out[name] = await timed(server, "/healthz", args.requests)
        await server.stop()
    password = "bench-Password-1"
    users = {"prom": bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=10))}
    for name, cache in (("auth_uncached", 0), ("auth_cached", webauth.CACHE_SIZE)):
        webauth.CACHE_SIZE = cache
        server = WebServer(CachedExposition(MetricsState(), CollectorRegistry()),
                           health_of(MetricsState()), web=WebConfig(users=users))
        await server.start("127.0.0.1", 0)
        # thread_time counts only the loop's thread: bcrypt runs in a worker, so wall time
        # is the figure here (what a scrape waits), CPU in the loop the other.
        out[name] = await timed(server, "/healthz?summary", args.requests, ("prom", password))
        await server.stop()
    for key in ("healthz", "auth"):
        unc, cac = out[f"{key}_uncached"], out[f"{key}_cached"]
        out[f"{key}_wall_ratio_uncached_to_cached"] = round(
            unc["wall_ms_per_request"] / cac["wall_ms_per_request"], 1)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    asyncio.run(main())
