"""How close is the delivery time an inbound watch reports to the true one? (by hand, as root)

    python bench/inbound_bench.py [--count 100]

Starts a test bed (Dovecot + Postfix) and, in a child process, the tests' small web app
(`tests/helpers/mailapp.py`): its ``/delay`` endpoint answers at once and then sends the
verification mail through Postfix, as an app that queues a mail job does. Each run
triggers it and watches dave's INBOX over IMAPS. The truth is the receiver's Maildir file
(its mtime, when Dovecot's LMTP finished writing it, and the microsecond time in its name)
against the wall time of the trigger's response. CPU: this process's CPU time per inbound
run (the app and the mail servers run in other processes), with a round trip alice -> bob
in the same run as the baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import re
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.roundtrip_bench import machine, percentile  # after the path tweak

from mailcanary.config import Config, load_config
from mailcanary.logsetup import configure_logging
from mailcanary.probes import PROBES
from mailcanary.probes.inbound.finder import Found
from mailcanary.probes.inbound.probe import triggered
from mailcanary.probes.inbound.trigger import TriggerResponse
from mailcanary.probes.runner import run_probe
from mailcanary.result import ProbeContext
from mailcanary.testbed import MailTestBed, ensure_installed

_NAME_TIME = re.compile(r"^(\d+)\.M(\d+)P")


def serve_app(bed: MailTestBed, ports: Any) -> None:
    """The web app, in its own process (its CPU is not the watch's)."""
    from tests.helpers.mailapp import mail_app  # noqa: PLC0415  # only in the child process

    async def main() -> None:
        async with mail_app(bed, delay=0.0) as app:
            ports.put(app.port)
            await asyncio.sleep(3600)

    asyncio.run(main())


def write_config(bed: MailTestBed, root: Path, app_port: int) -> Path:
    lines = ["[daemon]", f'state_dir = "{root / "state"}"', ""]
    for name in ("alice", "bob", "dave"):
        secret = root / f"pw-{name}"
        secret.write_text(bed.user(name).password + "\n")
        secret.chmod(0o600)
        lines += [
            "[[accounts]]", f'name = "{name}"', f'address = "{bed.user(name).address}"',
            f'password_file = "{secret}"', f'ca_file = "{bed.ca_pem}"', 'timeout = "10s"',
            f'imap = {{ host = "{bed.host}", port = {bed.imaps_port}, security = "tls" }}',
            f'smtp = {{ host = "{bed.host}", port = {bed.submission_port}, '
            'security = "starttls" }', "",
        ]
    lines += ["[[routes]]", 'name = "alice-to-bob"', 'from = "alice"', 'to = "bob"', "",
              "[[inbound]]", 'name = "signup"', 'account = "dave"', 'interval = "10ms"',
              'deadline = "30s"', 'slo = "10s"',
              'match = { subject = "verify", body = "token\\\\s+{token}" }',
              f'trigger = {{ url = "http://127.0.0.1:{app_port}/delay", '
              'body = \'{"email": "{address}", "token": "{token}"}\' }', ""]
    path = root / "mailcanary.toml"
    path.write_text("\n".join(lines))
    return path


def find_file(maildir: Path, token: str) -> Path | None:
    needle = token.encode()
    for sub in ("new", "cur"):
        for entry in os.scandir(maildir / sub):
            with open(entry.path, "rb") as fh:  # a tiny local file
                if needle in fh.read(8192):
                    return Path(entry.path)
    return None


async def one(config: Config, bed: MailTestBed) -> dict[str, Any]:
    truth: dict[str, float] = {}

    async def seen(found: Found, response: TriggerResponse) -> None:
        token = found.raw.split(b"Token ", 1)[1].split()[0].decode()
        path = find_file(bed.maildir("dave"), token)
        assert path is not None, "message not in dave's Maildir"
        truth["mtime"] = path.stat().st_mtime_ns / 1e9 - response.responded_wall
        m = _NAME_TIME.match(path.name)
        if m:
            truth["name"] = int(m.group(1)) + int(m.group(2)) / 1e6 - response.responded_wall

    async def run(ctx: ProbeContext, cfg: Config, target: str) -> None:
        await triggered(ctx, cfg, cfg.inbound_watch(target), after_seen=seen)

    kind = PROBES["inbound"]
    registry = {"inbound": replace(kind, run=run)}
    cpu = time.process_time()
    result = await run_probe("inbound", "signup", config, registry=registry)
    cpu = time.process_time() - cpu
    if not result.ok:
        raise SystemExit(f"inbound run failed: {result.as_json()}")
    return {"reported": result.extra["delivery_seconds"], "cpu": cpu,
            "commands": result.extra["imap_commands"], **truth}


async def baseline(config: Config) -> float:
    cpu = time.process_time()
    result = await run_probe("roundtrip", "alice-to-bob", config)
    if not result.ok:
        raise SystemExit(f"round trip failed: {result.as_json()}")
    return time.process_time() - cpu


def report(rows: list[dict[str, Any]], base: list[float]) -> None:
    print(f"machine: {machine()}")
    print(f"inbound runs: {len(rows)} (app /delay -> Postfix -> dave, IMAPS IDLE + checks)")
    for key, label in (("name", "Maildir file name time (us)"), ("mtime", "Maildir file mtime")):
        errors = [r["reported"] - r[key] for r in rows if key in r]
        if not errors:
            continue
        abs_err = [abs(e) for e in errors]
        true_median = statistics.median(r[key] for r in rows if key in r)
        print(f"  truth = {label}: true delivery median {true_median*1000:.1f} ms; "
              f"|error| median {statistics.median(abs_err)*1000:.1f} ms, "
              f"p95 {percentile(abs_err, 95)*1000:.1f} ms, max {max(abs_err)*1000:.1f} ms; "
              f"signed median {statistics.median(errors)*1000:+.1f} ms")
    reported = [r["reported"] for r in rows]
    print(f"  reported delivery: median {statistics.median(reported)*1000:.1f} ms, "
          f"p95 {percentile(reported, 95)*1000:.1f} ms")
    cpu = statistics.median(r["cpu"] for r in rows)
    base_cpu = statistics.median(base)
    print(f"  CPU per inbound run: median {cpu*1000:.1f} ms; round trip (baseline, same run): "
          f"{base_cpu*1000:.1f} ms; ratio {cpu / base_cpu:.2f}")
    commands = [r["commands"] for r in rows]
    print(f"  IMAP commands per run: median {statistics.median(commands):g}, "
          f"min {min(commands)}, max {max(commands)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--baseline-count", type=int, default=30)
    args = parser.parse_args()
    configure_logging("error")
    ensure_installed()
    with tempfile.TemporaryDirectory(prefix="mailcanary-bench-") as tmp:
        root = Path(tmp)
        bed = MailTestBed(root / "bed")
        bed.start()
        ports: Any = multiprocessing.Queue()
        app = multiprocessing.Process(target=serve_app, args=(bed, ports), daemon=True)
        app.start()
        try:
            config = load_config(write_config(bed, root, ports.get(timeout=10)))
            asyncio.run(one(config, bed))  # warm-up: first login, first delivery
            rows = [asyncio.run(one(config, bed)) for _ in range(args.count)]
            base = [asyncio.run(baseline(config)) for _ in range(args.baseline_count)]
        finally:
            app.terminate()
            app.join(5)
            bed.stop()
    report(rows, base)


if __name__ == "__main__":
    main()
