"""Soak: the daemon's RSS and CPU with 20 accounts on the test bed.

    python bench/daemon_soak.py [--minutes 10] [--accounts 20] [--interval 30s]

Starts a test bed, writes a config of N accounts (the bed's 4 users reused under different
names, each with imap and smtp probes), runs `mailcanary run` and samples
/proc/PID/status VmRSS and /proc/PID/stat utime+stime every 10 s. Prints a JSON summary,
then SIGTERMs the daemon and reports how long the stop took.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from mailcanary.testbed import MailTestBed, ensure_installed  # noqa: E402  (after sys.path)

TICKS = os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def cpu_seconds(pid: int) -> float:
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def write_config(bed: MailTestBed, root: Path, accounts: int, interval: str, port: int) -> Path:
    secrets = root / "secrets"
    secrets.mkdir()
    users = ["alice", "bob", "carol", "dave"]
    lines = [
        f'[daemon]\nlisten = "127.0.0.1:{port}"\nstate_dir = "{root / "state"}"\n',
        f'[defaults]\ninterval = "{interval}"\ntimeout = "10s"\n',
    ]
    for i in range(accounts):
        user = users[i % len(users)]
        pw = secrets / f"acc{i:02d}"
        pw.write_text(bed.user(user).password + "\n")
        pw.chmod(0o600)
        lines.append(
            f'[[accounts]]\nname = "acc{i:02d}-{user}"\naddress = "{user}@example.test"\n'
            f'username = "{user}"\npassword_file = "{pw}"\nca_file = "{bed.ca_pem}"\n'
            f'imap = {{ host = "127.0.0.1", port = {bed.imaps_port}, security = "tls" }}\n'
            f'smtp = {{ host = "127.0.0.1", port = {bed.submission_port}, '
            'security = "starttls" }\n'
        )
    path = root / "mailcanary.toml"
    path.write_text("\n".join(lines))
    return path


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--accounts", type=int, default=20)
    parser.add_argument("--interval", default="30s")
    parser.add_argument("--every", type=float, default=10, help="seconds between samples")
    args = parser.parse_args()
    ensure_installed()
    with tempfile.TemporaryDirectory(prefix="mailcanary-soak-") as tmp:
        root = Path(tmp)
        bed = MailTestBed(root / "bed")
        bed.start()
        try:
            port = free_port()
            config = write_config(bed, root, args.accounts, args.interval, port)
            env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
            (root / "logs").mkdir(exist_ok=True)  # not beside the config: see fleet.py
            log = (root / "logs" / "daemon.log").open("wb")
            proc = subprocess.Popen(
                [sys.executable, "-m", "mailcanary", "run", "--config", str(config)],
                stdout=log, stderr=subprocess.STDOUT, env=env,
            )
            started = time.monotonic()
            samples = []
            end = started + args.minutes * 60
            while time.monotonic() < end:
                time.sleep(args.every)
                samples.append({
                    "t": round(time.monotonic() - started, 1),
                    "rss_kib": rss_kib(proc.pid),
                    "cpu_s": round(cpu_seconds(proc.pid), 3),
                })
                print(json.dumps(samples[-1]), flush=True)
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics") as resp:
                scrape = resp.read().decode()
            probes = sum(
                float(line.rsplit(" ", 1)[1]) for line in scrape.splitlines()
                if line.startswith("mailcanary_probes_total{")
            )
            failed = sum(
                float(line.rsplit(" ", 1)[1]) for line in scrape.splitlines()
                if line.startswith("mailcanary_probe_failures_total{")
            )
            stop_start = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(30)
            stop_seconds = time.monotonic() - stop_start
            log.close()
        finally:
            bed.stop()
    first, last = samples[0], samples[-1]
    wall = last["t"] - first["t"]
    summary = {
        "accounts": args.accounts,
        "probes_per_interval": args.accounts * 2,
        "interval": args.interval,
        "minutes": round((last["t"]) / 60, 2),
        "rss_mib_first": round(first["rss_kib"] / 1024, 1),
        "rss_mib_last": round(last["rss_kib"] / 1024, 1),
        "rss_mib_max": round(max(s["rss_kib"] for s in samples) / 1024, 1),
        "cpu_seconds_total": last["cpu_s"],
        "cpu_percent_steady": round(100 * (last["cpu_s"] - first["cpu_s"]) / wall, 3)
        if wall > 0 else None,
        "probes_run": probes,
        "probes_failed": failed,
        "exit_code": code,
        "stop_seconds": round(stop_seconds, 3),
    }
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
