"""The settings doctor's added time on a failing login probe, in two cases.

Run by hand (root; binds the standard ports of 127.0.0.3):  python bench/doctor_bench.py [N]

same-port: POP3 configured as plain text on the test bed's 127.0.0.2 listener, which refuses
  a login before TLS (tls_required in ~ms); the doctor finds STLS on the same port.
standard-port: IMAP configured as implicit TLS on 127.0.0.3:143 (a STARTTLS port; the
  handshake reads the plaintext greeting: handshake_failed); the doctor finds 993 tls.
Each run uses a fresh config, so the doctor's cache never answers. The baseline is the same
failing probe in the same run with the doctor switched off (the runner's hook replaced by a
no-op), so the difference is the doctor's own cost: candidates staggered 100 ms apart,
each as far as the greeting and a verified TLS handshake.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from mailcanary.config import Config, config_from_dict
from mailcanary.diagnosis import Failure
from mailcanary.logsetup import configure_logging
from mailcanary.probes import runner
from mailcanary.result import ProbeContext
from mailcanary.testbed import MailTestBed, ensure_installed
from mailcanary.testbed.pop3 import PRIVATE_HOST
from mailcanary.testbed.standard_ports import STANDARD_HOST, StandardPortsBed


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


async def no_doctor(ctx: ProbeContext, config: Config, fail: Failure) -> Failure:
    return fail


def config(kind: str, endpoint: dict[str, Any], ca: Path, pw: Path) -> Config:
    return config_from_dict({"accounts": [{
        "name": "x", "address": "alice@example.test", "username": "alice",
        "password_file": str(pw), "ca_file": str(ca), "timeout": "5s", kind: endpoint}]})


async def case(name: str, kind: str, endpoint: dict[str, Any], ca: Path, pw: Path,
               n: int) -> None:
    real = runner.consult
    with_doc, without = [], []
    for _ in range(n):
        runner.consult = real
        start = time.perf_counter()
        result = await runner.run_probe(kind, "x", config(kind, endpoint, ca, pw))
        with_doc.append(time.perf_counter() - start)
        assert "suggestion" in result.extra, result.as_json()
        runner.consult = no_doctor  # type: ignore[assignment]
        start = time.perf_counter()
        result = await runner.run_probe(kind, "x", config(kind, endpoint, ca, pw))
        without.append(time.perf_counter() - start)
        assert "suggestion" not in result.extra
    runner.consult = real
    m_with, m_without = statistics.median(with_doc), statistics.median(without)
    print(f"{name}: {result.reason} in phase {result.phase}; suggestion found each time")
    print(f"  probe alone {m_without * 1000:.1f} ms, with doctor {m_with * 1000:.1f} ms: "
          f"the doctor adds {(m_with - m_without) * 1000:.1f} ms (median of {n}), "
          f"ratio {m_with / m_without:.1f}")


def main(n: int) -> None:
    configure_logging("error")
    ensure_installed()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        with MailTestBed(root / "a") as bed, StandardPortsBed(root / "b") as std:
            pw = root / "pw"
            pw.write_text(bed.user("alice").password)
            print(f"machine: {os.cpu_count()} cores, {cpu_model()}, "
                  f"Python {sys.version.split()[0]}\n")
            asyncio.run(case(
                "same-port (pop3 127.0.0.2 none -> same port starttls)", "pop3",
                {"host": PRIVATE_HOST, "port": bed.pop3_private_port, "security": "none",
                 "allow_insecure_auth": True}, bed.ca_pem, pw, n))
            asyncio.run(case(
                "standard-port (imap 127.0.0.3:143 tls -> 993 tls)", "imap",
                {"host": STANDARD_HOST, "port": 143, "security": "tls"}, std.ca_pem, pw, n))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 30)
