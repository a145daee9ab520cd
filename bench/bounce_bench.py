"""What the bounce watch costs, and how soon a bounce ends a round trip (run by hand, as root)

    python bench/bounce_bench.py [--count 10]

One DeliverabilityBed (Postfix relays remote.test to a refusing SMTP server here). In one
run, interleaved: round trips alice -> bob whose sender has IMAP (the bounce watch: a
second session) and whose sender has none (the baseline), so the same load hits both;
then round trips to refused addresses (a 550 at RCPT, a 451 until the queue gives up
after 3 s), timed from start to verdict. Reports medians: wall time and this process's
CPU per round trip.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.helpers.carrier import carrier_server
from tests.helpers.support import account, endpoint, password_file, write_config

from mailcanary.config import load_config  # after the path tweak
from mailcanary.logsetup import configure_logging
from mailcanary.probes.runner import run_probe
from mailcanary.testbed import ensure_installed
from mailcanary.testbed.deliverability import DeliverabilityBed


def config_for(bed: DeliverabilityBed, tmp: Path, to: str, sender_imap: bool) -> Path:
    tmp.mkdir(parents=True, exist_ok=True)
    imap = endpoint(bed.host, bed.imaps_port, "tls")
    pw_a = password_file(tmp, bed.user("alice").password, name="pw-a")
    pw_b = password_file(tmp, bed.user("bob").password, name="pw-b")
    alice = account("alice", password_file=pw_a, ca_file=bed.ca_pem, timeout="10s",
                    imap=imap if sender_imap else None,
                    smtp=endpoint(bed.host, bed.submission_port, "starttls"))
    far = account("far", password_file=pw_b, ca_file=bed.ca_pem, timeout="10s",
                  address=to, username="bob", imap=imap)
    route = '\n[[routes]]\nname = "r"\nfrom = "alice"\nto = "far"\ndeadline = "30s"\n'
    return write_config(tmp, alice, far, extra=route)


async def one(path: Path) -> tuple[float, float, str]:
    config = load_config(path)
    wall, cpu = time.perf_counter(), time.process_time()
    result = await run_probe("roundtrip", "r", config)
    return time.perf_counter() - wall, time.process_time() - cpu, result.reason


async def main(count: int) -> None:
    configure_logging("error")
    ensure_installed()
    with tempfile.TemporaryDirectory() as tmpdir, carrier_server() as (port, _):
        tmp = Path(tmpdir)
        bed = DeliverabilityBed(tmp / "bed", relays={"remote.test": port})
        bed.start()
        try:
            cases = {
                "inbox, sender with IMAP (bounce watch)": config_for(
                    bed, tmp / "w", "bob@example.test", True),
                "inbox, sender without IMAP (baseline)": config_for(
                    bed, tmp / "n", "bob@example.test", False),
                "550 at RCPT -> bounce": config_for(bed, tmp / "u", "unknown@remote.test", True),
                "451 until the queue gives up (3 s) -> bounce": config_for(
                    bed, tmp / "d", "defer@remote.test", True),
            }
            runs: dict[str, list[tuple[float, float, str]]] = {k: [] for k in cases}
            for _ in range(count):
                for name, path in cases.items():
                    runs[name].append(await one(path))
        finally:
            bed.stop()
    print(f"{platform.node()}: {platform.processor() or platform.machine()}, "
          f"{count} round trips each, interleaved")
    for name, got in runs.items():
        reasons = sorted({r for _, _, r in got})
        print(f"  {name:48s} wall {statistics.median(w for w, _, _ in got):7.3f} s  "
              f"cpu {1000 * statistics.median(c for _, c, _ in got):6.1f} ms  {reasons}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=10)
    asyncio.run(main(parser.parse_args().count))
