"""Every query of the Grafana dashboard against a real Prometheus holding 10,000 targets.

    python bench/dashboard_queries.py --targets 10000 --hours 1 --runs 5

Writes one hour of synthetic series (15 s apart, as a 15 s scrape would store them) for a
fleet of N targets in the OpenMetrics text format: logins (imap + smtp of each account),
round trips and inbound watches, spread over 200 servers and the provider presets, with
account labels (team, site), 5 % failing (one server entirely down), 2 % not probed yet,
auth failures in backoff. `promtool tsdb create-blocks-from openmetrics` turns it into
blocks, a real Prometheus (Debian's) serves them, and every dashboard query is asked
`--runs` times at the end of the data (instant panels with /api/v1/query, the others with
/api/v1/query_range over the last hour at a 15 s step, as Grafana asks for a 1 h view).
The baseline, in the same run, is the old dashboard's per-target "Current status" query
(one row per target). Prints a JSON summary: per query the first (cold) and the median
(warm) seconds, the series returned, and whether the fleet-row queries stay under 1 s.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD = ROOT / "grafana" / "dashboards" / "mailcanary.json"
STEP = 15
PROVIDERS = ("", "", "", "gmail", "outlook", "microsoft365", "icloud", "yahoo", "docomo")
FLEET_ROWS = ("Fleet overview", "What fails now", "Availability", "Operations")
# The old dashboard's per-target status panels: one row (instant) or one series (the
# state timeline, a range query) per target.
BASELINE = 'max by (probe, target) (mailcanary_probe_success{job=~"mailcanary", target=~".*"})'
VARIABLES = {"$__rate_interval": "1m", "$__range": "1h", "${datasource}": "prometheus",
             "$job": "mailcanary", "$target": ".*", "$server": ".*", "$provider": ".*",
             "$group": "team", "$topk": "20"}


@dataclass
class Target:
    probe: str
    name: str
    server: str
    provider: str
    team: str
    site: str
    interval: int
    failing: tuple[str, str] | None  # (class, reason)
    probed: bool
    ever_ok: bool


def fleet(n: int, seed: int = 7) -> list[Target]:
    rnd = random.Random(seed)
    out: list[Target] = []
    routes = n // 10
    down = "imap.down.test:993"
    for i in range(n):
        if i < n - routes:
            probe = ("imap", "smtp")[i % 2]
            name = f"acct{i // 2}"
            interval = 60
        else:
            probe = "roundtrip" if i % 5 else "inbound"
            name = f"route{i}"
            interval = 900
        server = down if i < 60 and probe == "imap" else (
            f"{probe if probe in ('imap', 'smtp') else 'imap'}.s{rnd.randrange(200)}.test:"
            f"{993 if probe != 'smtp' else 587}")
        failing = None
        if server == down:
            failing = ("network", "connection_refused")
        elif rnd.random() < 0.05:
            failing = rnd.choice([("auth", "invalid_credentials"), ("tls", "cert_expired"),
                                  ("timeout", "timeout"), ("delivery", "lost")])
        probed = rnd.random() >= 0.02
        out.append(Target(probe, name, server, rnd.choice(PROVIDERS), f"team{rnd.randrange(20)}",
                          f"site{rnd.randrange(5)}", interval, failing if probed else None,
                          probed, not (failing and rnd.random() < 0.3)))
    return out


def _labels(t: Target) -> str:
    return f'job="mailcanary",instance="synthetic:9782",probe="{t.probe}",target="{t.name}"'


def _series(t: Target, start: int, end: int) -> Iterator[tuple[str, str, str, Any]]:
    """(family, type, labels, value(ts)) of one target."""
    lbl = _labels(t)
    fail_at = start + (end - start) // 3
    yield ("mailcanary_target_info", "gauge",
           f'{lbl},server="{t.server}",provider="{t.provider}",team="{t.team}",site="{t.site}"',
           lambda ts: 1)
    yield ("mailcanary_probe_interval_seconds", "gauge", lbl, lambda ts: t.interval)
    runs = (lambda ts: (ts - start) // t.interval + 1) if t.probed else (lambda ts: 0)
    yield ("mailcanary_probes", "counter", lbl, runs)
    yield ("mailcanary_probe_skipped", "counter", lbl, lambda ts: 0)
    ok = t.failing is None and t.probed
    yield ("mailcanary_probe_success", "gauge", lbl,
           (lambda ts: 1) if ok else (lambda ts: int(t.probed and ts < fail_at)))
    yield ("mailcanary_probe_last_success_timestamp_seconds", "gauge", lbl,
           (lambda ts: ts - ts % t.interval) if ok else
           (lambda ts: min(ts, fail_at) - min(ts, fail_at) % t.interval if t.ever_ok else 0))
    yield ("mailcanary_tls_cert_expiry_timestamp_seconds", "gauge", lbl,
           lambda ts: 1_900_000_000 + hash(t.server) % 5_000_000)
    if t.failing is not None:
        cls, reason = t.failing
        yield ("mailcanary_probe_failures", "counter", f'{lbl},class="{cls}",reason="{reason}"',
               lambda ts: max(0, (ts - fail_at) // t.interval + 1) if ts >= fail_at else None)
        yield ("mailcanary_probe_failure_info", "gauge",
               f'{lbl},class="{cls}",reason="{reason}",phase="connect"',
               lambda ts: 1 if ts >= fail_at else None)
        if cls == "auth":
            yield ("mailcanary_probe_backoff_factor", "gauge", lbl,
                   lambda ts: 8 if ts >= fail_at else None)
    if t.probe in ("roundtrip", "inbound"):
        for placement in ("inbox", "spam", "other", "missing"):
            share = {"inbox": 1, "spam": 0, "other": 0, "missing": 0}[placement]
            if t.failing is not None and placement == "missing":
                share = 1
            yield ("mailcanary_canaries", "counter", f'{lbl},placement="{placement}"',
                   lambda ts, s=share: s * ((ts - start) // t.interval))


def _daemon_series(start: int) -> Iterator[tuple[str, str, str, Any]]:
    lbl = 'job="mailcanary",instance="synthetic:9782"'
    yield ("mailcanary_build_info", "gauge", f'{lbl},version="0.3.0"', lambda ts: 1)
    yield ("mailcanary_config_last_reload_successful", "gauge", lbl, lambda ts: 1)
    for status in ("sent", "retried", "failed"):
        yield ("mailcanary_alert_notifications", "counter",
               f'{lbl},sink="webhook",status="{status}"',
               lambda ts, s=status: (ts - start) // (60 if s == "sent" else 600))
    for le in ("0.01", "0.1", "1.0", "+Inf"):
        yield ("mailcanary_schedule_lag_seconds", "histogram", f'{lbl},le="{le}"',
               lambda ts, b=le: (ts - start) * (1 if b != "0.01" else 0.9) // 1)


def write_openmetrics(path: Path, targets: list[Target], start: int, end: int) -> int:
    """The series, grouped by family as OpenMetrics wants; returns the sample count."""
    families: dict[str, tuple[str, list[tuple[str, Any]]]] = {}
    for t in targets:
        for family, kind, lbl, fn in _series(t, start, end):
            families.setdefault(family, (kind, []))[1].append((lbl, fn))
    for family, kind, lbl, fn in _daemon_series(start):
        families.setdefault(family, (kind, []))[1].append((lbl, fn))
    stamps = range(start, end + 1, STEP)
    samples = 0
    with path.open("w", encoding="ascii") as out:
        for family, (kind, series) in families.items():
            out.write(f"# TYPE {family} {kind}\n")
            suffix = {"counter": "_total", "histogram": "_bucket"}.get(kind, "")
            for lbl, fn in series:
                lines = []
                for ts in stamps:
                    value = fn(ts)
                    if value is not None:
                        lines.append(f"{family}{suffix}{{{lbl}}} {value} {ts}\n")
                out.write("".join(lines))
                samples += len(lines)
        out.write("# EOF\n")
    return samples


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _get(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=120) as response:
        doc: dict[str, Any] = json.loads(response.read())
        return doc


def dashboard_queries() -> list[tuple[str, str, str, bool, int]]:
    """(row, panel title, expr, instant, step) of every panel query, variables filled in
    (the step of a range query: 15 s, or the panel's minimum interval)."""
    doc = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    out = []
    row = ""
    for panel in doc["panels"]:
        inner = [panel, *panel.get("panels", [])]
        for p in inner:
            if p["type"] == "row":
                row = p["title"]
                continue
            for target in p.get("targets", []):
                expr = target["expr"]
                for name, value in VARIABLES.items():
                    expr = expr.replace(name, value)
                step = 60 if p.get("interval") == "1m" else STEP
                out.append((row, p["title"], expr, bool(target.get("instant")), step))
    return out


def time_query(
    base: str, expr: str, instant: bool, at: int, runs: int, step: int = STEP,
) -> dict[str, Any]:
    if instant:
        url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": expr, "time": at})
    else:
        url = f"{base}/api/v1/query_range?" + urllib.parse.urlencode(
            {"query": expr, "start": at - 3600, "end": at, "step": step})
    times = []
    result: list[Any] = []
    for _ in range(runs):
        began = time.perf_counter()
        doc = _get(url)
        times.append(time.perf_counter() - began)
        assert doc["status"] == "success", (expr, doc)
        result = doc["data"]["result"]
    return {"first_s": round(times[0], 4), "median_s": round(statistics.median(times), 4),
            "max_s": round(max(times), 4), "series": len(result)}


def start_prometheus(data: Path, work: Path) -> tuple[subprocess.Popen[bytes], str]:
    binary = shutil.which("prometheus")
    if binary is None:
        sys.exit("Debian's prometheus is not installed")
    conf = work / "prometheus.yml"
    conf.write_text("global:\n  scrape_interval: 15s\n")
    port = _free_port()
    log = (work / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [binary, f"--config.file={conf}", f"--storage.tsdb.path={data}",
         "--storage.tsdb.retention.time=3650d", f"--web.listen-address=127.0.0.1:{port}"],
        stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            with urllib.request.urlopen(f"{base}/-/ready", timeout=2):
                return proc, base
        except OSError:
            time.sleep(0.2)
    proc.kill()
    sys.exit(f"prometheus did not become ready; see {work / 'prometheus.log'}")


def build_blocks(args: argparse.Namespace, work: Path) -> tuple[Path, int, dict[str, Any]]:
    end = int(time.time()) - 120
    end -= end % STEP
    start = end - int(args.hours * 3600)
    targets = fleet(args.targets)
    text = work / "series.om"
    began = time.perf_counter()
    samples = write_openmetrics(text, targets, start, end)
    written = time.perf_counter() - began
    data = work / "data"
    began = time.perf_counter()
    subprocess.run([shutil.which("promtool") or "promtool", "tsdb",
                    "create-blocks-from", "openmetrics", str(text), str(data)],
                   check=True, capture_output=True)
    imported = time.perf_counter() - began
    text.unlink()
    info = {"targets": len(targets), "failing": sum(t.failing is not None for t in targets),
            "not_probed": sum(not t.probed for t in targets), "samples": samples,
            "write_s": round(written, 1), "import_s": round(imported, 1)}
    return data, end, info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", type=int, default=10_000)
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--limit", type=float, default=1.0, help="seconds per fleet query")
    parser.add_argument("--keep", type=Path, help="keep the blocks here and reuse them")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mc-dash-bench-") as tmp:
        work = Path(tmp)
        if args.keep and (args.keep / "info.json").exists():
            info = json.loads((args.keep / "info.json").read_text())
            data, at = args.keep / "data", info.pop("at")
        else:
            data, at, info = build_blocks(args, args.keep or work)
            if args.keep:
                (args.keep / "info.json").write_text(json.dumps({**info, "at": at}))
        proc, base = start_prometheus(data, work)
        try:
            series = _get(f"{base}/api/v1/query?" + urllib.parse.urlencode(
                {"query": "count({__name__=~'mailcanary_.+'})", "time": at}))
            info["series"] = int(float(series["data"]["result"][0]["value"][1]))
            baseline = time_query(base, BASELINE, True, at, args.runs)
            baseline_range = time_query(base, BASELINE, False, at, args.runs)
            rows = []
            for row, title, expr, instant, step in dashboard_queries():
                timing = time_query(base, expr, instant, at, args.runs, step)
                fleet_row = row.startswith(FLEET_ROWS)
                rows.append({"row": row, "panel": title, "instant": instant,
                             "step_s": None if instant else step, **timing,
                             "vs_baseline": round(timing["median_s"] / baseline["median_s"], 2),
                             "fleet_row": fleet_row,
                             "ok": not fleet_row or timing["max_s"] <= args.limit})
        finally:
            proc.terminate()
            proc.wait(30)
    summary = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, "
               f"load {os.getloadavg()[0]:.1f}", "data": info,
               "baseline (old per-target status query)": baseline,
               "baseline_range (old per-target state timeline)": baseline_range,
               "fleet_queries_within_limit": all(r["ok"] for r in rows), "queries": rows}
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
