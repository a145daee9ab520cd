"""A provider-wide auth outage for bench/fleet.py, and the per-window figures around it.

The fault is the realistic one: the provider starts rejecting N accounts' passwords. The
bed's Dovecot passwd-file is rewritten (atomically) with another password for those users;
Dovecot re-reads a passwd-file whose mtime or size changed at its next lookup (at most once
a second; the bed sets no `auth_cache_size`, so nothing cached answers meanwhile), and
Postfix's SMTP AUTH asks Dovecot's auth socket (`smtpd_sasl_type = dovecot`), so IMAP and
SMTP logins fail alike. The bed runs with `auth_failure_delay = 0` (a test needs fast
failures); a real server waits 2 s (Dovecot's default) before it says no, which holds a
connection slot that long, so `set_failure_delay` restores a realistic delay first. The
anvil auth penalty stays off (the bed's listener has mode 0): it would slow every login
from 127.0.0.1, good ones included, which a fleet spread over many clients would not see.
"""

from __future__ import annotations

import imaplib
import json
import os
import ssl
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mailcanary.testbed import MailTestBed
from mailcanary.testbed.templates import passwd_file
from mailcanary.testbed.users import TestBedUser

WRONG_SUFFIX = "-rotated-by-provider"  # another length too: the file's size changes


def set_failure_delay(bed: MailTestBed, seconds: float) -> None:
    """Dovecot's `auth_failure_delay` on the running bed (config rewritten, `doveadm reload`)."""
    conf = bed.dovecot_conf
    text = conf.read_text()
    if "auth_failure_delay = 0\n" not in text:
        raise SystemExit("the bed's dovecot.conf no longer sets auth_failure_delay = 0")
    conf.write_text(text.replace("auth_failure_delay = 0\n",
                                 f"auth_failure_delay = {int(seconds * 1000)}ms\n"))
    bed.doveadm("reload")
    time.sleep(1.0)  # the master restarts its auth and login processes


def fail_logins(bed: MailTestBed, names: set[str]) -> None:
    """From now on the server rejects these users' passwords (IMAP and SMTP AUTH)."""
    users = tuple(TestBedUser(u.name, u.password + WRONG_SUFFIX) if u.name in names else u
                  for u in bed.users)
    path = bed.dovecot_dir / "users"
    tmp = path.with_name("users.outage")
    tmp.write_text(passwd_file(users, bed.mail_root))
    tmp.chmod(0o644)
    os.replace(tmp, path)


def failed_login_seconds(bed: MailTestBed, user: TestBedUser) -> float:
    """How long the server takes to refuse one IMAP login (TLS set-up excluded)."""
    context = ssl.create_default_context(cafile=str(bed.ca_pem))
    with imaplib.IMAP4_SSL("127.0.0.1", bed.imaps_port, ssl_context=context, timeout=30) as imap:
        start = time.perf_counter()
        try:
            imap.login(user.name, user.password + "-not-it")
        except imaplib.IMAP4.error:
            return time.perf_counter() - start
    raise SystemExit(f"the bed accepted a wrong password for {user.name}")


# ---------------------------------------------------------------------- reading /metrics

def series(text: str, name: str) -> list[tuple[str, float]]:
    out = []
    for line in text.splitlines():
        if line.startswith((name + "{", name + " ")):
            head, _, value = line.rpartition(" ")
            out.append((head, float(value)))
    return out


def label(head: str, key: str) -> str:
    return head.split(f'{key}="', 1)[1].split('"', 1)[0]


def lag_buckets(text: str) -> dict[float, float]:
    """Cumulative counts of the schedule lag histogram by upper bound."""
    out: dict[float, float] = {}
    for head, value in series(text, "mailcanary_schedule_lag_seconds_bucket"):
        le = label(head, "le")
        bound = float("inf") if le == "+Inf" else float(le)
        out[bound] = out.get(bound, 0.0) + value
    return out


def lag_summary(buckets: dict[float, float]) -> dict[str, Any]:
    """p50/p99 by linear interpolation inside the bucket (as histogram_quantile does), and
    the smallest bucket bound that holds every run (max <= it)."""
    ordered = sorted(buckets.items())
    total = ordered[-1][1] if ordered else 0.0

    def quantile(q: float) -> float | None:
        rank, low, below = q * total, 0.0, 0.0
        for bound, count in ordered:
            if count >= rank:
                if bound == float("inf"):
                    return low
                return low + (bound - low) * (rank - below) / max(count - below, 1e-9)
            low, below = bound, count
        return None

    if not total:
        return {"runs": 0.0, "p50_seconds": None, "p99_seconds": None,
                "max_at_most_seconds": None}
    max_le = next((b for b, c in ordered if c >= total), None)
    return {"runs": total, "p50_seconds": quantile(0.5), "p99_seconds": quantile(0.99),
            "max_at_most_seconds": max_le}


def by_reason(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for head, value in series(text, "mailcanary_probe_failures_total"):
        key = f"{label(head, 'class')}/{label(head, 'reason')}"
        out[key] = out.get(key, 0.0) + value
    return out


def auth_failed_targets(text: str) -> set[str]:
    """Targets whose last result is an auth failure (`mailcanary_probe_failure_info`)."""
    return {label(head, "target") for head, value in
            series(text, "mailcanary_probe_failure_info") if value and 'class="auth"' in head}


def backoff_targets(text: str) -> int:
    return sum(1 for _, value in series(text, "mailcanary_probe_backoff_factor") if value > 1)


def durations(text: str, failing: set[str], *, healthy: bool) -> dict[str, Any]:
    """The last login probe's duration of the healthy targets (or of the failing ones): the
    lag histogram ends when a run starts, so waiting for a connection slot held by a slow
    refusal shows only here (and as timeouts)."""
    values = sorted(v for h, v in series(text, "mailcanary_probe_duration_seconds")
                    if label(h, "probe") in ("imap", "smtp")
                    and (label(h, "target") in failing) != healthy)
    if not values:
        return {"targets": 0}
    p50, p99 = (values[min(len(values) - 1, int(q * len(values)))] for q in (0.5, 0.99))
    return {"targets": len(values), "p50_seconds": round(p50, 3),
            "p99_seconds": round(p99, 3), "max_seconds": round(values[-1], 3)}


# ---------------------------------------------------------------------- windows

def written_bytes(pid: int) -> int:
    """Bytes the process wrote through write(2) and friends (`wchar`: files and sockets)."""
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    return 0


class StateWatch(threading.Thread):
    """Counts the daemon's whole-file writes of backoff.json and alerts.json (each is a new
    file renamed into place, at most one a second per file: a poll every 0.1 s sees each)."""

    NAMES = ("backoff.json", "alerts.json")

    def __init__(self, state_dir: Path) -> None:
        super().__init__(daemon=True)
        self.state_dir = state_dir
        self.writes = dict.fromkeys(self.NAMES, 0)
        self.bytes = dict.fromkeys(self.NAMES, 0)
        self._seen: dict[str, tuple[int, int]] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.1):
            for name in self.NAMES:
                try:
                    st = (self.state_dir / name).stat()
                except OSError:
                    continue
                key = (st.st_ino, st.st_mtime_ns)
                if self._seen.get(name) != key:
                    self._seen[name] = key
                    self.writes[name] += 1
                    self.bytes[name] += st.st_size

    def counts(self) -> dict[str, int]:
        return {**{f"{n}_writes": c for n, c in self.writes.items()},
                **{f"{n}_bytes_written": c for n, c in self.bytes.items()}}


@dataclass
class Mark:
    """Everything measured at one edge of a window."""

    wall: float  # time.time(), for Prometheus
    mono: float
    cpu: float
    text: str
    wchar: int
    log_bytes: int
    state: dict[str, int]  # StateWatch.counts()
    rss: list[float] = field(default_factory=list)  # samples taken after this mark


def _total(text: str, name: str) -> float:
    return sum(v for _, v in series(text, name))


def window(start: Mark, end: Mark, prom_url: str, failing: set[str]) -> dict[str, Any]:
    """The figures of the window [start, end): deltas of counters and of the histogram."""
    wall = end.mono - start.mono
    before, after = lag_buckets(start.text), lag_buckets(end.text)
    lag = lag_summary({b: c - before.get(b, 0.0) for b, c in after.items()})
    probes = _total(end.text, "mailcanary_probes_total") - _total(
        start.text, "mailcanary_probes_total")
    first = by_reason(start.text)
    failures = {k: v - first.get(k, 0.0) for k, v in by_reason(end.text).items()
                if v - first.get(k, 0.0)}
    cpu = end.cpu - start.cpu
    seconds = max(int(wall), 15)
    prom = prometheus_query(prom_url, f"max_over_time(scrape_duration_seconds[{seconds}s])",
                            end.wall)
    written = end.wchar - start.wchar
    logged = end.log_bytes - start.log_bytes
    return {
        "seconds": round(wall, 1), "schedule_lag": lag,
        "skipped_runs": _total(end.text, "mailcanary_probe_skipped_total")
        - _total(start.text, "mailcanary_probe_skipped_total"),
        "probes_run": probes, "failures_by_reason": failures,
        "daemon_cpu_share_of_one_core": round(cpu / wall, 4),
        "daemon_cpu_ms_per_probe": round(1000 * cpu / probes, 3) if probes else None,
        "daemon_rss_mib_max": round(max(start.rss), 1) if start.rss else None,
        # wchar: files and sockets (the /metrics answers too); the log alone beside it
        "daemon_wchar_mib": round(written / 2**20, 2),
        "daemon_log_mib": round(logged / 2**20, 2),
        "prometheus_scrape_duration_max_seconds": [float(r["value"][1]) for r in prom],
        "backoff_targets_at_end": backoff_targets(end.text),
        "healthy_login_duration_at_end": durations(end.text, failing, healthy=True),
        "failing_login_duration_at_end": durations(end.text, failing, healthy=False),
        "state_file_writes": {k: v - start.state.get(k, 0) for k, v in end.state.items()},
    }


def prometheus_query(url: str, expr: str, at: float | None = None) -> list[dict[str, Any]]:
    params = {"query": expr} | ({} if at is None else {"time": f"{at:.3f}"})
    query = urllib.parse.urlencode(params)
    with urllib.request.urlopen(f"{url}/api/v1/query?{query}", timeout=30) as resp:
        doc: dict[str, Any] = json.loads(resp.read())
    result: list[dict[str, Any]] = doc["data"]["result"]
    return result


def state_files(state_dir: Path) -> dict[str, Any]:
    """Sizes of the daemon's state files, and what backoff.json holds."""
    out: dict[str, Any] = {}
    for name in ("backoff.json", "alerts.json"):
        path = state_dir / name
        out[f"{name}_bytes"] = path.stat().st_size if path.exists() else None
    backoff = state_dir / "backoff.json"
    if backoff.exists():
        data = json.loads(backoff.read_text()).get("data", {})
        jobs = data.get("jobs", {})
        out["backoff_jobs"] = len(jobs)
        out["backoff_jobs_by_kind"] = {
            kind: sum(1 for j in jobs if j.split(":", 1)[0] == kind)
            for kind in sorted({j.split(":", 1)[0] for j in jobs})}
        out["backoff_jobs_fingerprinted"] = sum(
            1 for e in jobs.values() if e.get("credentials"))
        out["paused_accounts"] = len(data.get("paused", {}))
    return out
