"""The daemon overloaded: probes time out and are cancelled by the thousand (issue 15's fd bug).

    python bench/overload.py --accounts 1500 --interval 30s --timeout 3s --busy 2 --minutes 2

Starts the test bed with N users, `--busy` busy-loop processes beside it (so Dovecot and
Postfix answer slowly and probes hit their timeout mid-handshake), and a daemon with N
accounts (imap + smtp each). Scrapes /metrics every `--scrape-every` seconds and counts
the scrapes that fail (reset, refused, timed out), then sends SIGTERM and times the exit
(SIGKILL after `--kill-after` seconds). Prints one JSON summary: results by reason,
internal errors, failed scrapes, seconds to stop, tracebacks in the daemon's log.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from fleet import PASSWORD, ROOT, free_port, samples, write_config

from mailcanary.testbed import MailTestBed, ensure_installed
from mailcanary.testbed.users import TestBedUser


def scrape_once(port: int) -> str | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
            body: str = resp.read().decode()
            return body
    except Exception as exc:  # any failure is a failed scrape
        print(json.dumps({"scrape_failed": repr(exc)[:200]}), file=sys.stderr, flush=True)
        return None


def run(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    users = [TestBedUser(f"u{i:05d}", PASSWORD) for i in range(args.accounts)]
    bed = MailTestBed(root / "bed", users)
    bed.start()
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
            for _ in range(args.busy)]
    try:
        port = free_port()
        config = write_config(bed, root, args, port)
        env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
        log_path = root / "logs" / "daemon.log"  # not beside the config: see fleet.py
        log_path.parent.mkdir()
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "mailcanary", "run", "--config", str(config)],
                stdout=log, stderr=subprocess.STDOUT, env=env,
            )
            time.sleep(3)
            scrapes = failed = 0
            text = ""
            t0 = time.monotonic()
            while time.monotonic() - t0 < args.minutes * 60:
                time.sleep(args.scrape_every)
                scrapes += 1
                body = scrape_once(port)
                if body is None:
                    failed += 1
                else:
                    text = body
            proc.send_signal(signal.SIGTERM)
            stopping = time.monotonic()
            try:
                code: int | None = proc.wait(args.kill_after)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                code = None
            stop_seconds = time.monotonic() - stopping
        daemon_log = log_path.read_text(errors="replace")
    finally:
        for p in busy:
            p.kill()
            p.wait()
        bed.stop()
    by_reason: dict[str, int] = {}
    for line in daemon_log.splitlines():
        with contextlib.suppress(ValueError):
            entry = json.loads(line)
            if isinstance(entry, dict) and entry.get("event") == "probe":
                reason = str(entry.get("reason") or "ok")
                by_reason[reason] = by_reason.get(reason, 0) + 1
    return {
        "accounts": args.accounts, "interval": args.interval, "timeout": args.timeout,
        "busy_processes": args.busy, "minutes": args.minutes,
        "probes_logged": sum(by_reason.values()),
        "probes_in_last_scrape": sum(v for _, v in samples(text, "mailcanary_probes_total")),
        "results_by_reason": by_reason,
        "internal_error": by_reason.get("internal_error", 0),
        "scrapes": scrapes, "scrapes_failed": failed,
        "stop_seconds": round(stop_seconds, 2), "exit_code": code,
        "killed": code is None,
        "log_tracebacks": daemon_log.count("Traceback"),
        "log_fd_in_use": daemon_log.count("is used by transport"),
        "machine": f"{os.cpu_count()} cores, Python {platform.python_version()}",
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--accounts", type=int, default=1500)
    parser.add_argument("--interval", default="30s")
    parser.add_argument("--timeout", default="3s")
    parser.add_argument("--busy", type=int, default=2)
    parser.add_argument("--minutes", type=float, default=2)
    parser.add_argument("--scrape-every", type=float, default=8)
    parser.add_argument("--kill-after", type=float, default=90)
    parser.add_argument("--per-server", type=int, default=16)
    parser.add_argument("--global-slots", type=int, default=64)
    args = parser.parse_args()
    args.routes, args.route_interval = 0, "5m"
    ensure_installed()
    with tempfile.TemporaryDirectory(prefix="mco-") as tmp:
        summary = run(args, Path(tmp))
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
