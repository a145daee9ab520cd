"""The daemon under overload: thousands of probes cut by their timeout around a late TLS
handshake, while /metrics is scraped and SIGTERM arrives (issue 15's descriptor bug).

Before the fix, a probe cancelled just as its handshake completed closed its socket under
the live TLS transport: the reused descriptor number broke the next probes
(`File descriptor N is used by transport`, internal_error), /metrics connections and the
loop's signal wake-ups.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import ssl
import time
from pathlib import Path

import httpx
import pytest
import trustme

from tests.helpers.daemon_support import (
    free_port,
    parse_metrics,
    running_daemon,
    wait_exit,
)
from tests.helpers.late_tls import late_tls_server
from tests.helpers.support import password_file

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("standard-ports")]

ACCOUNTS = 150
TIMEOUT = 0.6  # seconds; the server's handshakes complete 0.3-0.9 s after connecting
LOAD_SECONDS = 14.0
GRACE = 5.0  # app.STOP_GRACE


def _config(tmp: Path, port: int, ca: Path, imap_port: int, smtp_port: int) -> Path:
    pw = password_file(tmp)
    state = tmp / "state"
    state.mkdir()
    parts = [
        f'[daemon]\nlisten = "127.0.0.1:{port}"\nstate_dir = "{state}"\n'
        "max_connections_per_server = 2000\nmax_concurrent_probes = 4000\n",
        f'[defaults]\ninterval = "1s"\ntimeout = "{TIMEOUT}s"\n',
    ]
    for i in range(ACCOUNTS):
        parts.append(
            f'[[accounts]]\nname = "a{i:04d}"\naddress = "a{i:04d}@example.test"\n'
            f'username = "a{i:04d}"\npassword_file = "{pw}"\nca_file = "{ca}"\n'
            f'imap = {{ host = "127.0.0.1", port = {imap_port}, security = "tls" }}\n'
            f'smtp = {{ host = "127.0.0.1", port = {smtp_port}, security = "tls" }}\n'
        )
    path = tmp / "mailcanary.toml"
    path.write_text("\n".join(parts))
    return path


async def _scrape_until(port: int, stop: asyncio.Event, failures: list[str]) -> int:
    """Scrape /metrics every 0.2 s as Prometheus does (keep-alive); count what failed.
    A slow answer is the overload's (the loop is saturated on purpose), a reset is a bug."""
    done = 0
    async with httpx.AsyncClient(timeout=30) as client:
        while not stop.is_set():
            try:
                response = await client.get(f"http://127.0.0.1:{port}/metrics")
                response.raise_for_status()
                done += 1
            except httpx.HTTPError as exc:
                failures.append(repr(exc))
            await asyncio.sleep(0.2)
    return done


async def test_cancelled_handshakes_break_nothing(tmp_path: Path) -> None:
    ca = trustme.CA()
    server_ctx = _server_ctx(ca)
    ca_pem = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_pem))
    with late_tls_server(server_ctx, (TIMEOUT * 0.5, TIMEOUT * 1.5)) as server:
        port = free_port()
        config = _config(tmp_path, port, ca_pem, server.ports["imap"], server.ports["smtp"])
        async with running_daemon(config, port) as daemon:
            stop = asyncio.Event()
            failures: list[str] = []
            scraper = asyncio.create_task(_scrape_until(port, stop, failures))
            await asyncio.sleep(LOAD_SECONDS)
            stop.set()
            scrapes = await scraper
            async with httpx.AsyncClient(timeout=30) as client:
                response = await client.get(f"http://127.0.0.1:{port}/metrics")
            last = parse_metrics(response.text)
            started = time.monotonic()
            daemon.signal(signal.SIGTERM)
            with contextlib.suppress(AssertionError):
                await wait_exit(daemon.proc, 60)
            stopped_in = time.monotonic() - started
    assert daemon.proc.returncode == 0, daemon.tail()
    runs = sum(v for _, v in last.get("mailcanary_probes_total", []))
    by_reason: dict[str, float] = {}
    for labels, count in last.get("mailcanary_probe_failures_total", []):
        by_reason[labels["reason"]] = by_reason.get(labels["reason"], 0) + count
    log = daemon.log_path.read_text()
    print(f"runs={runs} handshakes={server.handshakes} accepted={server.accepted} "
          f"scrapes={scrapes} stopped_in={stopped_in:.2f} reasons={by_reason}")
    assert runs >= 1500, (runs, by_reason)  # thousands of probes, nearly all cut short
    assert server.handshakes >= 300, server.handshakes  # and many handshakes completed
    assert by_reason.get("internal_error", 0) == 0, (by_reason, daemon.tail())
    assert "is used by transport" not in log
    assert failures == [] and scrapes >= 3, (failures, scrapes)
    assert stopped_in < GRACE + 3, stopped_in


def _server_ctx(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(ctx)
    return ctx

