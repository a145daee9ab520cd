"""A fired alert always gets its resolved event: across a reload that changed the target
(interval, [defaults], sinks added before it), a restart, and the target's removal; the
real webhook receiver and the real Alertmanager; a sink's unexpected error."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import signal
from pathlib import Path
from typing import Any

import httpx

from mailcanary.config import AlertConfig, load_config
from mailcanary.daemon.alerts import AlertEngine, AlertEvent
from mailcanary.daemon.alerts.sinks import WebhookSink
from mailcanary.daemon.metrics import MetricsState
from mailcanary.result import ProbeResult
from tests.daemon.test_alerts import DOWN, alertmanager, flaky_account
from tests.helpers.daemon_support import daemon_config, free_port, running_daemon
from tests.helpers.faults import Script, fake_server
from tests.helpers.receivers import Receiver, receiver


def named(port: int, name: str) -> str:
    return flaky_account(port).replace('"flaky', f'"{name}')


def events(hook: Receiver, target: str, status: str, path: str = "/hook") -> list[Any]:
    return [b for b in hook.bodies(path) if b["target"] == target and b["status"] == status]


async def test_alert_resolves_after_reload_that_changed_target_and_sinks(
    tmp_path: Path,
) -> None:
    flaky, other = Script("imap", login_reply=DOWN), Script("imap", login_reply=DOWN)
    port = free_port()
    async with fake_server(flaky) as p1, fake_server(other) as p2, receiver() as hook:
        sink = f'[[alerts]]\nkind = "webhook"\nurl = "{hook.url}/hook"\nafter = 1\n'
        config = daemon_config(tmp_path, port, named(p1, "flaky"), named(p2, "other"), sink,
                               interval="1s")
        async with running_daemon(config, port) as daemon:
            async def both_firing() -> bool:
                return bool(events(hook, "flaky", "firing") and events(hook, "other", "firing"))
            await daemon.wait_for(both_firing, 20, "both alerts firing")
            # interval and [defaults] change, a second webhook goes first (renaming the
            # first sink's label), `other` is removed
            second = f'[[alerts]]\nkind = "webhook"\nurl = "{hook.url}/second"\nafter = 5\n'
            body = daemon_config(tmp_path, port, named(p1, "flaky") + 'interval = "2s"\n',
                                 second, sink, interval="1s").read_text()
            config.write_text(body.replace('timeout = "5s"', 'timeout = "4s"'))
            daemon.signal(signal.SIGHUP)

            async def other_resolved() -> bool:
                return bool(events(hook, "other", "resolved"))
            await daemon.wait_for(other_resolved, 15, "the removed target's resolved event")
            flaky.login_reply = "OK"

            async def flaky_resolved() -> bool:
                return bool(events(hook, "flaky", "resolved"))
            await daemon.wait_for(flaky_resolved, 15, "resolved after the reload")
            code, _ = await daemon.stop()
            assert code == 0
    [gone] = events(hook, "other", "resolved")
    assert "removed from the configuration" in gone["detail"]
    assert events(hook, "flaky", "resolved")[0]["since"] == events(hook, "flaky", "firing")[0][
        "since"]
    assert not hook.bodies("/second")  # the new sink never saw the alert fire


async def test_alert_resolves_after_restart_and_removal_across_restart(tmp_path: Path) -> None:
    flaky, other = Script("imap", login_reply=DOWN), Script("imap", login_reply=DOWN)
    port = free_port()
    async with fake_server(flaky) as p1, fake_server(other) as p2, receiver() as hook:
        sink = f'[[alerts]]\nkind = "webhook"\nurl = "{hook.url}/hook"\nafter = 1\n'
        config = daemon_config(tmp_path, port, named(p1, "flaky"), named(p2, "other"), sink,
                               interval="1s")
        async with running_daemon(config, port) as daemon:
            async def both_firing() -> bool:
                return bool(events(hook, "flaky", "firing") and events(hook, "other", "firing"))
            await daemon.wait_for(both_firing, 20, "both alerts firing")
            code, _ = await daemon.stop()
            assert code == 0
        flaky.login_reply = "OK"
        daemon_config(tmp_path, port, named(p1, "flaky"), sink, interval="1s")  # no `other`
        async with running_daemon(config, port) as daemon:
            async def resolved() -> bool:
                return bool(events(hook, "flaky", "resolved") and events(hook, "other", "resolved"))
            await daemon.wait_for(resolved, 20, "resolved events after the restart")
            code, _ = await daemon.stop()
            assert code == 0
    assert "removed from the configuration" in events(hook, "other", "resolved")[0]["detail"]
    assert len(events(hook, "flaky", "resolved")) == 1


async def test_corrupt_alert_state_is_moved_aside(tmp_path: Path) -> None:
    port = free_port()
    state = tmp_path / "state"
    state.mkdir()
    (state / "alerts.json").write_text('{"version": 1, "data": [trunc')
    async with fake_server(Script("imap", login_reply=DOWN)) as p1, receiver() as hook:
        sink = f'[[alerts]]\nkind = "webhook"\nurl = "{hook.url}/hook"\nafter = 1\n'
        config = daemon_config(tmp_path, port, named(p1, "flaky"), sink, interval="1s")
        async with running_daemon(config, port) as daemon:
            async def firing() -> bool:
                return bool(events(hook, "flaky", "firing"))
            await daemon.wait_for(firing, 20, "the daemon runs on and alerts")
            code, _ = await daemon.stop()
            assert code == 0
            [err] = [e for e in daemon.logs() if e.get("event") == "state_file_corrupt"]
    assert err["level"] == "error" and err["path"] == str(state / "alerts.json")
    assert [p.name for p in state.glob("alerts.json.corrupt-*")]
    assert json.loads((state / "alerts.json").read_text())["version"] == 1


async def test_alertmanager_ends_at_and_resolution_after_restart(tmp_path: Path) -> None:
    """A probe that may take 30 s (its timeout) runs every 1 s: the alert must outlive three
    such runs, not three intervals plus the default timeout. After a restart, the recovered
    target's alert is resolved in the real Alertmanager at once (not at its endsAt)."""
    port = free_port()
    script = Script("imap", login_reply=DOWN)
    async with alertmanager(tmp_path) as am_url, fake_server(script) as p1:
        sinks = f'[[alerts]]\nkind = "alertmanager"\nurl = "{am_url}"\nafter = 1\n'
        account = named(p1, "flaky").replace('timeout = "3s"', 'timeout = "30s"')
        config = daemon_config(tmp_path, port, account, sinks, interval="1s")
        async with httpx.AsyncClient() as client:
            async def active() -> list[dict[str, Any]]:
                found: list[dict[str, Any]] = (await client.get(f"{am_url}/api/v2/alerts")).json()
                return [a for a in found if a["status"]["state"] == "active"]
            async with running_daemon(config, port) as daemon:
                [alert] = await daemon.wait_for(active, 20, "the alert in Alertmanager")
                await daemon.stop()
            script.login_reply = "OK"
            async with running_daemon(config, port) as daemon:
                async def gone() -> bool:
                    return not await active()
                await daemon.wait_for(gone, 20, "the alert resolved after the restart")
                await daemon.stop()
    ends = dt.datetime.fromisoformat(alert["endsAt"].replace("Z", "+00:00"))
    updated = dt.datetime.fromisoformat(alert["updatedAt"].replace("Z", "+00:00"))
    assert (ends - updated).total_seconds() > 3 * 30


class BuggySink(WebhookSink):
    """The real webhook sink, except that its first send hits a bug."""

    calls = 0

    async def send(self, event: AlertEvent) -> None:
        self.calls += 1
        if self.calls == 1:
            raise KeyError("a bug in the sink")
        await super().send(event)


def failing(target: str, at: float) -> ProbeResult:
    return ProbeResult(probe="imap", target=target, ok=False, cls="network",
                       reason="connection_refused", phase="connect", detail="refused",
                       hint="start it", duration_seconds=0.1, phases={}, finished_at=at)


async def test_sink_bug_does_not_kill_its_worker(tmp_path: Path) -> None:
    async with receiver() as hook:
        path = daemon_config(tmp_path, free_port(),
                             f'[[alerts]]\nkind = "webhook"\nurl = "{hook.url}/hook"\nafter = 1\n')
        config = load_config(path)
        metrics = MetricsState()
        engine = AlertEngine(metrics, lambda: config, lambda k, t: 60.0, retry_base=0.05)
        engine.configure([AlertConfig.model_validate(
            {"kind": "webhook", "url": f"{hook.url}/hook", "after": 1})])
        worker = engine.workers[0]
        worker.sink = BuggySink(f"{hook.url}/hook")
        engine.observe(failing("a", 1.0))
        engine.observe(failing("b", 2.0))
        for _ in range(100):
            if len(hook.bodies("/hook")) >= 2:
                break
            await asyncio.sleep(0.05)
        assert not worker.task.done()
        await engine.close()
    assert {b["target"] for b in hook.bodies("/hook")} == {"a", "b"}
    assert metrics.notifications[(worker.label, "retried")] == 1
