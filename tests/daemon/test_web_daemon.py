"""The web endpoints of a real `mailcanary run` against the test bed: web clients never take
the descriptors the probes need (run under a lowered RLIMIT_NOFILE), an exporter-toolkit
web.yml serves HTTPS with client certificates and bcrypt basic auth (to httpx and to a real
Prometheus), and a bad web.yml is a config error naming its key."""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import shutil
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path

import bcrypt
import httpx
import pytest
import trustme

from mailcanary.testbed import MailTestBed
from tests.helpers.daemon_support import (
    SRC,
    bed_account,
    daemon_config,
    free_port,
    parse_metrics,
    ready_service,
    running_daemon,
    value,
)

pytestmark = pytest.mark.testbed

WEB_PASSWORD = "Web-pa55-Prom-9xQ"  # a test password; grepped for in the logs below


async def test_idle_flood_never_starves_probes_of_descriptors(
    testbed: MailTestBed, tmp_path: Path
) -> None:
    """The daemon at 256 descriptors; 1,000 connections that never send a request, kept
    coming for 8 s: probes every second keep succeeding (no `Too many open files`) and
    /metrics answers throughout."""
    port = free_port()
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    config = daemon_config(tmp_path, port, bed_account(testbed, "alice", "alice", secrets),
                           interval="1s")
    async with running_daemon(config, port) as daemon:
        resource.prlimit(daemon.proc.pid, resource.RLIMIT_NOFILE, (256, 256))
        before = len(daemon.probe_lines("imap", "alice"))
        held: list[asyncio.StreamWriter] = []
        scrapes = []
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:
            for _ in range(125):
                with contextlib.suppress(OSError):
                    held.append((await asyncio.open_connection("127.0.0.1", port))[1])
            started = time.monotonic()
            text = await daemon.metrics_text()
            scrapes.append(time.monotonic() - started)
            assert "mailcanary_probe_success" in text
            await asyncio.sleep(0.25)
            while len(held) > 1000:
                held.pop(0).close()
        lines = daemon.probe_lines("imap", "alice")[before:] + \
            daemon.probe_lines("smtp", "alice")[before:]
        for writer in held:
            writer.close()
        print(f"{len(lines)} probes during the flood; slowest scrape {max(scrapes):.3f} s")
        assert len(lines) >= 8
        assert all(line["ok"] for line in lines), [line for line in lines if not line["ok"]]
        assert "Too many open files" not in daemon.log_path.read_text()
        assert max(scrapes) < 2.0
        code, _ = await daemon.stop()
        assert code == 0


def web_files(tmp_path: Path) -> tuple[trustme.CA, trustme.LeafCert, Path]:
    ca = trustme.CA()
    folder = tmp_path / "web"
    folder.mkdir()
    server = ca.issue_cert("127.0.0.1")
    server.cert_chain_pems[0].write_to_path(str(folder / "server.pem"))
    for blob in server.cert_chain_pems[1:]:
        blob.write_to_path(str(folder / "server.pem"), append=True)
    server.private_key_pem.write_to_path(str(folder / "server.key"))
    ca.cert_pem.write_to_path(str(folder / "ca.pem"))
    hashed = bcrypt.hashpw(WEB_PASSWORD.encode(), bcrypt.gensalt(rounds=10)).decode()
    web_yml = folder / "web.yml"
    web_yml.write_text(
        "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n"
        "  client_ca_file: ca.pem\n  client_auth_type: RequireAndVerifyClientCert\n"
        f"basic_auth_users:\n  prom: {hashed}\n"
    )
    return ca, ca.issue_cert("prometheus"), web_yml


def client_context(ca: trustme.CA, cert: trustme.LeafCert | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    if cert is not None:
        cert.configure_cert(ctx)
    return ctx


async def test_web_yml_serves_https_with_client_certs_and_basic_auth(
    testbed: MailTestBed, tmp_path: Path
) -> None:
    port = free_port()
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    ca, client_cert, web_yml = web_files(tmp_path)
    config = daemon_config(tmp_path, port, bed_account(testbed, "alice", "alice", secrets))
    config.write_text(config.read_text().replace(
        "[daemon]\n", f'[daemon]\nweb_config_file = "{web_yml}"\n', 1))
    base = f"https://127.0.0.1:{port}"
    async with (
        running_daemon(config, port, wait_ready=False) as daemon,
        httpx.AsyncClient(verify=client_context(ca, client_cert), timeout=10) as good,
        httpx.AsyncClient(verify=client_context(ca, None), timeout=5) as no_cert,
        httpx.AsyncClient(timeout=5) as plain,
    ):
        async def up() -> bool:
            with contextlib.suppress(httpx.HTTPError):
                return (await good.get(f"{base}/healthz")).status_code == 401
            return False
        await daemon.wait_for(up, 15, "the daemon over HTTPS")
        for path in ("/metrics", "/healthz", "/probe?probe=imap&target=alice", "/"):
            denied = await good.get(base + path)
            assert denied.status_code == 401, path
            assert denied.headers["www-authenticate"].startswith("Basic ")
            assert (await good.get(base + path, auth=("prom", "wrong"))).status_code == 401
            assert (await good.get(base + path, auth=("nobody", WEB_PASSWORD))).status_code \
                == 401
        metrics = await good.get(f"{base}/metrics", auth=("prom", WEB_PASSWORD))
        assert metrics.status_code == 200 and "mailcanary_probe_success" in metrics.text
        probe = await good.get(f"{base}/probe?probe=imap&target=alice",
                               auth=("prom", WEB_PASSWORD))
        assert value(parse_metrics(probe.text), "probe_success") == 1.0
        with pytest.raises(httpx.HTTPError):  # no client certificate: no handshake
            await no_cert.get(f"{base}/metrics", auth=("prom", WEB_PASSWORD))
        with pytest.raises(httpx.HTTPError):  # plain HTTP on the HTTPS port
            await plain.get(f"http://127.0.0.1:{port}/metrics")
        await prometheus_scrapes_through_tls(tmp_path, port, web_yml.parent, ca)
        code, _ = await daemon.stop()
        assert code == 0
    assert WEB_PASSWORD not in daemon.log_path.read_text()


async def prometheus_scrapes_through_tls(tmp_path: Path, port: int, folder: Path,
                                         ca: trustme.CA) -> None:
    """A real Prometheus with the client certificate: the right password scrapes (up 1),
    a wrong one is refused (up 0)."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("Debian's prometheus is not installed")
    cert = ca.issue_cert("prometheus")
    cert.cert_chain_pems[0].write_to_path(str(folder / "client.pem"))
    cert.private_key_pem.write_to_path(str(folder / "client.key"))
    jobs = ""
    for job, password in (("good", WEB_PASSWORD), ("bad", "not-it")):
        jobs += (
            f"  - job_name: {job}\n    scheme: https\n    tls_config:\n"
            f"      ca_file: {folder / 'ca.pem'}\n      cert_file: {folder / 'client.pem'}\n"
            f"      key_file: {folder / 'client.key'}\n"
            f"    basic_auth:\n      username: prom\n      password: {password}\n"
            f"    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
        )
    conf = tmp_path / "prometheus.yml"
    conf.write_text("global:\n  scrape_interval: 1s\nscrape_configs:\n" + jobs)
    prom_port = free_port()
    async with (
        ready_service([binary, f"--config.file={conf}", f"--storage.tsdb.path={tmp_path / 'db'}",
                       f"--web.listen-address=127.0.0.1:{prom_port}"],
                      tmp_path / "prometheus.log", prom_port) as url,
        httpx.AsyncClient(timeout=10) as client,
    ):
        deadline = time.monotonic() + 30
        while True:
            response = await client.get(f"{url}/api/v1/query", params={"query": "up"})
            got = {r["metric"]["job"]: r["value"][1] for r in response.json()["data"]["result"]}
            build = await client.get(f"{url}/api/v1/query",
                                     params={"query": "mailcanary_build_info"})
            if got == {"good": "1", "bad": "0"} and build.json()["data"]["result"]:
                return
            assert time.monotonic() < deadline, got
            await asyncio.sleep(0.5)


@pytest.mark.parametrize(("web_yml", "words"), [
    ("tls_server_config:\n  cert_file: server.pem\n", "tls_server_config.key_file"),
    ("tls_server_config:\n  cert_file: server.pem\n  key_file: nowhere.key\n",
     "tls_server_config.key_file: no such file"),
    ("tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n"
     "  client_auth_type: RequireAndVerifyClientCert\n", "tls_server_config.client_ca_file"),
    ("tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n"
     "  cipher_suites: [TLS_AES_128_GCM_SHA256]\n", "tls_server_config.cipher_suites"),
    ("basic_auth_users:\n  prom: Plain-Password-Here\n", "basic_auth_users.prom"),
    ("basic_auth: {}\n", "basic_auth: unknown key"),
    ("tls_server_config: [\n", "not valid YAML"),
])
async def test_bad_web_yml_is_a_config_error_naming_the_key(
    tmp_path: Path, web_yml: str, words: str
) -> None:
    _ca, _cert, good = web_files(tmp_path)
    bad = good.parent / "bad.yml"
    bad.write_text(web_yml)
    port = free_port()
    config = daemon_config(tmp_path, port)
    config.write_text(config.read_text().replace(
        "[daemon]\n", f'[daemon]\nweb_config_file = "{bad}"\n', 1))
    async with running_daemon(config, port, wait_ready=False) as daemon:
        deadline = time.monotonic() + 15
        while daemon.proc.poll() is None:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        out = daemon.log_path.read_text()
    assert daemon.proc.returncode == 2, out
    assert words in out, out
    assert "Traceback" not in out and "Plain-Password-Here" not in out
    validate = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mailcanary", "validate", "--config", str(config),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": SRC})
    _, err = await validate.communicate()
    assert validate.returncode == 2, err
    assert words in err.decode() and "Traceback" not in err.decode()


async def test_sighup_applies_a_new_web_yml_and_keeps_the_old_on_a_bad_one(
    testbed: MailTestBed, tmp_path: Path
) -> None:
    port = free_port()
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    folder = tmp_path / "web"
    folder.mkdir()
    web_yml = folder / "web.yml"
    hashed = bcrypt.hashpw(WEB_PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    config = daemon_config(tmp_path, port,
                           bed_account(testbed, "alice", "alice", secrets, smtp=False))
    async with running_daemon(config, port) as daemon:
        url = f"http://127.0.0.1:{port}/metrics"
        config.write_text(config.read_text().replace(
            "[daemon]\n", f'[daemon]\nweb_config_file = "{web_yml}"\n', 1))
        web_yml.write_text(f"basic_auth_users:\n  prom: {hashed}\n")
        daemon.signal(signal.SIGHUP)

        async def status_is(code: int) -> bool:
            return (await daemon.client.get(url)).status_code == code
        await daemon.wait_for(lambda: status_is(401), 10, "basic auth after SIGHUP")
        web_yml.write_text("basic_auth_users: [oops]\n")
        daemon.signal(signal.SIGHUP)
        await daemon.wait_for(
            lambda: asyncio.sleep(0, "config_reload_failed" in daemon.log_path.read_text()),
            10, "the failed reload")
        assert (await daemon.client.get(url, auth=("prom", WEB_PASSWORD))).status_code == 200
        assert await status_is(401)
        assert "basic_auth_users: expected a mapping" in daemon.log_path.read_text()
