"""One incident per cause, end to end: 40 accounts on one dead server, 5 on another and 3
healthy ones, through the `mailcanary run` subprocess to a webhook receiver and to the
real Alertmanager with the route docs/alerting.md documents."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from tests.daemon.test_alerts import alertmanager
from tests.helpers.daemon_support import daemon_config, free_port, running_daemon
from tests.helpers.faults import Script, fake_server
from tests.helpers.receivers import Receiver, receiver
from tests.helpers.support import endpoint

DOWN = "NO [UNAVAILABLE] Temporary authentication failure, try again later."


def accounts(prefix: str, count: int, port: int) -> str:
    return "".join(
        f'[[accounts]]\nname = "{prefix}{i:02d}"\naddress = "{prefix}{i:02d}@example.test"\n'
        f'password = "Fleet-Secret-{i}"\ntimeout = "3s"\nlabels = {{ team = "{prefix}" }}\n'
        f"imap = {endpoint('127.0.0.1', port)}\n"
        for i in range(count)
    )


@contextlib.asynccontextmanager
async def fleet() -> AsyncIterator[tuple[Script, int, int, str]]:
    """Fake IMAP servers: A (40 accounts) and B (5) refuse logins, C (3) lets them in."""
    dead_a, dead_b = Script("imap", login_reply=DOWN), Script("imap", login_reply=DOWN)
    async with (
        fake_server(dead_a) as port_a, fake_server(dead_b) as port_b,
        fake_server(Script("imap")) as port_c,
    ):
        parts = accounts("a", 40, port_a) + accounts("b", 5, port_b) + accounts("c", 3, port_c)
        yield dead_a, port_a, port_b, parts


def server_events(hook: Receiver, path: str, server: str, status: str) -> list[Any]:
    return [b for b in hook.bodies(path)
            if b["scope"] == "server" and b["server"] == server and b["status"] == status]


async def test_forty_dead_accounts_make_one_server_event(tmp_path: Path) -> None:
    port = free_port()
    async with fleet() as (dead_a, port_a, port_b, parts), receiver() as hook:
        a, b = f"127.0.0.1:{port_a}", f"127.0.0.1:{port_b}"
        sinks = (f'[[alerts]]\nkind = "webhook"\nurl = "{hook.url}/three"\nafter = 2\n'
                 f'[[alerts]]\nkind = "webhook"\nurl = "{hook.url}/six"\nafter = 2\n'
                 "server_min_targets = 6\n")
        config = daemon_config(tmp_path, port, parts, sinks, interval="1s")
        async with running_daemon(config, port) as daemon:
            async def all_paged() -> bool:
                return bool(server_events(hook, "/three", a, "firing")
                            and server_events(hook, "/three", b, "firing")
                            and server_events(hook, "/six", a, "firing")
                            and len([x for x in hook.bodies("/six")
                                     if x["scope"] == "target"]) >= 5)
            await daemon.wait_for(all_paged, 30, "server events and B's target events")
            await asyncio.sleep(4)  # four more runs of each: still no event per target of A
            dead_a.login_reply = "OK"

            async def resolved() -> bool:
                return bool(server_events(hook, "/three", a, "resolved")
                            and server_events(hook, "/six", a, "resolved"))
            await daemon.wait_for(resolved, 20, "server A's resolved events")
            await asyncio.sleep(2)
            code, _ = await daemon.stop()
            assert code == 0
    for path in ("/three", "/six"):
        firing = server_events(hook, path, a, "firing")
        assert len(firing) == 1, firing
        assert len(server_events(hook, path, a, "resolved")) == 1
        assert firing[0]["class"] == "server" and firing[0]["reason"] == "unavailable"
        assert firing[0]["count"] == len(firing[0]["targets"]) >= 3
        ended = server_events(hook, path, a, "resolved")[0]
        assert ended["count"] == 40 and sorted(ended["targets"]) == [
            f"a{i:02d}" for i in range(40)]
        assert not [x for x in hook.bodies(path) if x.get("target", "").startswith("a")]
        assert not [x for x in hook.bodies(path) if x.get("target", "").startswith("c")]
    # B: 5 targets make a server event at the default threshold of 3, not at 6.
    assert not [x for x in hook.bodies("/three") if x["scope"] == "target"]
    assert len(server_events(hook, "/three", b, "firing")) == 1
    b_targets = [x for x in hook.bodies("/six") if x["scope"] == "target"]
    assert sorted(x["target"] for x in b_targets) == [f"b{i:02d}" for i in range(5)]
    assert {(x["server"], x["status"]) for x in b_targets} == {(b, "firing")}
    assert not server_events(hook, "/six", b, "firing")
    assert "Fleet-Secret" not in daemon.log_path.read_text()


DOCS = Path(__file__).resolve().parents[2] / "docs" / "alerting.md"


def documented_route(receiver_url: str) -> str:
    """docs/alerting.md's route and inhibit rules, with this test's receiver and waits."""
    text = DOCS.read_text()
    block = text.split("<!-- alertmanager-route -->")[1].split("<!-- /alertmanager-route -->")[0]
    yaml = block.strip().removeprefix("```yaml").removesuffix("```").strip()
    for slow, fast in (("group_wait: 30s", "group_wait: 2s"),
                       ("group_interval: 5m", "group_interval: 2s")):
        assert slow in yaml
        yaml = yaml.replace(slow, fast)
    return (yaml.replace("receiver: mail-admins", "receiver: pager") + "\nreceivers:\n"
            "  - name: pager\n    webhook_configs:\n"
            f'      - url: "{receiver_url}/am"\n        send_resolved: true\n')


async def test_through_the_real_alertmanager_one_notification(tmp_path: Path) -> None:
    port = free_port()
    async with (
        fleet() as (dead_a, port_a, _, parts), receiver() as hook,
        alertmanager(tmp_path, documented_route(hook.url)) as am_url,
    ):
        a = f"127.0.0.1:{port_a}"
        sinks = f'[[alerts]]\nkind = "alertmanager"\nurl = "{am_url}"\nafter = 2\n'
        config = daemon_config(tmp_path, port, parts, sinks, interval="1s")

        def about_a(status: str) -> list[Any]:
            return [n for n in hook.bodies("/am")
                    if n["groupLabels"].get("server") == a and n["status"] == status]
        async with running_daemon(config, port) as daemon:
            async def paged() -> bool:
                return bool(about_a("firing"))
            await daemon.wait_for(paged, 30, "Alertmanager's notification for A")
            await asyncio.sleep(6)  # three more group intervals: nothing new for A
            dead_a.login_reply = "OK"

            async def resolved() -> bool:
                return bool(about_a("resolved"))
            await daemon.wait_for(resolved, 30, "the resolved notification for A")
            code, _ = await daemon.stop()
            assert code == 0
    firing = about_a("firing")
    assert len(firing) == 1, firing
    alerts = firing[0]["alerts"]
    assert [x["labels"]["alertname"] for x in alerts] == ["MailcanaryServerDown"]
    labels = alerts[0]["labels"]
    assert (labels["server"], labels["class"], labels["severity"]) == (a, "server", "critical")
    assert int(alerts[0]["annotations"]["count"]) >= 3
    assert len(about_a("resolved")) == 1

