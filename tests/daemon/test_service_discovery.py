"""`GET /sd`: a real Prometheus finds every /probe target through `http_sd_configs`, each
from the daemon (shard) that owns it, over HTTPS with basic auth, and scrapes it."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import ssl
from pathlib import Path

import bcrypt
import httpx
import pytest
import trustme
from prometheus_client import CollectorRegistry

from mailcanary.daemon.metrics import MetricsState
from mailcanary.daemon.shards import hashmod
from mailcanary.daemon.web import CachedExposition, WebServer
from mailcanary.testbed import MailTestBed
from tests.helpers.daemon_support import (
    bed_account,
    daemon_config,
    free_port,
    ready_service,
    running_daemon,
)

pytestmark = pytest.mark.testbed

WEB_PASSWORD = "Sd-Scrape-Password-7c1e"


def hardened(tmp: Path, config: Path) -> trustme.CA:
    """web.yml (HTTPS and basic auth) for the daemon's `config`; its CA for clients."""
    ca = trustme.CA()
    folder = tmp / "web"
    folder.mkdir(exist_ok=True)
    server = ca.issue_cert("127.0.0.1", "127.0.1.1", "127.0.2.1")
    server.private_key_and_cert_chain_pem.write_to_path(str(folder / "server.pem"))
    ca.cert_pem.write_to_path(str(folder / "ca.pem"))
    hashed = bcrypt.hashpw(WEB_PASSWORD.encode(), bcrypt.gensalt(rounds=10)).decode()
    web_yml = folder / "web.yml"
    web_yml.write_text(
        "tls_server_config:\n  cert_file: server.pem\n  key_file: server.pem\n"
        f"basic_auth_users:\n  prom: {hashed}\n"
    )
    config.write_text(config.read_text().replace(
        "[daemon]\n", f'[daemon]\nweb_config_file = "{web_yml}"\n', 1))
    return ca


def accounts_config(bed: MailTestBed, folder: Path, port: int, names: list[str]) -> Path:
    secrets = folder / "secrets"
    secrets.mkdir(exist_ok=True)
    parts = [bed_account(bed, n, "alice", secrets, smtp=False) for n in names]
    parts[0] = parts[0].replace('name = "', 'provider = "gmail"\nname = "', 1)
    parts.append(bed_account(bed, "bob", "bob", secrets, timeout="20s"))
    parts.append('[[routes]]\nname = "to-bob"\nfrom = "bob"\nto = "bob"\ninterval = "1h"\n')
    return daemon_config(folder, port, *parts)


async def test_sd_lists_this_shards_targets_behind_basic_auth(
    testbed: MailTestBed, tmp_path: Path
) -> None:
    port = free_port()
    names = [f"acct{i}" for i in range(6)]
    config = accounts_config(testbed, tmp_path, port, names)
    ca = hardened(tmp_path, config)
    base = f"https://127.0.0.1:{port}"
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    async with (
        running_daemon(config, port, args=["--shard", "0/2"], wait_ready=False) as daemon,
        httpx.AsyncClient(verify=ctx, timeout=10) as client,
    ):
        async def up() -> bool:
            with contextlib.suppress(httpx.HTTPError):
                return (await client.get(f"{base}/sd")).status_code == 401
            return False
        await daemon.wait_for(up, 15, "the daemon over HTTPS")
        denied = await client.get(f"{base}/sd")
        assert denied.headers["www-authenticate"].startswith("Basic")
        answer = await client.get(f"{base}/sd", auth=("prom", WEB_PASSWORD))
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "application/json"
        groups = answer.json()
        await daemon.stop()
    every = [("imap", n) for n in names] + [("imap", "bob"), ("smtp", "bob"),
                                            ("roundtrip", "to-bob")]
    mine = sorted((k, t) for k, t in every if hashmod(t, 2) == 0)
    assert 0 < len(mine) < len(every)  # both shards own something: the filter is tested
    assert [(g["labels"]["__param_probe"], g["labels"]["__param_target"])
            for g in groups] == mine
    for group in groups:
        assert group["targets"] == [f"127.0.0.1:{port}"]
        labels = group["labels"]
        assert set(labels) == {"__param_probe", "__param_target", "server", "provider"}
        kind, target = labels["__param_probe"], labels["__param_target"]
        if kind == "smtp":
            assert labels["server"] == f"127.0.0.1:{testbed.submission_port}"
        else:  # imap, and a route's receiving mailbox
            assert labels["server"] == f"127.0.0.1:{testbed.imaps_port}"
        assert labels["provider"] == ("gmail" if target == "acct0" else "")


async def test_sd_follows_the_probe_endpoint_switch() -> None:
    """/sd lists /probe targets: with /probe off it is off too (404)."""
    server = WebServer(CachedExposition(MetricsState(), CollectorRegistry()),
                       lambda summary: (True, {}))
    await server.start("127.0.0.1", 0)
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            url = f"http://127.0.0.1:{server.port}/sd"
            assert (await client.get(url)).status_code == 404
            server.sd = lambda headers: b'[{"targets": ["' + headers["host"].encode() + b'"]}]'
            answer = await client.get(url)
            assert answer.json() == [{"targets": [f"127.0.0.1:{server.port}"]}]
    finally:
        await server.stop()


def discovery_config(ca_pem: Path, port: int, shards: int) -> str:
    """Prometheus: one job whose targets come from every daemon's /sd (as the Kubernetes
    scrape config does with one URL per pod)."""
    auth = (f"    basic_auth: {{username: prom, password: {WEB_PASSWORD}}}\n"
            f"    tls_config: {{ca_file: {ca_pem}}}\n")
    urls = "".join(
        f"      - url: https://127.0.{k}.1:{port}/sd\n        refresh_interval: 1s\n"
        f"        basic_auth: {{username: prom, password: {WEB_PASSWORD}}}\n"
        f"        tls_config: {{ca_file: {ca_pem}}}\n"
        for k in range(shards)
    )
    return (
        "global:\n  scrape_interval: 2s\n  scrape_timeout: 2s\n"
        "scrape_configs:\n  - job_name: mailcanary-probe\n    metrics_path: /probe\n"
        f"    scheme: https\n{auth}    http_sd_configs:\n{urls}"
        "    relabel_configs:\n"
        "      - {source_labels: [__param_target], target_label: target}\n"
        "      - {source_labels: [__param_probe], target_label: probe}\n"
    )


async def test_prometheus_discovers_and_scrapes_every_target(
    testbed: MailTestBed, tmp_path: Path
) -> None:
    """Two `--shard K/2` daemons behind HTTPS and basic auth; a real Prometheus with only
    their /sd URLs stores probe_success for every login target, each with its server
    label, and no scrape fails (a target sent to the wrong shard would answer 400)."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("Debian's prometheus is not installed")
    port = free_port()
    names = [f"acct{i}" for i in range(6)]
    async with contextlib.AsyncExitStack() as stack:
        for k in range(2):
            folder = tmp_path / f"shard{k}"
            folder.mkdir()
            config = accounts_config(testbed, folder, port, names)
            config.write_text(config.read_text().replace("127.0.0.1:", f"127.0.{k}.1:", 1))
            if k == 0:
                hardened(folder, config)
            else:  # the same web.yml (and CA) for both
                web_yml = tmp_path / "shard0" / "web" / "web.yml"
                config.write_text(config.read_text().replace(
                    "[daemon]\n", f'[daemon]\nweb_config_file = "{web_yml}"\n', 1))
            await stack.enter_async_context(
                running_daemon(config, port, args=["--shard", f"{k}/2"], wait_ready=False))
        conf = tmp_path / "prometheus.yml"
        conf.write_text(discovery_config(tmp_path / "shard0" / "web" / "ca.pem", port, 2))
        prom_port = free_port()
        url = await stack.enter_async_context(ready_service(
            [binary, f"--config.file={conf}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{prom_port}"],
            tmp_path / "prometheus.log", prom_port, tries=150,
        ))
        client = await stack.enter_async_context(httpx.AsyncClient(timeout=10))

        async def stored() -> dict[str, tuple[float, str]]:
            response = await client.get(f"{url}/api/v1/query",
                                        params={"query": 'probe_success{probe="imap"}'})
            result = response.json()["data"]["result"]
            return {r["metric"]["target"]: (float(r["value"][1]), r["metric"]["server"])
                    for r in result}

        loop = asyncio.get_running_loop()
        deadline = loop.time() + 45
        want = {*names, "bob"}
        good = dict.fromkeys(want, (1.0, f"127.0.0.1:{testbed.imaps_port}"))
        while (got := await stored()) != good:
            if loop.time() > deadline:
                why = (await client.get(f"{url}/api/v1/query", params={
                    "query": "mailcanary_probe_failure_info"})).json()["data"]["result"]
                raise AssertionError((got, why))
            await asyncio.sleep(0.5)
        up = (await client.get(f"{url}/api/v1/query",
                               params={"query": 'up{probe=~"imap|smtp"} == 0'})).json()
        assert up["data"]["result"] == [], up
        targets = (await client.get(f"{url}/api/v1/targets")).json()["data"]["activeTargets"]
        instances = {t["labels"]["target"]: t["labels"]["instance"] for t in targets}
        for name, instance in instances.items():
            assert instance == f"127.0.{hashmod(name, 2)}.1:{port}", (name, instance)
