"""The settings doctor: after a login probe fails in a way a wrong port or security explains,
find the setting on the same host that works, and say it.

The candidates (diagnosis/doctor.py) are tried in parallel, each started `STAGGER` seconds
after the previous one (as Thunderbird's account-setup guesser does) or as soon as the ones
before it have answered, within
min(the probe's timeout, `MAX_SECONDS`); each speaks only as far as the greeting and a
verified TLS handshake (protocols/candidates.py), never a credential.

A dead server fails hundreds of targets at once. So the search is coalesced per endpoint
(protocol, host, port, security, ca_file) in the runtime (protocols/runtime.py): one search
in flight, every other failed probe of that endpoint awaits its answer, which is then kept
for `DOCTOR_TTL` (and forgotten at a reload). Each candidate connection takes connection
slots like a probe's (its server's, then a global one) and uses the runtime's resolver
cache; the failed probe gives its own slots back before it asks.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ssl
import time

import structlog

from mailcanary.config import Config
from mailcanary.diagnosis import Failure
from mailcanary.diagnosis.doctor import (
    Candidate,
    best,
    candidates,
    qualifies,
    rank,
    suggestion_hint,
)
from mailcanary.protocols.candidates import speaks
from mailcanary.protocols.runtime import Runtime, runtime_of
from mailcanary.protocols.tls import TLSSource, tls_context
from mailcanary.result import ProbeContext

log = structlog.get_logger("mailcanary.doctor")

STAGGER = 0.1
MAX_SECONDS = 5.0


async def _try(runtime: Runtime, protocol: str, host: str, cand: Candidate,
               tls: TLSSource) -> bool:
    try:
        return await speaks(runtime, protocol, host, cand.port, cand.security, tls=tls)
    except (OSError, ssl.SSLError, EOFError, ValueError, asyncio.IncompleteReadError,
            asyncio.LimitOverrunError):
        return False


def _decided(
    order: list[Candidate], results: dict[Candidate, bool]
) -> tuple[bool, Candidate | None]:
    """(done, answer): done once the best-ranked candidate not yet failed has answered yes."""
    for cand in sorted(order, key=lambda c: rank(c, order)):
        if cand not in results:
            return False, None
        if results[cand]:
            return True, cand
    return True, None


async def find_setting(runtime: Runtime, protocol: str, host: str, port: int, security: str,
                       *, tls: TLSSource, budget: float) -> Candidate | None:
    """The best working other setting for host, or None (none works within `budget`)."""
    order = candidates(protocol, port, security)
    results: dict[Candidate, bool] = {}
    # Candidate i starts STAGGER seconds after candidate i-1, or as soon as i candidates
    # have answered: never more than a few connections at once, no idle wait either.
    turn = [asyncio.Event() for _ in order]
    turn[0].set()

    async def attempt(i: int, cand: Candidate) -> bool:
        # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation that
        # arrives as the event fires, and the candidate would then connect regardless.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(i * STAGGER):
                await turn[i].wait()
        try:
            return await _try(runtime, protocol, host, cand, tls)
        finally:
            answered = sum(t.done() for t in tasks) + 1
            if answered < len(turn):
                turn[answered].set()

    tasks: dict[asyncio.Future[bool], Candidate] = {}
    for i, c in enumerate(order):
        tasks[asyncio.ensure_future(attempt(i, c))] = c
    try:
        async with asyncio.timeout(budget):
            pending = set(tasks)
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    results[tasks[task]] = task.result()
                finished, answer = _decided(order, results)
                if finished:
                    return answer
    except TimeoutError:
        pass
    finally:
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=1.0)  # bounded even if one ignored its cancel
    return best([c for c, ok in results.items() if ok], order)


async def consult(ctx: ProbeContext, config: Config, fail: Failure) -> Failure:
    """`fail`, with the suggestion in its hint (and ctx.extra) when another setting works.
    Only for kinds that say `doctor=True` (the runner asks). Never raises: the doctor is
    advice, a problem in it must not change the probe's result."""
    kind, target = ctx.probe, ctx.target
    if not qualifies(fail.reason, ctx.current_phase):
        return fail
    runtime = runtime_of(ctx)
    try:
        account = config.account(target)
        endpoint = getattr(account, kind)
        if endpoint is None:
            return fail
        host, port, security = endpoint.host, endpoint.effective_port, endpoint.security or "tls"
        # Built when a candidate's TCP connection is up: a dead host loads no trust store.
        tls = functools.partial(tls_context, account.ca_file)
        budget = min(config.timeout_of(account), MAX_SECONDS)

        async def search() -> Candidate | None:
            start = time.perf_counter()
            found = await find_setting(runtime, kind, host, port, security, tls=tls,
                                       budget=budget)
            log.info("doctor", probe=kind, target=target, server=f"{host}:{port}",
                     seconds=round(time.perf_counter() - start, 4),
                     suggestion=found.as_json() if found else None)
            return found

        key = (kind, host.lower(), port, security, str(account.ca_file))
        cand = await runtime.doctor.get(key, search)
    except Exception:  # advice only: log the bug, keep the probe's own result
        log.error("doctor_failed", probe=kind, target=target, exc_info=True)
        return fail
    if cand is None:
        return fail
    ctx.extra["suggestion"] = cand.as_json()
    ctx.transcript.note("*", f"doctor: {endpoint.host} port {cand.port} works with security "
                             f"{cand.security} (greeting and verified TLS, no login)")
    return Failure(fail.cls, fail.reason, fail.detail, suggestion_hint(kind, endpoint.host, cand))
