"""The daemon's own alerts, end to end: a flapping fake IMAP server, the `mailcanary run`
subprocess, and real receivers (local HTTP, the test bed's mailbox, Debian's Alertmanager)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mailcanary.testbed import MailTestBed
from tests.helpers.daemon_support import (
    bed_account,
    daemon_config,
    free_port,
    ready_service,
    running_daemon,
    value,
)
from tests.helpers.faults import Script, fake_server
from tests.helpers.receivers import receiver
from tests.helpers.support import endpoint

pytestmark = pytest.mark.testbed

PAYLOAD_KEYS = {"status", "scope", "server", "provider", "probe", "target", "class", "reason",
                "phase", "hint", "detail", "since", "failures"}
DOWN = "NO [UNAVAILABLE] Temporary authentication failure, try again later."


def flaky_account(port: int) -> str:
    return (
        '[[accounts]]\nname = "flaky"\naddress = "flaky@example.test"\n'
        'password = "flaky-Secret-99"\ntimeout = "3s"\n'
        f"imap = {endpoint('127.0.0.1', port)}\n"
    )


async def test_webhook_slack_email_fire_repeat_resolve(
    testbed: MailTestBed, tmp_path: Path
) -> None:
    script = Script("imap", login_reply=DOWN)
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    port = free_port()
    async with (
        fake_server(script) as imap_port,
        receiver(fail_first=1) as hook,
        receiver() as slack,
    ):
        sinks = (
            f'[[alerts]]\nkind = "webhook"\nurl = "{hook.url}/hook"\nafter = 2\nrepeat = "2s"\n'
            f'[[alerts]]\nkind = "slack"\nurl = "{slack.url}/slack"\nafter = 3\n'
            '[[alerts]]\nkind = "email"\naccount = "mailer"\nto = ["carol@example.test"]\n'
            "after = 2\n"
        )
        config = daemon_config(
            tmp_path, port, flaky_account(imap_port),
            bed_account(testbed, "mailer", "dave", secrets, imap=False, interval="1h"),
            sinks, interval="1s",
        )
        async with running_daemon(config, port) as daemon:
            async def repeated() -> bool:
                return len([b for b in hook.bodies("/hook") if b["status"] == "firing"]) >= 2
            await daemon.wait_for(repeated, 25, "a firing webhook and its repeat")
            script.login_reply = "OK"

            async def resolved() -> bool:
                return any(b["status"] == "resolved" for b in hook.bodies("/hook")) and any(
                    "RESOLVED" in b["text"] for b in slack.bodies("/slack"))
            await daemon.wait_for(resolved, 15, "resolved notifications")
            metrics = await daemon.metrics()
            code, _ = await daemon.stop()
            assert code == 0

    firing = [b for b in hook.bodies("/hook") if b["status"] == "firing"]
    first = firing[0]
    assert set(first) == PAYLOAD_KEYS
    assert (first["probe"], first["target"], first["class"], first["reason"]) == (
        "imap", "flaky", "server", "unavailable")
    assert first["phase"] == "auth" and first["failures"] == 2
    assert (first["scope"], first["server"], first["provider"]) == (
        "target", f"127.0.0.1:{imap_port}", "")
    assert first["since"].endswith("Z") and "UNAVAILABLE" in first["detail"]
    assert firing[1]["failures"] > first["failures"]
    last = hook.bodies("/hook")[-1]
    assert last["status"] == "resolved" and last["since"] == first["since"]
    assert value(metrics, "mailcanary_alert_notifications_total", sink="webhook",
                 status="retried") == 1.0  # the receiver's first HTTP 500
    assert (value(metrics, "mailcanary_alert_notifications_total", sink="webhook",
                  status="sent") or 0) >= 3
    slack_text = slack.bodies("/slack")[0]["text"]
    assert "FIRING" in slack_text and "server/unavailable" in slack_text
    assert "hint:" in slack_text and "detail:" in slack_text
    # The e-mail sink went through dave's real SMTP login into carol's real mailbox.
    mails = [p.read_text(errors="replace") for p in testbed.maildir("carol").rglob("*")
             if p.is_file() and p.parent.name in ("new", "cur")]
    assert any("[mailcanary FIRING] imap flaky" in m for m in mails), len(mails)
    logs = daemon.log_path.read_text()
    assert "flaky-Secret-99" not in logs and testbed.user("dave").password not in logs


async def test_slow_sink_never_blocks_probes(tmp_path: Path) -> None:
    """A webhook that takes 4 s to answer each alert: probes keep their 1 s schedule while
    the alert is being delivered, and the alert still arrives."""
    script = Script("imap", login_reply=DOWN)
    port = free_port()
    async with receiver(delay=4.0) as slow, fake_server(script) as imap_port:
        sinks = (f'[[alerts]]\nkind = "webhook"\nurl = "{slow.url}/hook"\nafter = 1\n'
                 'repeat = "1s"\n')
        config = daemon_config(tmp_path, port, flaky_account(imap_port), sinks, interval="1s")
        async with running_daemon(config, port) as daemon:
            await daemon.wait_for(lambda: _true(slow.answered >= 1), 15, "a first alert POST")
            before = len(daemon.probe_lines("imap", "flaky"))
            await asyncio.sleep(5)
            during = len(daemon.probe_lines("imap", "flaky")) - before
            await daemon.wait_for(lambda: _true(bool(slow.bodies("/hook"))), 15,
                                  "the slow webhook's answer")
            code, _ = await daemon.stop()
            assert code == 0
    assert during >= 3, during
    assert slow.bodies("/hook")[0]["status"] == "firing"


async def _true(value: bool) -> bool:
    return value


@contextlib.asynccontextmanager
async def alertmanager(tmp_path: Path, config: str | None = None) -> AsyncIterator[str]:
    """Debian's Alertmanager with `config` (default: a route to nowhere)."""
    binary = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if binary is None:
        pytest.skip("Debian's prometheus-alertmanager is not installed")
    conf = tmp_path / "alertmanager.yml"
    conf.write_text(config or "route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n")
    port = free_port()
    async with ready_service(
        [binary, f"--config.file={conf}", f"--storage.path={tmp_path / 'am-data'}",
         f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
        tmp_path / "am.log",
        port,
        tries=100,
    ) as url:
        yield url


async def test_real_alertmanager_receives_and_resolves(tmp_path: Path) -> None:
    script = Script("imap", login_reply=DOWN)
    port = free_port()
    async with alertmanager(tmp_path) as am_url, fake_server(script) as imap_port:
        sinks = f'[[alerts]]\nkind = "alertmanager"\nurl = "{am_url}"\nafter = 2\n'
        account = flaky_account(imap_port) + 'labels = { team = "ops" }\n'
        config = daemon_config(tmp_path, port, account, sinks, interval="1s")
        async with running_daemon(config, port) as daemon, httpx.AsyncClient() as client:
            async def alerts() -> list[dict[str, Any]]:
                response = await client.get(f"{am_url}/api/v2/alerts")
                found: list[dict[str, Any]] = response.json()
                return found

            async def active() -> list[dict[str, Any]]:
                return [a for a in await alerts() if a["status"]["state"] == "active"]
            found = await daemon.wait_for(active, 20, "the alert in Alertmanager")
            labels = found[0]["labels"]
            assert labels == {
                "alertname": "MailcanaryProbeFailing", "probe": "imap", "target": "flaky",
                "class": "server", "reason": "unavailable", "severity": "warning",
                "server": f"127.0.0.1:{imap_port}", "team": "ops",  # provider "": no label
            }
            assert set(found[0]["annotations"]) == {"summary", "hint", "detail"}
            script.login_reply = "OK"

            async def gone() -> bool:
                return not await active()
            await daemon.wait_for(gone, 20, "the alert resolved in Alertmanager")
            code, _ = await daemon.stop()
            assert code == 0
    sent = [e for e in daemon.logs() if e.get("event") == "alert_sent"]
    assert {e["status"] for e in sent} == {"firing", "resolved"}
    print(json.dumps(labels))
