"""A real Prometheus scrapes the daemon probing the test bed; every query of the Grafana
dashboard must parse and return data."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mailcanary.probes import PROBES
from mailcanary.testbed import MailTestBed
from tests.helpers.daemon_support import (
    bed_account,
    daemon_config,
    free_port,
    ready_service,
    running_daemon,
)
from tests.helpers.mailapp import mail_app

pytestmark = pytest.mark.testbed

DASHBOARD = Path(__file__).resolve().parents[2] / "grafana" / "dashboards" / "mailcanary.json"


def dashboard_queries() -> list[tuple[str, str]]:
    def walk(panels: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for panel in panels:
            out.append(panel)
            out += walk(panel.get("panels", []))
        return out

    doc = json.loads(DASHBOARD.read_text())
    return [
        (panel.get("title", "?"), target["expr"])
        for panel in walk(doc["panels"])
        for target in panel.get("targets", [])
        if target.get("expr")
    ]


VARIABLES = {
    "$__rate_interval": "15s",
    "$__range": "5s",  # the availability panels compare with "offset $__range"
    "${datasource}": "prometheus",
    "$job": "mailcanary",
    "$target": ".*",
    "$server": ".*",
    "$provider": ".*",
    "$group": "team",  # an account label (labels = { team = ... } below)
    "$topk": "20",
}


def substitute(expr: str) -> str:
    for name, value in VARIABLES.items():
        expr = expr.replace(name, value)
    return expr


@contextlib.asynccontextmanager
async def prometheus(tmp_path: Path, daemon_port: int) -> AsyncIterator[str]:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("Debian's prometheus is not installed")
    conf = tmp_path / "prometheus.yml"
    conf.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n  - job_name: mailcanary\n    static_configs:\n"
        f"      - targets: ['127.0.0.1:{daemon_port}']\n"
    )
    port = free_port()
    async with ready_service(
        [binary, f"--config.file={conf}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        tmp_path / "prometheus.log",
        port,
        tries=150,
    ) as url:
        yield url


async def test_dashboard_queries_return_data(testbed: MailTestBed, tmp_path: Path) -> None:
    port = free_port()
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    parts = [
        bed_account(testbed, "alice", "alice", secrets) + 'labels = { team = "sales" }\n',
        bed_account(testbed, "bob", "bob", secrets,
                    password="Wrong-" + testbed.user("bob").password)
        + 'labels = { team = "ops" }\n',
        # A route that delivers (inbox placement, delivery time).
        bed_account(testbed, "carol", "carol", secrets),
    ]
    parts.append('[[routes]]\nname = "alice-to-carol"\nfrom = "alice"\nto = "carol"\n')
    # A canary Postfix refuses at RCPT (no such mailbox): the refused-canaries panel.
    parts.append(bed_account(testbed, "ghost", "carol", secrets).replace(
        'address = "carol@example.test"', 'address = "no-such-user@example.test"'))
    parts.append('[[routes]]\nname = "alice-to-ghost"\nfrom = "alice"\nto = "ghost"\n'
                 'interval = "1s"\n')
    # The operations row's sink panel: a webhook nobody answers (retried, then failed).
    parts.append(f'[[alerts]]\nkind = "webhook"\nurl = "http://127.0.0.1:{free_port()}/"\n'
                 "after = 1\n")
    parts.append(bed_account(testbed, "dave", "dave", secrets, smtp=False))
    # eve's server accepts and never answers: her first probe does not end during the test.
    held: list[asyncio.StreamWriter] = []
    silent = await asyncio.start_server(lambda _r, w: held.append(w), "127.0.0.1", 0)
    silent_port = silent.sockets[0].getsockname()[1]
    parts.append(bed_account(testbed, "eve", "alice", secrets, smtp=False, timeout="60s")
                 .replace(f"port = {testbed.imaps_port}", f"port = {silent_port}"))
    async with silent, mail_app(testbed) as app:
        # The dashboard's inbound row: a real app's mail, triggered every second.
        parts.append(
            f'[[inbound]]\nname = "signup"\naccount = "dave"\ndeadline = "5s"\n'
            f'match = {{ body = "token\\\\s+{{token}}" }}\n'
            f'trigger = {{ url = "{app.url("normal")}", body = \'{{"email": "{{address}}", '
            '"token": "{token}"}\' }\n'
        )
        # Failure counters appear at the first failure: one watch whose trigger fails.
        parts.append(
            f'[[inbound]]\nname = "signup-fail"\naccount = "dave"\ndeadline = "5s"\n'
            f'match = {{ body = "x{{token}}" }}\ntrigger = {{ url = "{app.url("fail")}" }}\n'
        )
        # The Deliverability row's domain panels: a domain check whose DNS server is a dead
        # loopback port fails every second (the NSD-backed checks live in tests/probes/domain).
        parts.append('[[domains]]\nname = "dns-down"\ndomain = "example.test"\n'
                     'checks = ["mx"]\ninterval = "1s"\ntimeout = "2s"\n')
        config = daemon_config(tmp_path, port, *parts, interval="1s")
        dead_dns = f'nameservers = ["127.0.0.1:{free_port()}"]\n'
        config.write_text(config.read_text().replace("[daemon]\n", "[daemon]\n" + dead_dns, 1))
        await dashboard_data(config, port, tmp_path)


async def dashboard_data(config: Path, port: int, tmp_path: Path) -> None:
    async with (
        running_daemon(config, port) as daemon,
        prometheus(tmp_path, port) as prom,
        httpx.AsyncClient(timeout=10) as client,
    ):
        async def query(expr: str) -> dict[str, Any]:
            response = await client.get(f"{prom}/api/v1/query", params={"query": expr})
            doc: dict[str, Any] = response.json()
            assert doc["status"] == "success", (expr, doc)
            return doc

        async def enough() -> bool:
            doc = await query("count_over_time(mailcanary_build_info[1m])")
            result = doc["data"]["result"]
            return bool(result) and float(result[0]["value"][1]) >= 8
        await daemon.wait_for(enough, 30, "eight scrapes")
        empty = []
        results: dict[str, list[dict[str, Any]]] = {}
        for title, expr in dashboard_queries():
            if not_yet_a_kind(expr) or NEEDS_A_BOUNCE in expr:
                continue
            doc = await query(substitute(expr))
            results.setdefault(title, []).extend(doc["data"]["result"])
            if not doc["data"]["result"]:
                empty.append((title, expr))
        never_probed_is_not_failing(results)
        code, _ = await daemon.stop()
        assert code == 0
    print("empty dashboard queries:", empty)
    assert not empty, empty


# "Bouncing now" (a DSN for a canary) needs the DeliverabilityBed's refusing relay; the
# bounce tests (tests/probes/test_bounce*.py) run that bed. Every other query must answer.
NEEDS_A_BOUNCE = 'phase="deliver", class=~"rejected|quota|server|rate_limited"'


def not_yet_a_kind(expr: str) -> bool:
    """A panel of a probe kind this checkout does not have yet (the dashboard may land
    before its kind): once the kind is registered, its panels must answer too."""
    kinds = set(re.findall(r'probe="([a-z0-9_]+)"', expr))
    return bool(kinds - set(PROBES))


def never_probed_is_not_failing(results: dict[str, list[dict[str, Any]]]) -> None:
    """eve (never probed) counts as not probed yet, nowhere as failing; bob (never
    succeeded) shows in the time since last success as "never", not left out."""
    def value(title: str) -> float:
        return float(results[title][0]["value"][1])

    failing = {(r["metric"]["probe"], r["metric"]["target"]) for r in results["Failing now"]
               if "class" in r["metric"]}
    assert ("imap", "bob") in failing
    assert not any(target == "eve" for _, target in failing), failing
    assert value("Not probed yet") >= 1
    assert value("Failing targets") == len(failing)
    since = {r["metric"]["target"]: float(r["value"][1])
             for r in results["Time since last success (longest $topk)"]}
    assert since["bob"] == 1e12, since  # the dashboard's "never (since start-up)"
    assert "eve" not in since
    assert 0 <= since["alice"] < 60, since
    by_team = {r["metric"].get("team"): float(r["value"][1])
               for r in results["Failing by $group (top $topk)"]}
    assert by_team.get("ops", 0) >= 1, by_team


SCALING = Path(__file__).resolve().parents[2] / "docs" / "scaling.md"


def documented_scrape_config(names: list[str], port: int) -> str:
    """The /probe scrape config of docs/scaling.md, pointed at three daemons on loopback:
    shard K listens on 127.0.K.1 (the pod name mailcanary-K.mailcanary)."""
    text = SCALING.read_text().split("<!-- scrape-config:", 1)[1]
    block = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    assert "action: hashmod" in block and "modulus: 3" in block
    return (
        block.replace("targets: [alice, bob]", f"targets: [{', '.join(names)}]")
        .replace("mailcanary-${1}.mailcanary:9782", f"127.0.${{1}}.1:{port}")
        .replace("scrape_interval: 60s", "scrape_interval: 1s")
        .replace("scrape_timeout: 50s", "scrape_timeout: 1s")
    )


async def test_prometheus_scrapes_probe_through_hashmod_shards(
    testbed: MailTestBed, tmp_path: Path
) -> None:
    """Three `--shard K/3` daemons and a real Prometheus loaded with the documented scrape
    config: hashmod sends every target to the daemon that owns it (another would answer
    400 and the scrape would fail), and probe_success is stored for every target."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("Debian's prometheus is not installed")
    port = free_port()
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    names = [f"acct{i}" for i in range(9)]
    accounts = [bed_account(testbed, n, "alice", secrets, smtp=False) for n in names]
    async with contextlib.AsyncExitStack() as stack:
        for k in range(3):
            folder = tmp_path / f"shard{k}"
            folder.mkdir()
            config = daemon_config(folder, port, *accounts)
            config.write_text(config.read_text().replace("127.0.0.1:", f"127.0.{k}.1:", 1))
            daemon = await stack.enter_async_context(
                running_daemon(config, port, args=["--shard", f"{k}/3"], wait_ready=False)
            )
            daemon.port = port
        conf = tmp_path / "prometheus.yml"
        conf.write_text("global:\n  scrape_interval: 1s\n"
                        + documented_scrape_config(names, port))
        prom_port = free_port()
        url = await stack.enter_async_context(ready_service(
            [binary, f"--config.file={conf}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{prom_port}"],
            tmp_path / "prometheus.log", prom_port, tries=150,
        ))
        client = await stack.enter_async_context(httpx.AsyncClient(timeout=10))

        async def stored() -> dict[str, float]:
            response = await client.get(f"{url}/api/v1/query",
                                        params={"query": "probe_success"})
            result = response.json()["data"]["result"]
            return {r["metric"]["target"]: float(r["value"][1]) for r in result}

        deadline = asyncio.get_running_loop().time() + 40
        while set(got := await stored()) != set(names):
            assert asyncio.get_running_loop().time() < deadline, got
            await asyncio.sleep(0.5)
        assert got == dict.fromkeys(names, 1.0), got
        up = (await client.get(f"{url}/api/v1/query", params={"query": "up == 0"})).json()
        assert up["data"]["result"] == [], up
