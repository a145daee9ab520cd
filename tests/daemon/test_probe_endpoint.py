"""`/probe` with side effects kept in check, on the real test bed: a roundtrip target is
run at most once per its interval (canaries counted in Postfix's log), `debug=true` shows
the run's transcript with secrets masked, `X-Prometheus-Scrape-Timeout-Seconds` bounds the
run, and `probe_endpoint = false` turns the endpoint off."""

from __future__ import annotations

import base64
import time
from pathlib import Path

import pytest

from mailcanary.testbed import MailTestBed
from tests.helpers.daemon_support import (
    bed_account,
    daemon_config,
    free_port,
    parse_metrics,
    running_daemon,
    value,
)
from tests.helpers.faults import fake_server
from tests.helpers.mailapp import mail_app
from tests.helpers.support import endpoint

pytestmark = pytest.mark.testbed


def canaries_sent(bed: MailTestBed, since: int) -> int:
    """Canaries Postfix accepted after byte `since` of its log (cleanup logs each
    message's Message-ID once)."""
    text = bed.postfix_log.read_bytes()[since:].decode(errors="replace")
    return text.count("message-id=<mailcanary.")


async def test_roundtrip_probe_sends_one_canary_per_interval(
    testbed: MailTestBed, tmp_path: Path
) -> None:
    port = free_port()
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    route = ('[[routes]]\nname = "a2b"\nfrom = "alice"\nto = "bob"\ninterval = "1h"\n'
             'deadline = "20s"\n')
    config = daemon_config(
        tmp_path, port,
        bed_account(testbed, "alice", "alice", secrets, imap=False),
        bed_account(testbed, "bob", "bob", secrets, smtp=False), route)
    since = testbed.postfix_log.stat().st_size
    async with running_daemon(config, port) as daemon:
        url = f"http://127.0.0.1:{port}/probe"
        first = await daemon.client.get(url, params={"probe": "roundtrip", "target": "a2b"},
                                        timeout=40)
        got = parse_metrics(first.text)
        assert value(got, "probe_success") == 1.0, first.text
        assert value(got, "mailcanary_probe_cached") == 0.0
        second = await daemon.client.get(url, params={"probe": "roundtrip", "target": "a2b"})
        assert value(parse_metrics(second.text), "mailcanary_probe_cached") == 1.0
        assert value(parse_metrics(second.text), "probe_success") == 1.0
        debug = await daemon.client.get(
            url, params={"probe": "roundtrip", "target": "a2b", "debug": "true"})
        assert debug.headers["content-type"].startswith("text/plain")
        transcript, _, metrics = debug.text.partition("Metrics that would have been returned:")
        assert "Transcript" in transcript and "EHLO" in transcript, debug.text
        assert "mailcanary_probe_cached 1" in metrics and "probe_success 1" in metrics
        for user in ("alice", "bob"):
            secret = testbed.user(user).password
            blob = base64.b64encode(f"\0{user}\0{secret}".encode()).decode()
            assert secret not in debug.text and blob not in debug.text

        async def one_canary_from_probe() -> bool:
            # Scheduled runs (first due within a minute of start) send their own; /probe
            # sent exactly one if the count is one more than the scheduled runs.
            scheduled = value(await daemon.metrics(), "mailcanary_probes_total",
                              probe="roundtrip", target="a2b") or 0
            return canaries_sent(testbed, since) == 1 + scheduled
        await daemon.wait_for(one_canary_from_probe, 30, "one canary from /probe")
        code, _ = await daemon.stop()
        assert code == 0


async def test_inbound_probe_calls_the_trigger_once_per_interval(
    testbed: MailTestBed, tmp_path: Path
) -> None:
    port = free_port()
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    async with mail_app(testbed) as app:
        watch = (
            '[[inbound]]\nname = "signup"\naccount = "dave"\ninterval = "1h"\n'
            'deadline = "10s"\nmatch = { body = "token\\\\s+{token}" }\n'
            f'trigger = {{ url = "{app.url("normal")}", body = \'{{"email": "{{address}}", '
            '"token": "{token}"}\' }\n'
        )
        config = daemon_config(tmp_path, port,
                               bed_account(testbed, "dave", "dave", secrets, smtp=False), watch)
        async with running_daemon(config, port) as daemon:
            url = f"http://127.0.0.1:{port}/probe"
            params = {"probe": "inbound", "target": "signup"}
            first = parse_metrics((await daemon.client.get(url, params=params, timeout=30)).text)
            assert value(first, "probe_success") == 1.0
            again = [parse_metrics((await daemon.client.get(url, params=params)).text)
                     for _ in range(3)]
            assert all(value(a, "mailcanary_probe_cached") == 1.0 for a in again)

            async def one_call_from_probe() -> bool:
                scheduled = value(await daemon.metrics(), "mailcanary_probes_total",
                                  probe="inbound", target="signup") or 0
                return len(app.requests) == 1 + scheduled
            await daemon.wait_for(one_call_from_probe, 20, "one trigger call from /probe")


async def test_scrape_timeout_header_bounds_the_run(
    testbed: MailTestBed, tmp_path: Path
) -> None:
    """A server that never answers, a probe timeout of 30 s: Prometheus says it waits 3 s,
    so the answer (a timeout failure) comes before that, not after 30 s."""
    port = free_port()
    async with fake_server(silent=True) as hole:
        config = daemon_config(
            tmp_path, port,
            f'[[accounts]]\nname = "hole"\naddress = "h@example.test"\npassword = "x-secret"\n'
            f'timeout = "30s"\nimap = {endpoint("127.0.0.1", hole)}\n')
        async with running_daemon(config, port) as daemon:
            started = time.monotonic()
            response = await daemon.client.get(
                f"http://127.0.0.1:{port}/probe", params={"probe": "imap", "target": "hole"},
                headers={"X-Prometheus-Scrape-Timeout-Seconds": "3"}, timeout=40)
            took = time.monotonic() - started
            got = parse_metrics(response.text)
            assert value(got, "probe_success") == 0.0
            assert value(got, "mailcanary_probe_failure_info", reason="timeout") == 1.0
            assert took < 3.0, took
            bad = await daemon.client.get(
                f"http://127.0.0.1:{port}/probe", params={"probe": "imap", "target": "hole"},
                headers={"X-Prometheus-Scrape-Timeout-Seconds": "soon"})
            assert bad.status_code == 400


async def test_probe_endpoint_can_be_turned_off(testbed: MailTestBed, tmp_path: Path) -> None:
    port = free_port()
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    config = daemon_config(tmp_path, port,
                           bed_account(testbed, "alice", "alice", secrets, smtp=False))
    config.write_text(config.read_text().replace(
        "[daemon]\n", "[daemon]\nprobe_endpoint = false\n", 1))
    async with running_daemon(config, port) as daemon:
        response = await daemon.client.get(f"http://127.0.0.1:{port}/probe",
                                           params={"probe": "imap", "target": "alice"})
        assert response.status_code == 404
        assert "probe_endpoint" in response.text
        assert (await daemon.client.get(f"http://127.0.0.1:{port}/metrics")).status_code == 200
