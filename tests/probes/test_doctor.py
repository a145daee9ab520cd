"""The settings doctor against real Dovecot and Postfix on the standard ports of 127.0.0.3:
each wrong security on each protocol's port gets the working setting as `suggestion`; what no
other setting explains gets none; no candidate connection ever tries to log in."""

from __future__ import annotations

import asyncio
import re
import socket
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from mailcanary.config import load_config
from mailcanary.probes.runner import run_probe
from mailcanary.protocols.runtime import Runtime
from mailcanary.testbed.standard_ports import STANDARD_HOST, StandardPortsBed
from tests.helpers.faults import Script, fake_server
from tests.helpers.support import (
    account,
    check_json,
    cli,
    endpoint,
    password_file,
    write_config,
)

pytestmark = [pytest.mark.testbed, pytest.mark.xdist_group("standard-ports")]

H = STANDARD_HOST


def config(bed: StandardPortsBed, tmp: Path, proto: str, host: str, port: int, security: str,
           *, password: str | None = None, timeout: str = "3s") -> Path:
    pw = password_file(tmp, password or bed.user("carol").password, name="carol")
    return write_config(tmp, account("carol", username="carol", password_file=pw,
                                     ca_file=bed.ca_pem, timeout=timeout,
                                     **{proto: endpoint(host, port, security)}))


# (protocol, configured port, configured security) -> (reason, phase, suggestion)
WRONG_SETTINGS = [
    ("imap", 143, "tls", "handshake_failed", "tls", (993, "tls")),
    ("imap", 993, "starttls", "timeout", "greeting", (993, "tls")),
    ("imap", 143, "none", "tls_required", "auth", (993, "tls")),
    ("imap", 993, "none", "timeout", "greeting", (993, "tls")),
    ("imap", 110, "starttls", "protocol_error", "greeting", (993, "tls")),
    ("pop3", 110, "tls", "handshake_failed", "tls", (995, "tls")),
    ("pop3", 995, "starttls", "timeout", "greeting", (995, "tls")),
    ("pop3", 110, "none", "tls_required", "auth", (995, "tls")),
    ("smtp", 587, "tls", "handshake_failed", "tls", (465, "tls")),
    ("smtp", 465, "starttls", "timeout", "greeting", (465, "tls")),
    ("smtp", 587, "none", "tls_required", "auth", (465, "tls")),
    ("smtp", 25, "tls", "handshake_failed", "tls", (465, "tls")),
    # Nothing listens on the configured port, but the host has the standard ones.
    ("imap", 1143, "tls", "connection_refused", "connect", (993, "tls")),
    ("pop3", 1995, "starttls", "connection_refused", "connect", (995, "tls")),
    ("smtp", 2525, "starttls", "connection_refused", "connect", (465, "tls")),
]


@pytest.mark.parametrize(("proto", "port", "security", "reason", "phase", "expected"),
                         WRONG_SETTINGS, ids=[f"{p}-{n}-{s}" for p, n, s, *_ in WRONG_SETTINGS])
async def test_wrong_setting_gets_suggestion(
    standard_bed: StandardPortsBed, tmp_path: Path, proto: str, port: int, security: str,
    reason: str, phase: str, expected: tuple[int, str],
) -> None:
    cfg = config(standard_bed, tmp_path, proto, H, port, security)
    code, [row], output = await check_json(cfg, "--transcript")
    assert code == 1, output
    assert (row["reason"], row["phase"]) == (reason, phase), row
    assert row["server"] == f"{H}:{port}"
    want_port, want_security = expected
    assert row["suggestion"] == {"port": want_port, "security": want_security}, row
    assert (f'{proto} = {{ host = "{H}", port = {want_port}, security = "{want_security}" }}'
            in row["hint"])
    # The suggestion works: the same account with it logs in.
    fixed = config(standard_bed, tmp_path, proto, H, want_port, want_security)
    code, [row], output = await check_json(fixed)
    assert code == 0 and row["ok"], output


async def test_table_shows_suggestion(standard_bed: StandardPortsBed, tmp_path: Path) -> None:
    cfg = config(standard_bed, tmp_path, "pop3", H, 110, "tls")
    code, out, _ = await cli("check", "--config", str(cfg))
    assert code == 1
    assert 'suggestion: port = 995, security = "tls"' in out
    assert "handshake_failed" in out


async def test_starttls_not_offered_gets_implicit_tls(
    standard_bed: StandardPortsBed, tmp_path: Path
) -> None:
    """A port on the host that does not offer STARTTLS: the doctor finds 993."""
    script = Script("imap", capabilities="IMAP4rev1 AUTH=PLAIN")
    async with fake_server(script, host=H) as port:
        cfg = config(standard_bed, tmp_path, "imap", H, port, "starttls")
        _, [row], output = await check_json(cfg)
    assert (row["reason"], row["phase"]) == ("starttls_unavailable", "starttls"), output
    assert row["suggestion"] == {"port": 993, "security": "tls"}
    assert not any(line.split(" ", 2)[1:2] in (["LOGIN"], ["AUTHENTICATE"])
                   for line in script.received)


async def test_wrong_password_gets_no_suggestion(
    standard_bed: StandardPortsBed, tmp_path: Path
) -> None:
    cfg = config(standard_bed, tmp_path, "imap", H, 993, "tls", password="Wrong-Doctor-1")
    code, [row], _ = await check_json(cfg)
    assert (code, row["reason"]) == (1, "invalid_credentials")
    assert "suggestion" not in row and "answers IMAP" not in row["hint"]


@asynccontextmanager
async def black_hole(host: str, ports: list[int]) -> AsyncIterator[None]:
    """Accept on every port of `host` and never say a word."""
    async with AsyncExitStack() as stack:
        for port in ports:
            await stack.enter_async_context(fake_server(silent=True, host=host, port=port))
        yield


async def test_black_hole_everywhere_gets_no_suggestion_in_time(
    standard_bed: StandardPortsBed, tmp_path: Path
) -> None:
    """Silence on every port: the probe times out (3 s), the doctor's candidates time out
    within its budget (min(timeout, 5 s) = 3 s), and no suggestion comes out. Timed in
    process, so a loaded machine's interpreter start-up does not count."""
    host = "127.0.0.5"
    async with black_hole(host, [993, 143, 995, 110]):
        cfg = config(standard_bed, tmp_path, "imap", host, 993, "tls")
        started = time.monotonic()
        result = await run_probe("imap", "carol", load_config(cfg))
        elapsed = time.monotonic() - started
        _, [row], output = await check_json(cfg)
    assert (result.reason, result.phase) == ("timeout", "tls")
    assert "suggestion" not in result.extra
    assert elapsed < 3 + 3 + 1.5, elapsed  # the probe's timeout + the doctor's budget
    assert (row["reason"], row["phase"]) == ("timeout", "tls"), output
    assert "suggestion" not in row


async def test_once_per_endpoint_per_runtime(
    standard_bed: StandardPortsBed, tmp_path: Path
) -> None:
    """The daemon keeps its runtime: a second failure of the same endpoint gets the kept
    answer without a new candidate connection; a reload (`reconfigure`) asks again, and so
    does another runtime (another daemon or `check` run in the same process)."""
    script = Script("imap", capabilities="IMAP4rev1 AUTH=PLAIN")
    async with fake_server(script, host=H) as port:
        cfg = config(standard_bed, tmp_path, "imap", H, port, "starttls")
        first_config = load_config(cfg)
        runtime = Runtime.for_config(first_config)
        first = await run_probe("imap", "carol", first_config, runtime=runtime)
        after_first = script.connections
        again = await run_probe("imap", "carol", first_config, runtime=runtime)
        after_again = script.connections
        await run_probe("imap", "carol", first_config, runtime=Runtime.for_config(first_config))
        after_other = script.connections
        runtime.reconfigure(load_config(cfg))
        await run_probe("imap", "carol", first_config, runtime=runtime)
        after_reload = script.connections
    assert first.extra["suggestion"] == again.extra["suggestion"] == {"port": 993,
                                                                      "security": "tls"}
    assert after_first == 2  # the probe, and the doctor's "tls on the same port"
    assert after_again == after_first + 1  # the probe only: the doctor's answer was kept
    assert after_other == after_again + 2
    assert after_reload == after_other + 2


_LOGIN_ATTEMPT = re.compile(r"passwd-file\(|user=<[^>]+>|sasl_method|SASL", re.IGNORECASE)


async def test_no_candidate_attempts_a_login(
    standard_bed: StandardPortsBed, tmp_path: Path
) -> None:
    """Dovecot (auth_verbose) and Postfix log every authentication attempt with its user: the
    doctor's candidate connections for all three protocols leave none; a real wrong login
    afterwards does (so the check can fail)."""
    logs = [standard_bed.dovecot_log, standard_bed.postfix_log]
    start = [log.stat().st_size for log in logs]
    cases = [("imap", 143, "tls"), ("pop3", 995, "starttls"), ("smtp", 587, "tls"),
             ("imap", 1143, "starttls"), ("pop3", 110, "none"), ("smtp", 587, "none")]
    rows: list[dict[str, Any]] = []
    for i, (proto, port, security) in enumerate(cases):
        sub = tmp_path / str(i)
        sub.mkdir()
        _, [row], _ = await check_json(config(standard_bed, sub, proto, H, port, security))
        rows.append(row)
    assert all("suggestion" in row for row in rows), rows
    await asyncio.sleep(0.5)  # Postfix writes its log through postlogd
    new = "".join(log.read_bytes()[s:].decode(errors="replace") for log, s in zip(logs, start,
                                                                                   strict=True))
    assert "no auth attempts" in new
    assert not _LOGIN_ATTEMPT.search(new), _LOGIN_ATTEMPT.search(new)
    cfg = config(standard_bed, tmp_path, "imap", H, 993, "tls", password="Wrong-Doctor-2")
    await check_json(cfg)
    await asyncio.sleep(0.2)
    assert _LOGIN_ATTEMPT.search(standard_bed.dovecot_log.read_bytes()[start[0]:].decode(
        errors="replace"))


def test_standard_bed_really_listens(standard_bed: StandardPortsBed) -> None:
    for port in (143, 993, 110, 995, 25, 465, 587):
        with socket.create_connection((H, port), timeout=2):
            pass
