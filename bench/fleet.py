"""The daemon at fleet scale on the real test bed, with a real Prometheus scraping it.

    python bench/fleet.py --accounts 1000 --interval 60s --minutes 3
    python bench/fleet.py --accounts 10000 --interval 5m --minutes 6
    python bench/fleet.py --accounts 10000 --interval 5m --minutes 11 --outage 5000 \
        --outage-after 300

Starts a test bed with N users (Dovecot passwd-file, Postfix texthash maps), a daemon with
N accounts (imap + smtp each) plus `--routes` round trips (every `--route-interval`), and a
Prometheus scraping /metrics every 15 s. Samples the daemon's CPU and RSS and the bed's
CPU (Dovecot and Postfix processes, children included) every 10 s; at the end reads the
schedule lag histogram, skipped runs, probe counts and failures from /metrics, times
`--scrapes` sequential scrapes, and asks Prometheus for its own scrape duration and
sample count. Prints one JSON summary.

With `--outage N`, `--outage-after` seconds into the measurement the server starts refusing
the last N accounts' passwords, IMAP and SMTP AUTH alike, with Dovecot's 2 s failure delay
(bench/outage.py says how); the summary's "outage" part has the window before and the one
during the outage (lag from the histogram's delta, skipped runs, probes, failures, CPU, RSS,
state-file writes, Prometheus's scrape duration), whether exactly those N accounts failed
`auth`, how many jobs back off, and backoff.json / alerts.json after the daemon stopped.
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
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import outage  # noqa: E402  (bench/, beside this file)
from outage import prometheus_query, series  # noqa: E402

from mailcanary.testbed import MailTestBed, ensure_installed  # noqa: E402  (after sys.path)
from mailcanary.testbed.users import TestBedUser  # noqa: E402

samples = series  # the name bench/overload.py and older notes use

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


def lag_summary(text: str) -> dict[str, Any]:
    return outage.lag_summary(outage.lag_buckets(text))


def start_prometheus(root: Path, *daemon_ports: int) -> tuple[subprocess.Popen[bytes], str]:
    """A real Prometheus scraping every given daemon every 15 s, as in production."""
    binary = shutil.which("prometheus")
    if binary is None:
        raise SystemExit("prometheus is not installed")
    port = free_port()
    targets = ", ".join(f"'127.0.0.1:{p}'" for p in daemon_ports)
    conf = root / "prometheus.yml"
    conf.write_text(
        "global:\n  scrape_interval: 15s\n  scrape_timeout: 10s\nscrape_configs:\n"
        f"  - job_name: mailcanary\n    static_configs:\n"
        f"      - targets: [{targets}]\n"
    )
    log = (root / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [binary, f"--config.file={conf}", f"--storage.tsdb.path={root / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=subprocess.STDOUT,
    )
    return proc, f"http://127.0.0.1:{port}"


def mark(proc: subprocess.Popen[bytes], port: int, log_path: Path,
         watch: outage.StateWatch) -> outage.Mark:
    text, _ = scrape(port)
    return outage.Mark(time.time(), time.monotonic(), cpu_seconds(proc.pid), text,
                       outage.written_bytes(proc.pid), log_path.stat().st_size,
                       watch.counts())


def measure(args: argparse.Namespace, bed: MailTestBed, proc: subprocess.Popen[bytes],
            port: int, log_path: Path, watch: outage.StateWatch,
            ) -> tuple[list[outage.Mark], list[float], set[str]]:
    """Sample RSS every 10 s for `--minutes`; with `--outage`, start it `--outage-after`
    seconds in. Returns the window edges (measure start, outage start, end), all RSS
    samples and the users whose logins the server rejects."""
    edges = [mark(proc, port, log_path, watch)]
    t0, rss, failing = edges[0].mono, [], set[str]()
    down_at = args.outage_after if args.outage else float("inf")
    while (now := time.monotonic() - t0) < args.minutes * 60:
        time.sleep(max(0.0, min(10.0, down_at - now, args.minutes * 60 - now)))
        if time.monotonic() - t0 >= down_at:
            edges.append(mark(proc, port, log_path, watch))
            failing, down_at = {u.name for u in bed.users[-args.outage:]}, float("inf")
            outage.fail_logins(bed, failing)
            print(json.dumps({"t": round(time.monotonic() - t0), "outage": len(failing)}),
                  file=sys.stderr, flush=True)
            continue
        rss.append(rss_mib(proc.pid))
        edges[-1].rss.append(rss[-1])
        print(json.dumps({"t": round(time.monotonic() - t0), "rss_mib": round(rss[-1], 1),
                          "cpu_s": round(cpu_seconds(proc.pid) - edges[0].cpu, 2)}),
              file=sys.stderr, flush=True)
    edges.append(mark(proc, port, log_path, watch))
    return edges, rss, failing


def outage_report(args: argparse.Namespace, edges: list[outage.Mark], failing: set[str],
                  prom_url: str) -> dict[str, Any]:
    """Before and during the outage, and whether exactly the failing users failed auth."""
    end = edges[-1].text
    seen = outage.auth_failed_targets(end)
    others = {outage.label(h, "target") for h, v in series(end, "mailcanary_probe_failures_total")
              if v and outage.label(h, "target") not in failing}
    return {
        "accounts_failing": len(failing), "after_seconds": args.outage_after,
        "auth_failure_delay_seconds": args.auth_failure_delay,
        "before": outage.window(edges[0], edges[1], prom_url, failing),
        "during": outage.window(edges[1], edges[2], prom_url, failing),
        "auth_failed_targets_at_end": len(seen),
        "failing_users_not_auth_failed": len(failing - seen),
        "auth_failed_targets_not_failing_users": sorted(seen - failing)[:20],
        "other_targets_with_failures": len(others),
        "other_targets_with_failures_first": sorted(others)[:20],
        "backoff_targets_at_end": outage.backoff_targets(end),
    }


def run(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    users = [TestBedUser(f"u{i:05d}", PASSWORD) for i in range(args.accounts)]
    bed = MailTestBed(root / "bed", users)
    started_bed = time.monotonic()
    bed.start()
    bed_start = time.monotonic() - started_bed
    prom, refusal = None, None
    try:
        if args.outage:
            outage.set_failure_delay(bed, args.auth_failure_delay)
            refusal = outage.failed_login_seconds(bed, bed.users[0])
        port = free_port()
        config = write_config(bed, root, args, port)
        env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
        # Not beside the config: the daemon watches the config's directory (inotify), and a
        # log written there wakes the watcher's thread once per debounce period for nothing,
        # which /etc/mailcanary never does.
        log_path = root / "logs" / "daemon.log"
        log_path.parent.mkdir()
        log = log_path.open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "mailcanary", "run", "--config", str(config)],
            stdout=log, stderr=subprocess.STDOUT, env=env,
        )
        prom, prom_url = start_prometheus(root, port)
        time.sleep(args.warmup)
        bed0 = bed_cpu(bed)
        watch = outage.StateWatch(root / "state")
        watch.start()
        edges, rss, failing = measure(args, bed, proc, port, log_path, watch)
        watch.stop.set()
        wall = edges[-1].mono - edges[0].mono
        cpu, bed_used = edges[-1].cpu - edges[0].cpu, bed_cpu(bed) - bed0
        timed = []
        for _ in range(args.scrapes):
            time.sleep(1.1)  # past the 1 s cache: each scrape is a fresh render
            timed.append(scrape(port))
        text = timed[-1][0]
        probes = sum(v for _, v in samples(text, "mailcanary_probes_total")) - sum(
            v for _, v in samples(edges[0].text, "mailcanary_probes_total"))
        failures: dict[str, float] = {}
        for head, value in samples(text, "mailcanary_probe_failures_total"):
            reason = head.split('reason="', 1)[1].split('"', 1)[0]
            failures[reason] = failures.get(reason, 0) + value
        prom_scrape = prometheus_query(prom_url, "max_over_time(scrape_duration_seconds[5m])")
        prom_samples = prometheus_query(prom_url, "scrape_samples_scraped")
        report = outage_report(args, edges, failing, prom_url) if args.outage else None
        proc.send_signal(signal.SIGTERM)
        stop_code = proc.wait(60)
        log.close()
    finally:
        if prom is not None:
            prom.terminate()
            prom.wait(10)
        bed.stop()
    per_target = len(samples(text, "mailcanary_probe_success"))
    summary = {
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
    if report is not None:
        daemon_log = log_path.read_text(errors="replace")
        summary["outage"] = report | {
            "failed_imap_login_seconds": round(refusal or 0.0, 3),
            "state_files_after_stop": outage.state_files(root / "state"),
            "log_tracebacks": daemon_log.count("Traceback"),
            "log_internal_error": daemon_log.count("internal_error"),
        }
    return summary


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
    parser.add_argument("--outage", type=int, default=0, metavar="N",
                        help="the server starts rejecting the last N accounts' passwords")
    parser.add_argument("--outage-after", type=float, default=60, metavar="SECONDS",
                        help="seconds into the measurement (after --warmup)")
    parser.add_argument("--auth-failure-delay", type=float, default=2.0, metavar="SECONDS",
                        help="Dovecot's delay before a refusal, with --outage (default: "
                             "Dovecot's own 2 s; the bed otherwise runs with 0)")
    args = parser.parse_args()
    if not 0 <= args.outage <= args.accounts:
        parser.error("--outage must be between 0 and --accounts")
    if args.outage and not 0 < args.outage_after < args.minutes * 60:
        parser.error("--outage-after must fall inside --minutes")
    ensure_installed()
    with tempfile.TemporaryDirectory(prefix="mcf-") as tmp:
        summary = run(args, Path(tmp))
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
