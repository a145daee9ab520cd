"""Per-phase timings of healthy IMAP and SMTP logins on the test bed, against a baseline.

Run by hand (root, Dovecot and Postfix installed):  python bench/login_bench.py [N]

The baseline is the standard library doing the same login in the same run (imaplib over
implicit TLS + LOGIN + EXAMINE + LOGOUT; smtplib STARTTLS + AUTH + QUIT), so the ratio
shows what mailcanary's phase timing and classification cost on top of the protocol work.
"""

from __future__ import annotations

import asyncio
import imaplib
import os
import platform
import smtplib
import statistics
import sys
import tempfile
import time
from pathlib import Path

from mailcanary.config import config_from_dict
from mailcanary.logsetup import configure_logging
from mailcanary.probes.runner import run_probe
from mailcanary.testbed import MailTestBed, ensure_installed


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def main(n: int) -> None:
    configure_logging("error")
    ensure_installed()
    with tempfile.TemporaryDirectory() as tmp, MailTestBed(Path(tmp)) as bed:
        user = bed.user("alice")
        pw = Path(tmp) / "pw"
        pw.write_text(user.password)
        config = config_from_dict(
            {
                "accounts": [
                    {
                        "name": "alice",
                        "address": user.address,
                        "username": user.name,
                        "password_file": str(pw),
                        "ca_file": str(bed.ca_pem),
                        "imap": {"host": bed.host, "port": bed.imaps_port, "security": "tls"},
                        "smtp": {
                            "host": bed.host,
                            "port": bed.submission_port,
                            "security": "starttls",
                        },
                    }
                ]
            }
        )
        ctx = bed.ssl_context()

        def baseline_imap() -> None:
            with imaplib.IMAP4_SSL(bed.host, bed.imaps_port, ssl_context=ctx) as m:
                m.login(user.name, user.password)
                m.select("INBOX", readonly=True)
                m.logout()

        def baseline_smtp() -> None:
            with smtplib.SMTP(bed.host, bed.submission_port) as s:
                s.starttls(context=ctx)
                s.login(user.name, user.password)

        print(f"machine: {os.cpu_count()} cores, {cpu_model()}, Python {sys.version.split()[0]}")
        print(f"{n} logins each, medians in milliseconds\n")
        for kind, baseline in (("imap", baseline_imap), ("smtp", baseline_smtp)):
            phases: dict[str, list[float]] = {}
            totals, base = [], []
            for _ in range(n):
                result = asyncio.run(run_probe(kind, "alice", config))
                assert result.ok, result.as_json()
                totals.append(result.duration_seconds)
                for phase, seconds in result.phases.items():
                    phases.setdefault(phase, []).append(seconds)
                start = time.perf_counter()
                baseline()
                base.append(time.perf_counter() - start)
            m_total, m_base = statistics.median(totals), statistics.median(base)
            print(f"{kind}: mailcanary {m_total * 1000:.1f} ms, stdlib baseline "
                  f"{m_base * 1000:.1f} ms, ratio {m_total / m_base:.2f}")
            for phase, values in phases.items():
                print(f"  {phase:9s} {statistics.median(values) * 1000:7.2f} ms")
            print()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 50)
