"""The Alertmanager route and inhibit_rules of docs/runbooks.md, in a real Alertmanager:
alerts shaped as grafana/alerts/mailcanary.rules.yml makes them (the labels its promtool
tests expect) turn a server outage into one notification; the per-target alerts of that
server are inhibited, those of another server are not."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.helpers.daemon_support import free_port, ready_service
from tests.helpers.receivers import receiver

RUNBOOKS = Path(__file__).resolve().parents[2] / "docs" / "runbooks.md"


def documented_config(hook: str) -> dict[str, Any]:
    section = RUNBOOKS.read_text(encoding="utf-8").split("## Alertmanager", 1)[1]
    block = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert block, "no yaml block in docs/runbooks.md, section Alertmanager"
    config: dict[str, Any] = yaml.safe_load(block.group(1))
    # Only the waits are the test's own: notifications within a second, not 30 s.
    config["route"].update(group_wait="1s", group_interval="1s", repeat_interval="1h")
    config["receivers"] = [{"name": config["route"]["receiver"],
                            "webhook_configs": [{"url": hook, "send_resolved": False}]}]
    return config


def alert(name: str, severity: str, **labels: str) -> dict[str, Any]:
    now = dt.datetime.now(dt.UTC)
    return {"labels": {"alertname": name, "severity": severity, **labels},
            "annotations": {"summary": name},
            "startsAt": now.isoformat(), "endsAt": (now + dt.timedelta(hours=1)).isoformat()}


def target(name: str, target: str, server: str, **labels: str) -> dict[str, Any]:
    return alert(name, "warning", job="mailcanary", instance="mc:9782", probe="imap",
                 target=target, server=server, **labels)


async def test_server_down_is_one_notification(tmp_path: Path) -> None:
    binary = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if binary is None:
        pytest.skip("Debian's prometheus-alertmanager is not installed")
    down, other = "imap.down.test:993", "imap.other.test:993"
    alerts = [
        alert("MailcanaryServerDown", "critical", server=down, provider="gmail",
              **{"class": "network"}),
        *(target("MailcanaryTargetFailing", f"a{i}", down, provider="gmail", team="ops")
          for i in range(40)),
        target("MailcanaryAuthFailing", "a1", down, provider="gmail",
               **{"class": "auth", "reason": "invalid_credentials"}),
        target("MailcanaryTargetFailing", "z", other),
    ]
    async with receiver() as hook:
        conf = tmp_path / "alertmanager.yml"
        conf.write_text(yaml.safe_dump(documented_config(f"{hook.url}/am")))
        port = free_port()
        async with (
            ready_service(
                [binary, f"--config.file={conf}", f"--storage.path={tmp_path / 'am'}",
                 f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
                tmp_path / "am.log", port, tries=100,
            ) as url,
            httpx.AsyncClient(timeout=10) as client,
        ):
            # ServerDown fires first (for: 2m against the target alerts' 5m and 2m+):
            # posted, and seen by Alertmanager, before the per-target alerts.
            response = await client.post(f"{url}/api/v2/alerts", json=alerts[:1])
            assert response.status_code == 200, response.text
            for _ in range(100):
                if (await client.get(f"{url}/api/v2/alerts")).json():
                    break
                await asyncio.sleep(0.1)
            response = await client.post(f"{url}/api/v2/alerts", json=alerts[1:])
            assert response.status_code == 200, response.text
            for _ in range(100):
                state = (await client.get(f"{url}/api/v2/alerts")).json()
                sent = [a for body in hook.bodies("/am") for a in body["alerts"]]
                if len(state) == len(alerts) and len(sent) >= 2:
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(2)  # anything else would have been sent by now
    suppressed = {(a["labels"]["alertname"], a["labels"].get("target"))
                  for a in state if a["status"]["state"] == "suppressed"}
    assert len(suppressed) == 41, suppressed  # the 40 + the auth alert of the down server
    sent = [(body["groupLabels"], [a["labels"].get("target") for a in body["alerts"]])
            for body in hook.bodies("/am")]
    assert sorted(sent, key=str) == sorted([
        ({"alertname": "MailcanaryServerDown", "server": down}, [None]),
        ({"alertname": "MailcanaryTargetFailing", "server": other}, ["z"]),
    ], key=str), sent
