"""The `domain` probe kind: the checks of one `[[domains]]` entry, in one result.

The MX lookup comes first (mx_tls and mta_sts need the hosts); then every other selected
check runs at once, each within the probe's timeout less a margin, so one slow check still
leaves the others' verdicts. The result carries them all in `checks`; the first failing one
in the contract's order raises, and so decides class, reason, detail and phase.

This module and the checks' (dnspython, pyspf, dkimpy, httpx) load on the first run
(kind.py imports it then): a `check` of other kinds does not pay for them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from mailcanary.config import Config
from mailcanary.diagnosis import DomainCheckFailed, Where, classify
from mailcanary.probes.domain.run import DomainRun, Outcome, failed, timeout
from mailcanary.result import ProbeContext

MARGIN = 1.0  # seconds of the timeout kept for collecting the verdicts

Check = Callable[[DomainRun], Awaitable[Outcome]]


def _checks() -> dict[str, Check]:
    from mailcanary.probes.domain import dnsbl, mta_sts, mx, policy, spf  # noqa: PLC0415

    return {"mx_tls": mx.check_mx_tls, "spf": spf.check_spf, "dmarc": policy.check_dmarc,
            "dkim": policy.check_dkim, "mta_sts": mta_sts.check_mta_sts,
            "tls_rpt": policy.check_tls_rpt, "dnsbl": dnsbl.check_dnsbl}


async def probe(ctx: ProbeContext, config: Config, target: str) -> None:
    from mailcanary.probes.domain.mx import lookup_mx  # noqa: PLC0415
    from mailcanary.protocols.dns import Dns  # noqa: PLC0415

    entry = config.domain(target)
    ctx.where = Where(entry.domain, 25, "smtp")
    limit = timeout(config, target)
    budget = max(limit - MARGIN, limit * 0.8)
    dns = Dns(config.daemon.nameservers, lifetime=min(5.0, budget / 2))
    run = DomainRun(ctx, entry, dns, budget)
    verdicts: dict[str, Outcome] = {}
    if {"mx", "mx_tls", "mta_sts"} & set(entry.checks):
        start = time.perf_counter()
        verdicts["mx"] = await _guarded(run, lookup_mx)
        ctx.phases["dns"] = ctx.phases.get("dns", 0.0) + time.perf_counter() - start
        if not verdicts["mx"].ok:
            run.mx_failure = verdicts["mx"]
    table = _checks()
    names = [name for name in entry.checks if name != "mx"]
    outcomes = await asyncio.gather(*(_guarded(run, table[name]) for name in names))
    verdicts.update(zip(names, outcomes, strict=True))
    ordered = [(name, verdicts[name]) for name in entry.checks]
    ctx.extra["checks"] = {name: outcome.as_json() for name, outcome in ordered}
    for name, outcome in ordered:
        if not outcome.ok:
            ctx.current_phase = outcome.phase
            raise DomainCheckFailed(outcome.reason, f"{name}: {outcome.detail}", outcome.hint)


async def _guarded(run: DomainRun, check: Check) -> Outcome:
    """One check's Outcome, also when it raises or overruns (our bugs still raise)."""
    try:
        async with asyncio.timeout(run.budget):
            return await check(run)
    except TimeoutError:
        return failed("timeout", f"no answer within {run.budget:g} s")
    except Exception as exc:
        fail = classify(exc, "dns", run.ctx.where)
        if fail.reason == "internal_error":
            raise
        return failed(fail.reason, fail.detail)
