"""The daemon at fleet scale on the real test bed, with a real Prometheus scraping it.

    python bench/fleet.py --accounts 1000 --interval 60s --minutes 3
    python bench/fleet.py --accounts 10000 --interval 5m --minutes 6

Starts a test bed with N users (Dovecot passwd-file, Postfix texthash maps), a daemon with
N accounts (imap + smtp each) plus `--routes` round trips (every `--route-interval`), and a
Prometheus scraping /metrics every 15 s. Samples the daemon's CPU and RSS and the bed's
CPU (Dovecot and Postfix processes, children included) every 10 s; at the end reads the
schedule lag histogram, skipped runs, probe counts and failures from /metrics, times
`--scrapes` sequential scrapes, and asks Prometheus for its own scrape duration and
sample count. Prints one JSON summary.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from mailcanary.testbed import MailTestBed, ensure_installed  # noqa: E402  (after sys.path)
from mailcanary.testbed.users import TestBedUser  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")
PASSWORD = "Fleet-pw-7c1e-Qx9"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def cpu_seconds(pid: int, *, children: bool = False) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    used = int(fields[11]) + int(fields[12])  # utime, stime
    if children:
        used += int(fields[13]) + int(fields[14])  # cutime, cstime (reaped children)
    return used / TICKS


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def bed_cpu(bed: MailTestBed) -> float:
    """CPU of the bed's live processes plus what their masters reaped (children that ended)."""
    return sum(cpu_seconds(pid, children=True) for pid in bed.pids())


def write_config(bed: MailTestBed, root: Path, args: argparse.Namespace, port: int) -> Path:
    pw = root / "pw"
    pw.write_text(PASSWORD + "\n")
    pw.chmod(0o600)
    parts = [
        f'[daemon]\nlisten = "127.0.0.1:{port}"\nstate_dir = "{root / "state"}"\n'
        f"max_connections_per_server = {args.per_server}\n"
        f"max_concurrent_probes = {args.global_slots}\n",
        f'[defaults]\ninterval = "{args.interval}"\ntimeout = "{args.timeout}"\n',
    ]
    imap = f'{{ host = "127.0.0.1", port = {bed.imaps_port}, security = "tls" }}'
    smtp = f'{{ host = "127.0.0.1", port = {bed.submission_port}, security = "starttls" }}'
    for user in bed.users:
        parts.append(
            f'[[accounts]]\nname = "{user.name}"\naddress = "{user.address}"\n'
            f'username = "{user.name}"\npassword_file = "{pw}"\nca_file = "{bed.ca_pem}"\n'
            f"imap = {imap}\nsmtp = {smtp}\n"
        )
    names = [u.name for u in bed.users]
    for i in range(args.routes):
        src, dst = names[(2 * i) % len(names)], names[(2 * i + 1) % len(names)]
        parts.append(
            f'[[routes]]\nname = "r{i:03d}"\nfrom = "{src}"\nto = "{dst}"\n'
            f'interval = "{args.route_interval}"\ndeadline = "60s"\nslo = "30s"\n'
        )
    path = root / "fleet.toml"
    path.write_text("\n".join(parts))
    return path


def scrape(port: int) -> tuple[str, float]:
    start = time.perf_counter()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=60) as resp:
        body = resp.read().decode()
    return body, time.perf_counter() - start


def samples(text: str, name: str) -> list[tuple[str, float]]:
    out = []
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            head, _, value = line.rpartition(" ")
            out.append((head, float(value)))
    return out


def lag_summary(text: str) -> dict[str, Any]:
    """p50/p99 by linear interpolation inside the bucket (as histogram_quantile does), and
    the smallest bucket bound that holds every run (max <= it)."""
    buckets = []
    for head, value in samples(text, "mailcanary_schedule_lag_seconds_bucket"):
        le = head.split('le="', 1)[1].split('"', 1)[0]
        buckets.append((float("inf") if le == "+Inf" else float(le), value))
    buckets.sort()
    total = buckets[-1][1] if buckets else 0.0

    def quantile(q: float) -> float | None:
        if not total:
            return None
        rank, low, below = q * total, 0.0, 0.0
        for bound, count in buckets:
            if count >= rank:
                if bound == float("inf"):
                    return low
                return low + (bound - low) * (rank - below) / max(count - below, 1e-9)
            low, below = bound, count
        return None

    max_le = next((b for b, c in buckets if c >= total), None)
    return {"runs": total, "p50_seconds": quantile(0.5), "p99_seconds": quantile(0.99),
            "max_at_most_seconds": max_le}


def prometheus_query(url: str, expr: str) -> list[dict[str, Any]]:
    query = urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(f"{url}/api/v1/query?{query}", timeout=30) as resp:
        doc: dict[str, Any] = json.loads(resp.read())
    result: list[dict[str, Any]] = doc["data"]["result"]
    return result


def start_prometheus(root: Path, daemon_port: int) -> tuple[subprocess.Popen[bytes], str]:
    binary = shutil.which("prometheus")
    if binary is None:
        raise SystemExit("prometheus is not installed")
    port = free_port()
    conf = root / "prometheus.yml"
    conf.write_text(
        "global:\n  scrape_interval: 15s\n  scrape_timeout: 10s\nscrape_configs:\n"
        f"  - job_name: mailcanary\n    static_configs:\n"
        f"      - targets: ['127.0.0.1:{daemon_port}']\n"
    )
    log = (root / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [binary, f"--config.file={conf}", f"--storage.tsdb.path={root / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=subprocess.STDOUT,
    )
    return proc, f"http://127.0.0.1:{port}"


def run(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    users = [TestBedUser(f"u{i:05d}", PASSWORD) for i in range(args.accounts)]
    bed = MailTestBed(root / "bed", users)
    started_bed = time.monotonic()
    bed.start()
    bed_start = time.monotonic() - started_bed
    prom = None
    try:
        port = free_port()
        config = write_config(bed, root, args, port)
        env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
        log = (root / "daemon.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "mailcanary", "run", "--config", str(config)],
            stdout=log, stderr=subprocess.STDOUT, env=env,
        )
        prom, prom_url = start_prometheus(root, port)
        time.sleep(args.warmup)
        bed0, cpu0, t0 = bed_cpu(bed), cpu_seconds(proc.pid), time.monotonic()
        text0, _ = scrape(port)
        probes0 = sum(v for _, v in samples(text0, "mailcanary_probes_total"))
        rss = []
        while time.monotonic() - t0 < args.minutes * 60:
            time.sleep(10)
            rss.append(rss_mib(proc.pid))
            print(json.dumps({"t": round(time.monotonic() - t0), "rss_mib": round(rss[-1], 1),
                              "cpu_s": round(cpu_seconds(proc.pid) - cpu0, 2)}),
                  file=sys.stderr, flush=True)
        wall = time.monotonic() - t0
        cpu, bed_used = cpu_seconds(proc.pid) - cpu0, bed_cpu(bed) - bed0
        timed = []
        for _ in range(args.scrapes):
            time.sleep(1.1)  # past the 1 s cache: each scrape is a fresh render
            timed.append(scrape(port))
        text = timed[-1][0]
        probes = sum(v for _, v in samples(text, "mailcanary_probes_total")) - probes0
        failures: dict[str, float] = {}
        for head, value in samples(text, "mailcanary_probe_failures_total"):
            reason = head.split('reason="', 1)[1].split('"', 1)[0]
            failures[reason] = failures.get(reason, 0) + value
        prom_scrape = prometheus_query(prom_url, "max_over_time(scrape_duration_seconds[5m])")
        prom_samples = prometheus_query(prom_url, "scrape_samples_scraped")
        proc.send_signal(signal.SIGTERM)
        stop_code = proc.wait(60)
        log.close()
    finally:
        if prom is not None:
            prom.terminate()
            prom.wait(10)
        bed.stop()
    per_target = len(samples(text, "mailcanary_probe_success"))
    return {
        "accounts": args.accounts, "interval": args.interval, "routes": args.routes,
        "route_interval": args.route_interval, "minutes_measured": round(wall / 60, 2),
        "warmup_seconds": args.warmup, "bed_start_seconds": round(bed_start, 1),
        "max_connections_per_server": args.per_server,
        "schedule_lag": lag_summary(text),
        "skipped_runs": sum(v for _, v in samples(text, "mailcanary_probe_skipped_total")),
        "probes_run": probes, "failures_by_reason": failures,
        "daemon_cpu_share_of_one_core": round(cpu / wall, 4),
        "daemon_cpu_ms_per_probe": round(1000 * cpu / probes, 3) if probes else None,
        "daemon_rss_mib_max": round(max(rss), 1), "daemon_rss_mib_last": round(rss[-1], 1),
        "scrape_bytes": len(text.encode()), "scrape_series": sum(
            1 for line in text.splitlines() if line and not line.startswith("#")),
        "targets": per_target,
        "scrape_seconds": sorted(round(t, 4) for _, t in timed),
        "prometheus_scrape_duration_max_seconds": [float(r["value"][1]) for r in prom_scrape],
        "prometheus_samples_scraped": [float(r["value"][1]) for r in prom_samples],
        "bed_cpu_share_of_one_core": round(bed_used / wall, 4),
        "bed_cpu_ms_per_probe": round(1000 * bed_used / probes, 3) if probes else None,
        "daemon_exit": stop_code,
        "machine": f"{os.cpu_count()} cores, Python {platform.python_version()}",
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--interval", default="60s")
    parser.add_argument("--timeout", default="20s")
    parser.add_argument("--routes", type=int, default=100)
    parser.add_argument("--route-interval", default="5m")
    parser.add_argument("--minutes", type=float, default=3)
    parser.add_argument("--warmup", type=float, default=30, help="seconds before measuring")
    parser.add_argument("--scrapes", type=int, default=5)
    parser.add_argument("--per-server", type=int, default=16)
    parser.add_argument("--global-slots", type=int, default=64)
    args = parser.parse_args()
    ensure_installed()
    with tempfile.TemporaryDirectory(prefix="mcf-") as tmp:
        summary = run(args, Path(tmp))
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
