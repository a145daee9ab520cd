"""An auth or rate-limited backoff ends only on a result that got past the login: a run that
fails before it (a connect timeout while waiting for a slot, a refused connection, a TLS or
greeting failure) says nothing about the credentials and must not put a failing account
back to full rate (in a provider-wide auth outage that was a feedback loop: more load, more
slot waits, more timeouts, more runs at full rate)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailcanary.config import load_config
from mailcanary.daemon.backoff import Backoff
from mailcanary.daemon.scheduler import Job, ProbeScheduler, job_specs
from mailcanary.probes import PROBES
from tests.helpers.faults import Script, fake_server
from tests.helpers.support import account, endpoint, password_file, write_config

REFUSED = "NO [AUTHENTICATIONFAILED] Authentication failed."


@pytest.mark.parametrize("cls,phase", [
    ("timeout", "connect"), ("network", "connect"), ("tls", "tls"),
    ("timeout", "greeting"), ("network", "greeting"), ("timeout", "auth"),
    ("dns", "dns"), ("unavailable", "greeting"), ("timeout", "token"),
])
def test_a_failure_before_the_login_keeps_the_streak(cls: str, phase: str) -> None:
    backoff = Backoff()
    for first in ("auth", "rate_limited"):
        backoff.record("imap", first, first, "auth" if first == "auth" else "greeting")
        backoff.record("imap", first, first, "auth" if first == "auth" else "greeting")
        assert backoff.factor("imap", first) == 4
        assert backoff.record("imap", first, cls, phase) == (4, 4)  # neither ends nor extends
        assert backoff.factor("imap", first) == 4


@pytest.mark.parametrize("cls,phase", [("ok", None), ("mailbox", "select"),
                                       ("timeout", "fetch"), ("rejected", "send")])
def test_a_result_past_the_login_ends_the_streak(cls: str, phase: str | None) -> None:
    backoff = Backoff()
    backoff.record("imap", "a", "auth", "auth")
    assert backoff.record("imap", "a", cls, phase) == (2, 1)
    assert not backoff.active("imap", "a")


async def test_scheduler_keeps_an_auth_backoff_while_the_server_is_unreachable(
    tmp_path: Path,
) -> None:
    """Through the daemon's scheduler against real sockets: refused twice (4x), then the
    server is gone (connection refused, phase connect): still 4x; it answers again and lets
    the login in: 1x."""
    refusing = Script("imap", login_reply=REFUSED)
    async with fake_server(refusing) as port:
        path = write_config(tmp_path, account(
            "acc", imap=endpoint("127.0.0.1", port), password_file=password_file(tmp_path)))
        config = load_config(path)
        scheduler = ProbeScheduler(config, lambda result: None)
        scheduler.jobs = {s.job_id: Job(s) for s in job_specs(config, PROBES)}  # not started
        backoff = scheduler.backoff
        for _ in range(2):
            result = await scheduler.run_now("imap", "acc")
            assert (result.cls, result.reason) == ("auth", "invalid_credentials"), result
        assert backoff.factor("imap", "acc") == 4
    try:
        result = await scheduler.run_now("imap", "acc")  # nothing listens now
        assert not result.ok and result.phase == "connect", result
        assert backoff.factor("imap", "acc") == 4
        async with fake_server(Script("imap"), port=port):
            result = await scheduler.run_now("imap", "acc")
        assert result.ok, result
        assert backoff.factor("imap", "acc") == 1
    finally:
        await scheduler.runtime.close()
