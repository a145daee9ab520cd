"""The whole daemon's CPU per login probe against the bare asyncio+ssl floor, side by side.

    python bench/daemon_floor.py --accounts 1000 --interval 60s --minutes 4 [--vs-src DIR]

Issue 15's target: daemon CPU per login probe <= 1.5x the floor, measured over the whole
daemon process at 1,000 accounts (scheduling, logging, metrics, backoff, the web server
answering a real Prometheus: everything in). One test bed with N users; two processes probe
the same N accounts (IMAP over TLS and SMTP with STARTTLS, each every `--interval`, spread
over the interval, at most `--per-server` at once) at the same time, so a neighbour's load
hits them alike (`--vs-src DIR` adds a third: another checkout's daemon, for before/after):

- the daemon: `mailcanary run` with N accounts, JSON log lines to a file, scraped by a real
  Prometheus every 15 s;
- the floor: one process of bare asyncio + ssl doing the same protocol work as
  bench/floor.py (greeting, LOGIN, EXAMINE, LOGOUT; EHLO, STARTTLS, EHLO, AUTH PLAIN, QUIT)
  on the same schedule (the same spread, on the daemon's 100 ms grid of due times), with
  one cached SSLContext.

After `--warmup` seconds each process's CPU (utime + stime from /proc) and its finished
probes are read at the start and end of the window; the ratio is CPU per probe of the daemon
over CPU per probe of the floor. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import fleet  # noqa: E402  (a sibling script: its bed, config writer and scraper)
import outage  # noqa: E402
from floor import bare_imap, bare_smtp, cpu_model  # noqa: E402

from mailcanary.config.types import parse_duration  # noqa: E402
from mailcanary.daemon.scheduler import START_GRID as GRID  # noqa: E402
from mailcanary.testbed import MailTestBed, ensure_installed  # noqa: E402
from mailcanary.testbed.users import TestBedUser  # noqa: E402


async def floor_worker(args: argparse.Namespace) -> None:
    """Probe every account on the daemon's schedule; keep `count` and CPU in a file."""
    tls = ssl.create_default_context(cafile=args.ca)
    slots = asyncio.Semaphore(args.per_server)
    interval, timeout = parse_duration(args.interval), parse_duration(args.timeout)
    users = [f"u{i:05d}" for i in range(args.accounts)]
    done = {"count": 0, "errors": 0}
    loop = asyncio.get_running_loop()

    base = loop.time() + 1.0

    async def one(kind: str, user: str, offset: float) -> None:
        due = base + offset
        while True:
            await asyncio.sleep(max(0.0, due - loop.time()))
            async with slots:
                try:
                    if kind == "imap":
                        await asyncio.wait_for(bare_imap(args.host, args.imaps, tls, user,
                                                         fleet.PASSWORD), timeout)
                    else:
                        await asyncio.wait_for(bare_smtp(args.host, args.submission, tls, user,
                                                         fleet.PASSWORD), timeout)
                except (TimeoutError, OSError, RuntimeError, ssl.SSLError):
                    done["errors"] += 1
            done["count"] += 1
            due += interval

    step = interval / (2 * len(users))  # spread like the daemon, on its 100 ms grid
    tasks = [asyncio.create_task(one(kind, user, round((2 * i + k) * step / GRID) * GRID))
             for i, user in enumerate(users) for k, kind in enumerate(("imap", "smtp"))]
    stats = Path(args.stats)
    while True:
        await asyncio.sleep(1)
        tmp = stats.with_suffix(".tmp")
        tmp.write_text(json.dumps(done))
        tmp.replace(stats)
        if all(t.done() for t in tasks):  # never: a crash shows as a stalled count
            break


def floor_count(stats: Path) -> dict[str, int]:
    try:
        doc: dict[str, int] = json.loads(stats.read_text())
    except (OSError, ValueError):
        return {"count": 0, "errors": 0}
    return doc


def start_daemon(bed: MailTestBed, root: Path, args: argparse.Namespace, src: Path,
                 ) -> tuple[subprocess.Popen[bytes], int]:
    root.mkdir()
    port = fleet.free_port()
    config = fleet.write_config(bed, root, args, port)
    env = dict(os.environ, PYTHONPATH=str(src))
    log = (root.parent / f"{root.name}.log").open("wb")  # not beside the config: see fleet.py
    return subprocess.Popen(
        [sys.executable, "-m", "mailcanary", "run", "--config", str(config)],
        stdout=log, stderr=subprocess.STDOUT, env=env), port


def probes_done(port: int) -> tuple[float, float]:
    text, _ = fleet.scrape(port)
    return (sum(v for _, v in outage.series(text, "mailcanary_probes_total")),
            sum(v for _, v in outage.series(text, "mailcanary_probe_failures_total")))


def run(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    users = [TestBedUser(f"u{i:05d}", fleet.PASSWORD) for i in range(args.accounts)]
    bed = MailTestBed(root / "bed", users)
    bed.start()
    args.routes = 0
    sources = {"daemon": BENCH.parent / "src"}
    if args.vs_src:
        sources["baseline_daemon"] = Path(args.vs_src).resolve() / "src"
    procs: list[subprocess.Popen[bytes]] = []
    try:
        daemons = {name: start_daemon(bed, root / name, args, src)
                   for name, src in sources.items()}
        procs += [proc for proc, _ in daemons.values()]
        stats = root / "floor.json"
        floor = subprocess.Popen(
            [sys.executable, __file__, "--floor-worker", "--accounts", str(args.accounts),
             "--interval", args.interval, "--timeout", args.timeout,
             "--per-server", str(args.per_server), "--host", bed.host,
             "--imaps", str(bed.imaps_port), "--submission", str(bed.submission_port),
             "--ca", str(bed.ca_pem), "--stats", str(stats)],
            env=dict(os.environ, PYTHONPATH=str(BENCH.parent / "src")))
        procs.append(floor)
        procs.append(fleet.start_prometheus(root, *(port for _, port in daemons.values()))[0])
        time.sleep(args.warmup)
        start = {name: (fleet.cpu_seconds(proc.pid), probes_done(port)[0])
                 for name, (proc, port) in daemons.items()}
        f_cpu0, f0, t0 = fleet.cpu_seconds(floor.pid), floor_count(stats), time.monotonic()
        time.sleep(args.minutes * 60)
        f_cpu, f1 = fleet.cpu_seconds(floor.pid) - f_cpu0, floor_count(stats)
        out: dict[str, Any] = {}
        for name, (proc, port) in daemons.items():
            cpu = fleet.cpu_seconds(proc.pid) - start[name][0]
            done, failures = probes_done(port)
            probes = done - start[name][1]
            out[name] = {"src": str(sources[name]), "probes": probes, "failures_total": failures,
                         "cpu_s": round(cpu, 2), "rss_mib": round(fleet.rss_mib(proc.pid), 1),
                         "cpu_ms_per_probe": round(1000 * cpu / probes, 3) if probes else None}
        wall = time.monotonic() - t0
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(60)
        bed.stop()
    f_probes = f1["count"] - f0["count"]
    f_ms = 1000 * f_cpu / f_probes if f_probes else float("nan")
    for row in (r for r in out.values() if r["cpu_ms_per_probe"]):
        row["ratio_to_floor"] = round(row["cpu_ms_per_probe"] / f_ms, 3)
    return {
        "accounts": args.accounts, "interval": args.interval, "minutes_measured":
        round(wall / 60, 2), "warmup_seconds": args.warmup, **out,
        "floor": {"probes": f_probes, "errors": f1["errors"], "cpu_s": round(f_cpu, 2),
                  "cpu_ms_per_probe": round(f_ms, 3)},
        "machine": f"{os.cpu_count()} cores, {cpu_model()}, Python "
                   f"{platform.python_version()}",
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--interval", default="60s")
    parser.add_argument("--timeout", default="20s")
    parser.add_argument("--minutes", type=float, default=4)
    parser.add_argument("--warmup", type=float, default=75, help="seconds before measuring")
    parser.add_argument("--per-server", type=int, default=16)
    parser.add_argument("--global-slots", type=int, default=64)
    parser.add_argument("--vs-src", help="another checkout: its daemon runs beside, same bed")
    parser.add_argument("--floor-worker", action="store_true", help=argparse.SUPPRESS)
    for name in ("--host", "--ca", "--stats"):
        parser.add_argument(name, help=argparse.SUPPRESS)
    for name in ("--imaps", "--submission"):
        parser.add_argument(name, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.floor_worker:
        asyncio.run(floor_worker(args))
        return 0
    ensure_installed()
    with tempfile.TemporaryDirectory(prefix="mailcanary-daemon-floor-") as tmp:
        print(json.dumps(run(args, Path(tmp))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
