"""CPU per domain check against a real NSD: what 1,000 domains an hour cost.

Run by hand (root: the MX servers bind 127.x.y.z:25, the policy server :443):
    python bench/domain_bench.py [N]

The test world of tests/helpers/domains.py (NSD, aiosmtpd MX servers with STARTTLS, an
HTTPS MTA-STS policy server) runs in a child process, so the CPU measured here (this
process, all its threads: pyspf's worker included) is mailcanary's alone; NSD's is its own.
N checks of good.dom.test with every check on (two MX, SPF with an include, DMARC, a DKIM
key, MTA-STS with its HTTPS fetch, TLS-RPT, two sending IPs on one zone) run 20 at a time;
every run asks the servers anew (mailcanary caches no DNS answer between runs), so N runs
of one domain cost what N domains do. Then each check alone, for the breakdown.

Baseline in the same run: the same number of DNS queries sent with dnspython alone (the
floor of any checker that asks the same questions), so the ratio is what the checks add.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.helpers.domains import GOOD_IP, World, domain_world

from mailcanary.config import Config, config_from_dict
from mailcanary.config.domains import CHECKS
from mailcanary.logsetup import configure_logging
from mailcanary.probes.runner import run_probe
from mailcanary.protocols.dns import Dns

CONCURRENCY = 20


def serve(conn: Connection) -> None:
    with tempfile.TemporaryDirectory() as root, domain_world(Path(root)) as world:
        conn.send(world)
        conn.recv()  # until the parent is done


def make_config(world: World, checks: list[str]) -> Config:
    return config_from_dict({
        "daemon": {"nameservers": [world.nameserver], "state_dir": tempfile.gettempdir()},
        "domains": [{"name": "d", "domain": "good.dom.test", "ca_file": str(world.ca_pem),
                     "sending_ips": [GOOD_IP, "198.51.100.7"], "dkim_selectors": ["s1"],
                     "dnsbl": ["bl.dom.test"], "checks": checks, "timeout": "10s"}]})


async def measure(n: int, job: Any) -> tuple[float, float]:
    """(CPU seconds, wall seconds) per job, `CONCURRENCY` at a time."""
    sem = asyncio.Semaphore(CONCURRENCY)

    async def one() -> None:
        async with sem:
            await job()

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(one() for _ in range(n)))
    return (time.process_time() - cpu) / n, (time.perf_counter() - wall) / n


async def main(n: int, world: World) -> None:
    full = make_config(world, list(CHECKS))
    first = await run_probe("domain", "d", full, transcript=False)
    assert first.ok, first.as_json()

    async def domain_job(config: Config = full) -> None:
        result = await run_probe("domain", "d", config, transcript=False)
        assert result.ok, result.as_json()

    await measure(20, domain_job)  # warm up: TLS contexts, imports
    queries = await count_queries(world)
    dns = Dns([world.nameserver])
    names = [("good.dom.test", "MX"), ("good.dom.test", "TXT"), ("mx1.good.dom.test", "A"),
             ("mx1.good.dom.test", "AAAA"), ("_dmarc.good.dom.test", "TXT")]

    async def floor_job() -> None:
        for i in range(queries):
            await dns.query(*names[i % len(names)])

    floor_cpu, _ = await measure(n, floor_job)
    cpu, wall = await measure(n, domain_job)
    print(f"{n} domain checks (all {len(CHECKS)} checks, {queries} DNS queries each), "
          f"{CONCURRENCY} at a time")
    print(f"  CPU per domain check      {cpu * 1000:8.2f} ms   (wall {wall * 1000:.2f} ms)")
    print(f"  floor: {queries} bare queries  {floor_cpu * 1000:8.2f} ms   "
          f"ratio {cpu / floor_cpu:.2f}x")
    print(f"  1,000 domains per hour    {cpu * 1000 / 3600 * 100:8.3f} % of one core")
    for check in CHECKS:
        config = make_config(world, [check])
        per, _ = await measure(max(n // 4, 10), lambda c=config: domain_job(c))
        print(f"    {check:8s} alone        {per * 1000:8.2f} ms")


async def count_queries(world: World) -> int:
    """DNS queries one full run makes (ours plus pyspf's, counted at the resolver)."""
    import dns.asyncresolver  # noqa: PLC0415
    import dns.resolver  # noqa: PLC0415

    counted = [0]
    originals = (dns.asyncresolver.Resolver.resolve, dns.resolver.Resolver.resolve)

    async def counting_async(self: Any, *args: Any, **kw: Any) -> Any:
        counted[0] += 1
        return await originals[0](self, *args, **kw)

    def counting(self: Any, *args: Any, **kw: Any) -> Any:
        counted[0] += 1
        return originals[1](self, *args, **kw)

    dns.asyncresolver.Resolver.resolve = counting_async  # type: ignore[method-assign]
    dns.resolver.Resolver.resolve = counting  # type: ignore[method-assign]
    try:
        await run_probe("domain", "d", make_config(world, list(CHECKS)), transcript=False)
    finally:
        dns.asyncresolver.Resolver.resolve, dns.resolver.Resolver.resolve = originals  # type: ignore[method-assign]
    return counted[0]


if __name__ == "__main__":
    configure_logging("error")
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    parent, child = multiprocessing.Pipe()
    server = multiprocessing.Process(target=serve, args=(child,), daemon=True)
    server.start()
    try:
        asyncio.run(main(count, parent.recv()))
    finally:
        parent.send("stop")
        server.join(10)
