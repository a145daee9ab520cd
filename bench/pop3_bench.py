"""CPU of the POP3 login probe against a bare asyncio+ssl POP3 login, in the same run.

Run by hand (root, Dovecot with dovecot-pop3d installed):  python bench/pop3_bench.py [N]

Both log in to the test bed's implicit-TLS POP3 port N times, interleaved, each in one event
loop: the probe (dns, connect, TLS, greeting, CAPA, AUTH PLAIN, STAT, QUIT, with phases,
transcript, redaction and classification) and the bare baseline (open_connection with ssl,
greeting, USER, PASS, STAT, QUIT, nothing else). Reported: process CPU per login (both sides
get the same cached SSL context, so neither pays for loading the trust store) and median wall
time, with the ratio probe / baseline.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import statistics
import sys
import tempfile
import time
from pathlib import Path

from mailcanary.config import config_from_dict
from mailcanary.logsetup import configure_logging
from mailcanary.probes.runner import run_probe
from mailcanary.protocols.transport import tls_context
from mailcanary.testbed import MailTestBed, ensure_installed


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


async def bare_login(host: str, port: int, ctx: ssl.SSLContext, user: str, pw: str) -> None:
    reader, writer = await asyncio.open_connection(host, port, ssl=ctx, server_hostname=host)
    try:
        for line in (None, f"USER {user}", f"PASS {pw}", "STAT", "QUIT"):
            if line is not None:
                writer.write(line.encode() + b"\r\n")
            reply = await reader.readline()
            assert reply.startswith(b"+OK"), reply
    finally:
        writer.close()


async def measure(n: int, bed: MailTestBed, pw_file: Path) -> None:
    user = bed.user("alice")
    config = config_from_dict({"accounts": [{
        "name": "alice", "address": user.address, "username": user.name,
        "password_file": str(pw_file), "ca_file": str(bed.ca_pem),
        "pop3": {"host": bed.host, "port": bed.pop3s_port, "security": "tls"},
    }]})
    ctx = tls_context(bed.ca_pem)  # the probe's own cached context, shared by the baseline
    probe_cpu, base_cpu, probe_wall, base_wall = [], [], [], []
    for _ in range(n):
        c0, w0 = time.process_time(), time.perf_counter()
        result = await run_probe("pop3", "alice", config)
        c1, w1 = time.process_time(), time.perf_counter()
        assert result.ok, result.as_json()
        await bare_login(bed.host, bed.pop3s_port, ctx, user.name, user.password)
        c2, w2 = time.process_time(), time.perf_counter()
        probe_cpu.append(c1 - c0)
        base_cpu.append(c2 - c1)
        probe_wall.append(w1 - w0)
        base_wall.append(w2 - w1)
    cpu_p, cpu_b = sum(probe_cpu) / n, sum(base_cpu) / n
    wall_p, wall_b = statistics.median(probe_wall), statistics.median(base_wall)
    print(f"CPU per login:   probe {cpu_p * 1000:.2f} ms, bare asyncio+ssl {cpu_b * 1000:.2f} ms,"
          f" ratio {cpu_p / cpu_b:.2f}")
    print(f"wall (median):   probe {wall_p * 1000:.2f} ms, bare asyncio+ssl "
          f"{wall_b * 1000:.2f} ms, ratio {wall_p / wall_b:.2f}")


def main(n: int) -> None:
    configure_logging("error")
    ensure_installed()
    with tempfile.TemporaryDirectory() as tmp, MailTestBed(Path(tmp)) as bed:
        pw = Path(tmp) / "pw"
        pw.write_text(bed.user("alice").password)
        print(f"machine: {os.cpu_count()} cores, {cpu_model()}, Python {sys.version.split()[0]}")
        print(f"{n} POP3 logins each (implicit TLS, AUTH PLAIN / USER+PASS, STAT, QUIT), "
              "interleaved\n")
        asyncio.run(measure(n, bed, pw))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
