"""`/status` and `/api/v1/status` of a real `mailcanary run` against the test bed: the
contract's JSON, filters, a history that survives a restart and a reload, no secret in the
page or the history file, and the web.yml's basic auth in front of both."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import bcrypt
import httpx
import pytest

from mailcanary.daemon.status.facts import Facts
from mailcanary.daemon.status.history import DB_NAME
from mailcanary.daemon.status.page import Query, Row, _matches
from mailcanary.testbed import MailTestBed
from tests.helpers.daemon_support import (
    RunningDaemon,
    bed_account,
    daemon_config,
    free_port,
    running_daemon,
)

pytestmark = pytest.mark.testbed

WRONG = "Wr0ng-Status-Pa55-zz"  # bob's wrong password: must appear nowhere
CONTRACT_KEYS = {"probe", "target", "server", "provider", "ok", "class", "reason", "phase",
                 "hint", "since", "uptime", "recent"}


def two_accounts(bed: MailTestBed, tmp: Path, port: int, interval: str = "1s") -> Path:
    secrets = tmp / "secrets"
    secrets.mkdir(exist_ok=True)
    alice = bed_account(bed, "alice", "alice", secrets) + 'labels = { team = "sales" }\n'
    return daemon_config(
        tmp, port, alice,
        bed_account(bed, "bob", "bob", secrets, password=WRONG), interval=interval)


async def status(daemon: RunningDaemon, query: str = "") -> list[dict[str, Any]]:
    response = await daemon.client.get(f"http://127.0.0.1:{daemon.port}/api/v1/status?{query}")
    assert response.status_code == 200, response.text
    targets: list[dict[str, Any]] = response.json()["targets"]
    return targets


def by_key(targets: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(t["probe"], t["target"]): t for t in targets}


async def test_status_json_html_filters_and_history_across_restart_and_reload(
    testbed: MailTestBed, tmp_path: Path
) -> None:
    port = free_port()
    config = two_accounts(testbed, tmp_path, port)
    async with running_daemon(config, port) as daemon:
        async def three_runs() -> bool:
            t = by_key(await status(daemon))
            return len(t["imap", "alice"]["recent"]) >= 3 and t["imap", "bob"]["ok"] is False
        await daemon.wait_for(three_runs, 30, "three runs of alice, bob failing")
        targets = by_key(await status(daemon))
        assert set(targets) == {(p, n) for p in ("imap", "smtp") for n in ("alice", "bob")}
        for doc in targets.values():
            assert set(doc) == CONTRACT_KEYS
            assert set(doc["uptime"]) == {"24h", "7d", "30d"}
        alice, bob = targets["imap", "alice"], targets["imap", "bob"]
        assert alice["ok"] is True and alice["class"] == "ok" and alice["uptime"]["24h"] == 1.0
        assert alice["server"] == f"127.0.0.1:{testbed.imaps_port}" and alice["provider"] == ""
        assert all(set(r) == {"at", "ok", "class", "reason"} for r in alice["recent"])
        assert bob["ok"] is False and (bob["class"], bob["reason"], bob["phase"]) == (
            "auth", "invalid_credentials", "auth")
        assert "password" in bob["hint"] and bob["since"].endswith("Z")
        assert bob["uptime"]["24h"] == 0.0
        # Filters, as query parameters of both the JSON and the page.
        assert {t["target"] for t in await status(daemon, "state=failing")} == {"bob"}
        assert {t["probe"] for t in await status(daemon, "probe=smtp")} == {"smtp"}
        smtp_server = f"127.0.0.1:{testbed.submission_port}"
        assert {(t["probe"], t["server"]) for t in await status(daemon, f"server={smtp_server}")
                } == {("smtp", smtp_server)}
        assert await status(daemon, "provider=gmail") == []
        assert {(t["probe"], t["target"]) for t in await status(daemon, "label=team%3Dsales")
                } == {("imap", "alice"), ("smtp", "alice")}
        base = f"http://127.0.0.1:{daemon.port}"
        bad = await daemon.client.get(f"{base}/status?state=broken")
        assert bad.status_code == 400 and "state" in bad.text
        page = await daemon.client.get(f"{base}/status?state=failing")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "default-src 'none'" in page.headers["content-security-policy"]
        assert "invalid_credentials" in page.text and ">alice<" not in page.text
        for asset in ("status.css", "status.js", "favicon.svg"):
            assert (await daemon.client.get(f"{base}/status/{asset}")).status_code == 200
        # A reload keeps the history and every since.
        daemon.signal(signal.SIGHUP)
        await daemon.wait_for(lambda: _logged(daemon, "config_reloaded"), 10, "the reload")
        after = by_key(await status(daemon))
        assert after["imap", "bob"]["since"] == bob["since"]
        assert len(after["imap", "alice"]["recent"]) >= len(alice["recent"])
        code, _ = await daemon.stop()
        assert code == 0
        before = after
    history = (tmp_path / "state" / DB_NAME).read_bytes()
    assert WRONG.encode() not in history and testbed.user("alice").password.encode() not in history
    # A restart (probes now every hour): the page knows at once what it knew before.
    slow = two_accounts(testbed, tmp_path, port, interval="1h")
    async with running_daemon(slow, port) as daemon:
        now = by_key(await status(daemon))
        assert now["imap", "bob"]["since"] == before["imap", "bob"]["since"]
        assert now["imap", "bob"]["ok"] is False
        assert now["imap", "alice"]["recent"][:3] == before["imap", "alice"]["recent"][:3]
        page = await daemon.client.get(f"http://127.0.0.1:{port}/status")
        assert WRONG not in page.text and "invalid_credentials" in page.text


async def _logged(daemon: RunningDaemon, event: str) -> bool:
    return any(e.get("event") == event for e in daemon.logs())


async def test_status_is_behind_the_web_yml_basic_auth(
    testbed: MailTestBed, tmp_path: Path
) -> None:
    port = free_port()
    config = two_accounts(testbed, tmp_path, port, interval="1h")
    hashed = bcrypt.hashpw(b"St4tus-Web-Pass", bcrypt.gensalt(rounds=4)).decode()
    web_yml = tmp_path / "web.yml"
    web_yml.write_text(f"basic_auth_users:\n  people: {hashed}\n")
    config.write_text(config.read_text().replace(
        "[daemon]\n", f'[daemon]\nweb_config_file = "{web_yml}"\n', 1))
    async with running_daemon(config, port, wait_ready=False) as daemon:
        base = f"http://127.0.0.1:{port}"

        async def up() -> bool:
            try:
                await daemon.client.get(f"{base}/healthz")
            except httpx.HTTPError:
                return False
            return True
        await daemon.wait_for(up, 15, "the web server")
        for path in ("/status", "/api/v1/status", "/status/status.js"):
            denied = await daemon.client.get(base + path)
            assert denied.status_code == 401 and "Basic" in denied.headers["www-authenticate"]
            allowed = await daemon.client.get(base + path, auth=("people", "St4tus-Web-Pass"))
            assert allowed.status_code == 200, path


def test_label_filter_matches_name_and_value() -> None:
    row = Row("imap", "alice", Facts("imap.example.com:993", "gmail", {"team": "sales"}), None)
    assert _matches(row, Query.parse("label=team%3Dsales").filters)
    assert not _matches(row, Query.parse("label=team%3Dsupport").filters)
    assert _matches(row, Query.parse("state=unknown&provider=gmail").filters)
    with pytest.raises(ValueError, match="label"):
        Query.parse("label=sales")
