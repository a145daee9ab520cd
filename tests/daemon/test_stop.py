"""SIGTERM while hundreds of probes are stuck: the daemon gives them its grace time, cancels
them quietly (no traceback per probe: APScheduler logs any exception a job raises,
cancellation included) and exits 0 within that grace."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
import trustme

from tests.helpers.daemon_support import free_port, running_daemon
from tests.helpers.late_tls import late_tls_server
from tests.helpers.support import password_file

pytestmark = pytest.mark.slow

ACCOUNTS = 200
GRACE = 5.0  # app.STOP_GRACE


def _config(tmp: Path, port: int, ca: Path, imap_port: int, smtp_port: int) -> Path:
    pw = password_file(tmp)
    state = tmp / "state"
    state.mkdir()
    parts = [
        f'[daemon]\nlisten = "127.0.0.1:{port}"\nstate_dir = "{state}"\n'
        "max_connections_per_server = 1000\nmax_concurrent_probes = 2000\n",
        '[defaults]\ninterval = "2s"\ntimeout = "60s"\n',
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


async def test_sigterm_cancels_stuck_probes_quietly_within_grace(tmp_path: Path) -> None:
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    ca_pem = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_pem))
    with late_tls_server(server_ctx, (300.0, 300.0)) as server:  # handshakes never complete
        port = free_port()
        config = _config(tmp_path, port, ca_pem, server.ports["imap"], server.ports["smtp"])
        async with running_daemon(config, port) as daemon:
            async def in_flight() -> bool:
                return server.accepted >= 2 * ACCOUNTS

            await daemon.wait_for(in_flight, 30, "every probe in flight")
            code, seconds = await daemon.stop(within=30)
    assert code == 0, daemon.tail()
    log = daemon.log_path.read_text()
    stopped = [e for e in daemon.logs() if e.get("event") == "daemon_stopped"]
    assert stopped and stopped[0]["cancelled_probes"] >= ACCOUNTS, daemon.tail()
    assert "Traceback" not in log and "raised an exception" not in log, daemon.tail(60)
    assert seconds < GRACE + 3, seconds

