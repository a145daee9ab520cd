"""Lockout protection against the real Dovecot, counting its failed logins in its own log:
after `auth_pause_after` consecutive auth failures no more attempts reach the server, also
after a restart; a reload that changes the account, or a new password in the file, lets
logins resume."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from mailcanary.testbed import MailTestBed
from tests.helpers.daemon_support import (
    RunningDaemon,
    bed_account,
    daemon_config,
    free_port,
    running_daemon,
    value,
)

pytestmark = pytest.mark.testbed

USER = "dave"
WRONG = "Wrong-Passw0rd-for-dave"


def failed_logins(bed: MailTestBed) -> int:
    """Dovecot's own count: one `auth failed` line per refused IMAP login of the user."""
    text = bed.dovecot_log.read_text(errors="replace")
    return sum(1 for line in text.splitlines()
               if "imap-login" in line and "auth failed" in line and f"user=<{USER}>" in line)


async def _paused(daemon: RunningDaemon) -> list[str]:
    _, health = await daemon.health()
    found: list[str] = health.get("paused", [])
    return found


async def _pause_reached(daemon: RunningDaemon, bed: MailTestBed, before: int) -> None:
    async def paused() -> bool:
        return await _paused(daemon) == ["imap:locky"]
    await daemon.wait_for(paused, 40, "the account paused")
    await asyncio.sleep(1.0)  # Dovecot writes its line as the connection closes
    assert failed_logins(bed) - before == 3
    m = await daemon.metrics()
    assert value(m, "mailcanary_probe_paused", probe="imap", target="locky") == 1.0
    _, health = await daemon.health()
    [entry] = [t for t in health["targets"] if t["target"] == "locky"]
    assert entry["paused"] is True and entry["reason"] == "invalid_credentials"
    status = (await daemon.client.get(f"http://127.0.0.1:{daemon.port}/api/v1/status")).json()
    [row] = [t for t in status["targets"] if t["target"] == "locky"]
    assert row["paused"] is True
    page = (await daemon.client.get(f"http://127.0.0.1:{daemon.port}/status")).text
    assert "logins paused until the password" in page
    # backed off 8x of 1 s: in 12 s a few more runs come due, and none logs in
    await asyncio.sleep(12)
    assert failed_logins(bed) - before == 3
    assert [e for e in daemon.logs() if e.get("event") == "probe_paused"]


async def test_logins_pause_then_resume_on_reload_and_on_new_secret(
    testbed: MailTestBed, tmp_path: Path,
) -> None:
    port = free_port()
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    acc = bed_account(testbed, "locky", USER, secrets, password=WRONG, interval="1s",
                      smtp=False, timeout="5s")
    config = daemon_config(tmp_path, port, acc, interval="1s")
    config.write_text(config.read_text().replace("[defaults]\n",
                                                 "[defaults]\nauth_pause_after = 3\n"))
    before = failed_logins(testbed)
    async with running_daemon(config, port) as daemon:
        await _pause_reached(daemon, testbed, before)
        paused_logs = [e for e in daemon.logs() if e.get("event") == "logins_paused"]
        assert paused_logs and paused_logs[0]["account"] == "locky"
        code, _ = await daemon.stop()
        assert code == 0
    (tmp_path / "daemon.log").unlink()
    async with running_daemon(config, port) as daemon:  # a restart: the pause holds
        assert await _paused(daemon) == ["imap:locky"]
        await asyncio.sleep(10)
        assert failed_logins(testbed) - before == 3

        # a reload that changes the account: logins resume (and fail again: still wrong)
        text = config.read_text()
        assert text.count('timeout = "5s"') == 2  # [defaults] and the account's
        paused_at = failed_logins(testbed)  # paused: no login until the reload resumes it
        config.write_text(text.replace('timeout = "5s"', 'timeout = "4s"'))
        async def resumed() -> bool:
            return await _paused(daemon) == []
        await daemon.wait_for(resumed, 20, "resumed by the changed account")
        assert any(e.get("event") == "logins_resumed"
                   and e.get("reason") == "the account's config changed" for e in daemon.logs())
        await _pause_reached(daemon, testbed, paused_at)  # not read after the resume: its
        # first run may already have failed by the time the resume is seen

        # the right password in the file: logins resume and succeed
        (secrets / "locky").write_text(testbed.user(USER).password + "\n")
        async def ok() -> bool:
            m = await daemon.metrics()
            return value(m, "mailcanary_probe_success", probe="imap", target="locky") == 1.0
        await daemon.wait_for(ok, 30, "a successful login with the new password")
        m = await daemon.metrics()
        assert value(m, "mailcanary_probe_paused", probe="imap", target="locky") is None
        assert await _paused(daemon) == []
        assert any(e.get("event") == "logins_resumed" and e.get("reason") == "the secret changed"
                   for e in daemon.logs())
        assert WRONG not in daemon.log_path.read_text()
        code, _ = await daemon.stop()
        assert code == 0
