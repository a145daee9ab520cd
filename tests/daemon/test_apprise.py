"""`kind = "apprise"` end to end: the `mailcanary run` subprocess notifies through the real
Apprise library: `json://` to a local HTTP receiver and `mailto://` into the test bed's
Postfix (carol's real mailbox), firing and resolved, a server incident and a target event;
the URLs (they may hold tokens) never reach the log."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from mailcanary.daemon.alerts.notify import AppriseSink
from mailcanary.daemon.alerts.state import AlertEvent
from mailcanary.daemon.alerts.texts import SinkError
from mailcanary.testbed import MailTestBed
from tests.helpers.daemon_support import daemon_config, free_port, running_daemon
from tests.helpers.faults import Script, fake_server
from tests.helpers.receivers import receiver
from tests.helpers.support import cli, endpoint

pytestmark = pytest.mark.testbed

DOWN = "NO [UNAVAILABLE] Temporary authentication failure, try again later."
TOKEN = "Apprise-Token-4711"  # stands for the secret an Apprise URL often carries


def account(name: str, port: int) -> str:
    return (f'[[accounts]]\nname = "{name}"\naddress = "{name}@example.test"\n'
            f'password = "Pw-{name}-1"\ntimeout = "3s"\n'
            f"imap = {endpoint('127.0.0.1', port)}\n")


def carol_mail(testbed: MailTestBed) -> list[EmailMessage]:
    found = []
    for path in testbed.maildir("carol").rglob("*"):
        if path.is_file() and path.parent.name in ("new", "cur"):
            message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            assert isinstance(message, EmailMessage)
            found.append(message)
    return found


def texts(testbed: MailTestBed) -> list[str]:
    out = []
    for message in carol_mail(testbed):
        body = message.get_body(("plain", "html"))
        content = body.get_content() if body is not None else ""
        out.append(f"{message['Subject']}\n{content}")
    return out


async def test_apprise_json_and_mailto_fire_and_resolve(
    testbed: MailTestBed, tmp_path: Path
) -> None:
    dead_a, dead_b = Script("imap", login_reply=DOWN), Script("imap", login_reply=DOWN)
    port = free_port()
    async with (
        fake_server(dead_a) as port_a, fake_server(dead_b) as port_b, receiver() as hook,
    ):
        urls = tmp_path / "apprise-urls"
        urls.write_text(
            "# one Apprise URL a line\n"
            f"json://127.0.0.1:{hook.port}/notify/{TOKEN}\n"
            f"mailto://127.0.0.1:{testbed.smtp_port}?to=carol@example.test"
            "&from=alerts@example.test&mode=insecure\n"
        )
        urls.chmod(0o600)
        parts = "".join(account(f"a{i}", port_a) for i in range(3)) + account("lone", port_b)
        sink = f'[[alerts]]\nkind = "apprise"\nurls_file = "{urls}"\nafter = 2\n'
        config = daemon_config(tmp_path, port, parts, sink, interval="1s")
        async with running_daemon(config, port) as daemon:
            def notes(kind: str) -> list[Any]:
                return [b for b in hook.bodies(f"/notify/{TOKEN}") if b["type"] == kind]

            async def fired() -> bool:
                return len(notes("failure")) >= 2
            await daemon.wait_for(fired, 30, "firing notifications")
            dead_a.login_reply = dead_b.login_reply = "OK"

            async def resolved() -> bool:
                return len(notes("success")) >= 2
            await daemon.wait_for(resolved, 30, "resolved notifications")

            async def mailed() -> bool:  # Postfix delivers on its own time
                mails = texts(testbed)
                return any("FIRING] server 127.0.0.1" in m for m in mails) and any(
                    "RESOLVED] imap lone" in m for m in mails)
            await daemon.wait_for(mailed, 90, "the e-mails in carol's mailbox")
            code, _ = await daemon.stop()
            assert code == 0
    firing = notes("failure")
    assert len(firing) == 2, firing
    [server_note] = [b for b in firing if b["title"].startswith("[mailcanary FIRING] server ")]
    [lone_note] = [b for b in firing if b["title"].startswith("[mailcanary FIRING] imap lone")]
    assert server_note["title"] == (f"[mailcanary FIRING] server 127.0.0.1:{port_a}: "
                                    "3 targets server/unavailable")
    assert "a0, a1, a2" in server_note["message"] and "hint:" in server_note["message"]
    assert "targets failing since 20" in server_note["message"]
    assert lone_note["title"] == "[mailcanary FIRING] imap lone: server/unavailable in phase auth"
    assert "failing since" in lone_note["message"] and "hint:" in lone_note["message"]
    titles = sorted(b["title"] for b in notes("success"))
    assert titles == sorted([
        f"[mailcanary RESOLVED] server 127.0.0.1:{port_a}: 3 targets server/unavailable",
        "[mailcanary RESOLVED] imap lone: server/unavailable in phase auth",
    ])
    mails = texts(testbed)
    assert any("FIRING] server 127.0.0.1" in m and "a0, a1, a2" in m for m in mails), mails
    assert any("RESOLVED] imap lone" in m and "recovered" in m for m in mails), mails
    logs = daemon.log_path.read_text()
    assert TOKEN not in logs and "Pw-a0-1" not in logs
    assert "alert_sent" in logs


async def test_unreadable_urls_file_is_a_config_error_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-urls"
    config = tmp_path / "mailcanary.toml"
    config.write_text(
        '[[accounts]]\nname = "a"\naddress = "a@example.test"\npassword = "x"\n'
        'imap = { host = "127.0.0.1", port = 9, security = "none", allow_insecure_auth = true }\n'
        f'[[alerts]]\nkind = "apprise"\nurls_file = "{missing}"\n'
    )
    code, out, err = await cli("validate", "--config", str(config))
    assert code == 2
    assert "alerts[0].urls_file" in out + err and str(missing) in out + err
    assert "Traceback" not in out + err


async def test_a_retry_goes_only_to_the_urls_that_failed() -> None:
    """Two URLs, the second answers HTTP 500 once: the engine's retry of the event reaches
    the second again, the first only once; a failure names the URL by position only."""
    event = AlertEvent(
        status="firing", probe="imap", target="alice", cls="network",
        reason="connection_refused", phase="connect", hint="h", detail="d", since=0.0,
        failures=2, at=0.0, expires=60.0, server="127.0.0.1:993",
    )
    async with receiver() as good, receiver(fail_first=1) as flaky:
        sink = AppriseSink([f"json://127.0.0.1:{good.port}/a/{TOKEN}",
                            f"json://127.0.0.1:{flaky.port}/b/{TOKEN}"])
        with pytest.raises(SinkError) as failed:
            await sink.send(event)
        assert str(failed.value) == "apprise: URL 2 (json://) was not delivered"
        await sink.send(event)  # the retry
        assert len(good.bodies(f"/a/{TOKEN}")) == 1 and len(flaky.bodies(f"/b/{TOKEN}")) == 1
        await sink.send(event)  # a new send of the same event object: nothing left to do
        assert len(good.bodies(f"/a/{TOKEN}")) == 1
