"""The client CPU floor of a login probe, and mailcanary's CPU per probe in the same run.

    python bench/floor.py [--rounds 5] [--per-round 40]

The floor is bare asyncio + ssl doing the same protocol work: IMAP over implicit TLS
(greeting, LOGIN, EXAMINE INBOX, LOGOUT) and SMTP submission (greeting, EHLO, STARTTLS,
EHLO, AUTH PLAIN, QUIT), with one cached SSLContext. mailcanary is `run_probe` as the
daemon calls it (one shared Runtime, no transcript, a connection-slot holder, the JSON
log line at info to /dev/null). Rounds alternate floor and mailcanary so a neighbour's
CPU load hits both; CPU is this process's own (time.process_time), so the servers' work
is not counted.
Prints one JSON object per kind: CPU ms per probe, wall ms, and the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import platform
import ssl
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from mailcanary.config import Config, load_config  # noqa: E402  (after sys.path)
from mailcanary.logsetup import configure_logging  # noqa: E402
from mailcanary.probes.runner import run_probe  # noqa: E402
from mailcanary.protocols.limits import ConnectionLimits, holding  # noqa: E402
from mailcanary.protocols.runtime import Runtime  # noqa: E402
from mailcanary.protocols.transport import tls_context  # noqa: E402
from mailcanary.testbed import MailTestBed, ensure_installed  # noqa: E402


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


async def _until(reader: asyncio.StreamReader, tag: bytes) -> bytes:
    while True:
        line = await reader.readline()
        if not line:
            raise ConnectionError("closed")
        if line.startswith(tag):
            return line


async def bare_imap(host: str, port: int, tls: ssl.SSLContext, user: str, pw: str) -> None:
    reader, writer = await asyncio.open_connection(host, port, ssl=tls, server_hostname=host)
    try:
        await reader.readline()
        for tag, command in ((b"a1", f'LOGIN {user} "{pw}"'), (b"a2", "EXAMINE INBOX"),
                             (b"a3", "LOGOUT")):
            writer.write(tag + b" " + command.encode() + b"\r\n")
            reply = await _until(reader, tag + b" ")
            if not reply.startswith(tag + b" OK"):
                raise RuntimeError(reply)
    finally:
        writer.close()


async def _smtp_reply(reader: asyncio.StreamReader) -> bytes:
    while True:
        line = await reader.readline()
        if len(line) < 4 or line[3:4] != b"-":
            return line


async def bare_smtp(host: str, port: int, tls: ssl.SSLContext, user: str, pw: str) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        await _smtp_reply(reader)
        writer.write(b"EHLO floor.example.test\r\n")
        await _smtp_reply(reader)
        writer.write(b"STARTTLS\r\n")
        await _smtp_reply(reader)
        await writer.start_tls(tls, server_hostname=host)
        writer.write(b"EHLO floor.example.test\r\n")
        await _smtp_reply(reader)
        blob = base64.b64encode(f"\0{user}\0{pw}".encode()).decode()
        writer.write(f"AUTH PLAIN {blob}\r\n".encode())
        if not (await _smtp_reply(reader)).startswith(b"235"):
            raise RuntimeError("auth failed")
        writer.write(b"QUIT\r\n")
        await _smtp_reply(reader)
    finally:
        writer.close()


async def measure(fn: Callable[[], Awaitable[None]], n: int) -> tuple[float, float]:
    """(CPU seconds, wall seconds) for n sequential runs."""
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(n):
        await fn()
    return time.process_time() - cpu, time.perf_counter() - wall


def bed_config(bed: MailTestBed, root: Path) -> Config:
    pw = root / "pw"
    pw.write_text(bed.user("alice").password + "\n")
    path = root / "floor.toml"
    path.write_text(
        f'[daemon]\nstate_dir = "{root / "state"}"\n\n[[accounts]]\nname = "alice"\n'
        f'address = "alice@example.test"\nusername = "alice"\npassword_file = "{pw}"\n'
        f'ca_file = "{bed.ca_pem}"\n'
        f'imap = {{ host = "{bed.host}", port = {bed.imaps_port}, security = "tls" }}\n'
        f'smtp = {{ host = "{bed.host}", port = {bed.submission_port}, '
        'security = "starttls" }\n'
    )
    return load_config(path)


async def bench(
    bed: MailTestBed, config: Config, rounds: int, per_round: int
) -> list[dict[str, object]]:
    tls = tls_context(bed.ca_pem)
    user = bed.user("alice")
    runtime = Runtime.for_config(config)  # one for the whole run, as the daemon has
    runtime.limits = ConnectionLimits(64, 4)
    bare = {
        "imap": lambda: bare_imap(bed.host, bed.imaps_port, tls, user.name, user.password),
        "smtp": lambda: bare_smtp(bed.host, bed.submission_port, tls, user.name,
                                  user.password),
    }

    async def ours(kind: str, transcript: bool) -> None:
        with holding(runtime.limits):
            result = await run_probe(kind, "alice", config, transcript=transcript,
                                     runtime=runtime)
        if not result.ok:
            raise RuntimeError(result.as_json())

    out = []
    for kind in ("imap", "smtp"):
        totals = {"floor": [0.0, 0.0], "mailcanary": [0.0, 0.0], "with_transcript": [0.0, 0.0]}
        await bare[kind]()
        await ours(kind, False)  # warm caches (TLS context, DNS, HELO name)
        for _ in range(rounds):
            for name, fn in (("floor", bare[kind]),
                             ("mailcanary", lambda k=kind: ours(k, False)),
                             ("with_transcript", lambda k=kind: ours(k, True))):
                cpu, wall = await measure(fn, per_round)
                totals[name][0] += cpu
                totals[name][1] += wall
        n = rounds * per_round
        row: dict[str, object] = {"kind": kind, "probes_each": n}
        for name, (cpu, wall) in totals.items():
            row[f"{name}_cpu_ms"] = round(1000 * cpu / n, 3)
            row[f"{name}_wall_ms"] = round(1000 * wall / n, 3)
        row["ratio"] = round(totals["mailcanary"][0] / totals["floor"][0], 2)
        row["ratio_with_transcript"] = round(totals["with_transcript"][0] / totals["floor"][0], 2)
        out.append(row)
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--per-round", type=int, default=40)
    args = parser.parse_args()
    ensure_installed()
    devnull = os.open(os.devnull, os.O_WRONLY)
    saved = os.dup(2)
    with tempfile.TemporaryDirectory(prefix="mailcanary-floor-") as tmp:
        root = Path(tmp)
        bed = MailTestBed(root / "bed")
        bed.start()
        try:
            config = bed_config(bed, root)
            os.dup2(devnull, 2)  # the probe log lines (info, JSON) go nowhere, as to journald
            configure_logging("info")
            try:
                rows = asyncio.run(bench(bed, config, args.rounds, args.per_round))
            finally:
                os.dup2(saved, 2)
        finally:
            with contextlib.suppress(Exception):
                bed.stop()
    machine = f"{os.cpu_count()} cores, {cpu_model()}, Python {platform.python_version()}"
    for row in rows:
        row["machine"] = machine
        print(json.dumps(row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
