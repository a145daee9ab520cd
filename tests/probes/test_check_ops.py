"""`check` as operators run it: --nagios states and perfdata, --probe, the table's server
and certificate days, results printed as they finish, Ctrl-C printing what finished, the
default config path and --log-level after the command. Against the real test bed."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import time
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import pytest

from mailcanary.testbed import MailTestBed
from tests.helpers.support import (
    SRC,
    account,
    check_json,
    cli,
    endpoint,
    password_file,
    write_config,
)

pytestmark = pytest.mark.testbed

NAGIOS_LINE = re.compile(r"^MAILCANARY (OK|WARNING|CRITICAL|UNKNOWN) - [^|\n]+( \| .*)?$")


def _config(bed: MailTestBed, tmp: Path, *, password: str | None = None,
            extra: str = "", hang_port: int | None = None) -> Path:
    alice = bed.user("alice")
    pw = password_file(tmp, password or alice.password, name="alice")
    accounts = [account("alice", username="alice", password_file=pw, ca_file=bed.ca_pem,
                        imap=endpoint(bed.host, bed.imaps_port, "tls"),
                        smtp=endpoint(bed.host, bed.submission_port, "starttls"))]
    if hang_port is not None:
        accounts.append(account("slow", username="alice", password_file=pw, timeout="60s",
                                imap=endpoint("127.0.0.1", hang_port, "none")))
    return write_config(tmp, *accounts, extra=extra)


async def test_nagios_states_exit_codes_and_perfdata(testbed: MailTestBed, tmp_path: Path,
                                                     ) -> None:
    cfg = _config(testbed, tmp_path)
    code, out, err = await cli("check", "--nagios", "--config", str(cfg))
    assert code == 0, out + err
    line = out.strip()
    assert NAGIOS_LINE.match(line) and line.startswith("MAILCANARY OK - 2 probes ok | "), line
    assert re.search(r"'imap_alice'=\d+\.\d{3}s;;3;0; ", line), line
    assert re.search(r"'imap_alice_cert_days'=\d+;14:;0:;;", line), line
    assert re.search(r"'smtp_alice'=\d+\.\d{3}s;;3;0;", line), line
    # a certificate within the warning days: WARNING, exit 1
    code, out, _ = await cli("check", "--nagios", "--cert-warning-days", "1000000",
                             "--config", str(cfg))
    assert code == 1 and out.startswith("MAILCANARY WARNING - 2 warning(s): imap alice "
                                        "certificate expires in "), out
    (tmp_path / "bad").mkdir()
    bad = _config(testbed, tmp_path / "bad", password="wrong-password")
    code, out, _ = await cli("check", "--nagios", "--config", str(bad))
    assert code == 2 and out.startswith(
        "MAILCANARY CRITICAL - 2 of 2 probes failed: imap alice auth/invalid_credentials"), out
    assert NAGIOS_LINE.match(out.strip())


@pytest.mark.parametrize("args", [
    ["--config", "/nonexistent.toml"],
    ["--account", "nobody"],
    ["--cert-warning-days", "soon"],
    ["--no-such-flag"],
])
async def test_nagios_unknown_on_config_and_usage_errors(tmp_path: Path,
                                                         args: list[str]) -> None:
    cfg = write_config(tmp_path, account("a", password_file=tmp_path / "pw",
                                         imap=endpoint("127.0.0.1", 1, "tls")))
    code, out, err = await cli("check", "--nagios", "--config", str(cfg), *args)
    assert code == 3, out + err
    if "--config" in args or "--account" in args:
        assert NAGIOS_LINE.match(out.strip()) and out.startswith("MAILCANARY UNKNOWN - "), out
    assert "Traceback" not in out + err


async def test_probe_kind_selection_and_table_columns(testbed: MailTestBed,
                                                      tmp_path: Path) -> None:
    cfg = _config(testbed, tmp_path)
    code, rows, out = await check_json(cfg, "--probe", "smtp")
    assert code == 0 and [r["probe"] for r in rows] == ["smtp"], out
    code, rows, _ = await check_json(cfg, "--probe", "imap")
    not_after = datetime.fromisoformat(rows[0]["tls"]["not_after"].replace("Z", "+00:00"))
    days = (not_after.timestamp() - time.time()) // 86400
    code, out, err = await cli("check", "--probe", "imap", "--config", str(cfg))
    assert code == 0, out + err
    header, row = out.splitlines()[:2]
    assert header.split() == ["PROBE", "TARGET", "SERVER", "RESULT", "PHASE", "TIME", "CERT"]
    cells = row.split()
    assert cells[:4] == ["imap", "alice", f"{testbed.host}:{testbed.imaps_port}", "ok"]
    assert re.fullmatch(r"\d+d", cells[-1]) and abs(int(cells[-1][:-1]) - days) <= 1, row


async def test_config_from_environment_and_log_level_after_command(
        testbed: MailTestBed, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = _config(testbed, tmp_path)
    monkeypatch.setenv("MAILCANARY_CONFIG", str(cfg))
    code, out, err = await cli("check", "--probe", "imap", "--json", "--log-level", "debug")
    assert code == 0 and '"probe": "imap"' in out, out + err  # parsed after `check`
    monkeypatch.delenv("MAILCANARY_CONFIG")
    code, out, err = await cli("validate")
    assert code == 2 and "/etc/mailcanary/mailcanary.toml" in err, out + err


@pytest.fixture
async def silent_server() -> AsyncIterator[int]:
    """Accepts and never greets: an IMAP probe on it waits for its whole timeout."""
    held: list[asyncio.StreamWriter] = []

    async def hold(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        held.append(w)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    for w in held:
        w.close()
    server.close()


def _interruptible() -> None:
    """In the child, SIGINT as at a terminal: an ignored disposition and a blocked signal are
    inherited through exec, and a loaded xdist worker had one of them (the child then ran
    until its 60 s probe timeout, deaf to Ctrl-C), which a user's shell never passes on."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


async def test_results_stream_and_ctrl_c_prints_what_finished(
        testbed: MailTestBed, tmp_path: Path, silent_server: int) -> None:
    cfg = _config(testbed, tmp_path, hang_port=silent_server)
    env = {**os.environ, "PYTHONPATH": SRC}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mailcanary", "check", "--config", str(cfg),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
        preexec_fn=_interruptible)
    assert proc.stdout is not None
    seen: list[str] = []
    async with asyncio.timeout(20):  # the slow probe's timeout is 60 s: rows come before
        while len(seen) < 3:  # the header, then alice's imap and smtp as they finish
            seen.append((await proc.stdout.readline()).decode())
    assert seen[0].startswith("PROBE"), seen
    assert sorted(s.split()[:2][0] for s in seen[1:]) == ["imap", "smtp"], seen
    assert all(s.split()[3] == "ok" for s in seen[1:]), seen
    assert proc.returncode is None  # still waiting for the slow server
    proc.send_signal(signal.SIGINT)
    try:  # at once when run alone; a loaded CI worker has taken over 10 s
        out, err = await asyncio.wait_for(proc.communicate(), 40)
    except TimeoutError:
        proc.kill()
        out, err = await proc.communicate()
        raise AssertionError(f"no exit 40 s after SIGINT: {out!r} {err!r}") from None
    assert proc.returncode == 130, (out, err)
    assert "2 ok, 0 failed, 1 not finished (interrupted)" in out.decode()
    assert "Traceback" not in err.decode()
