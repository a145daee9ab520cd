"""`mailcanary run` as a subprocess against the real test bed: start-up series, shutdown,
reload, isolation of a black-holed account, backoff and the systemd notify protocol."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import os
import signal
import socket
from pathlib import Path

import pytest

from mailcanary.config import load_config
from mailcanary.daemon.metrics import PLACEMENTS
from mailcanary.daemon.sdnotify import Notifier
from mailcanary.diagnosis import CLASS_OF
from mailcanary.probes import PROBES
from mailcanary.testbed import MailTestBed
from tests.helpers.daemon_support import (
    RunningDaemon,
    bed_account,
    daemon_config,
    free_port,
    promtool_check,
    running_daemon,
    value,
)
from tests.helpers.faults import fake_server
from tests.helpers.support import cli, endpoint

pytestmark = pytest.mark.testbed

CONTRACT_PER_TARGET = (
    "mailcanary_probe_success",
    "mailcanary_probe_duration_seconds",
    "mailcanary_probe_phase_duration_seconds",
    "mailcanary_probes_total",
    "mailcanary_probe_last_success_timestamp_seconds",
    "mailcanary_tls_cert_expiry_timestamp_seconds",
    "mailcanary_probe_skipped_total",
)
MAX_SERIES_PER_TARGET = 15  # at start-up, histogram buckets aside (contract)


def secrets_dir(tmp_path: Path) -> Path:
    path = tmp_path / "secrets"
    path.mkdir(exist_ok=True)
    return path


async def test_startup_series_promtool_and_no_secrets(
    testbed: MailTestBed, tmp_path: Path
) -> None:
    port = free_port()
    sec = secrets_dir(tmp_path)
    route = '[[routes]]\nname = "alice-to-bob"\nfrom = "alice"\nto = "bob"\n'
    config = daemon_config(
        tmp_path, port,
        bed_account(testbed, "alice", "alice", sec),
        bed_account(testbed, "bob", "bob", sec, password="Wrong-" + testbed.user("bob").password),
        route,
    )
    async with running_daemon(config, port) as daemon:
        metrics = await daemon.metrics()
        for target in ("alice", "bob"):
            for kind in ("imap", "smtp"):
                for name in CONTRACT_PER_TARGET:
                    assert value(metrics, name, probe=kind, target=target) is not None, name
                config_now = load_config(config)
                preset = PROBES[kind].preset_phases(config_now, target)
                assert set(preset) == set(PROBES[kind].phases) - {
                    "token", "starttls" if kind == "imap" else "-"}
                for phase in preset:
                    assert value(metrics, "mailcanary_probe_phase_duration_seconds",
                                 probe=kind, target=target, phase=phase) is not None
                # Failure counters appear at the first failure (the contract allows it).
                assert value(metrics, "mailcanary_probe_failures_total", probe=kind,
                             target=target) is None
                series = [
                    name for name, samples in metrics.items() for labels, _ in samples
                    if labels.get("target") == target and labels.get("probe") == kind
                ]
                assert len(series) <= MAX_SERIES_PER_TARGET, (kind, target, sorted(series))
        assert value(metrics, "mailcanary_schedule_lag_seconds_count") is not None
        assert value(metrics, "mailcanary_build_info", version="0.1.0") == 1.0
        assert value(metrics, "mailcanary_config_last_reload_successful") == 1.0
        for placement in PLACEMENTS:
            assert value(metrics, "mailcanary_canaries_total", probe="roundtrip",
                         target="alice-to-bob", placement=placement) is not None
        assert value(metrics, "mailcanary_delivery_duration_seconds_count",
                     probe="roundtrip", target="alice-to-bob") is not None

        # promtool on a real scrape, after some probes ran too (interval 1h: wait for the
        # start jitter of at most 60 s is too long, so reload with a short interval).
        text = config.read_text().replace('interval = "1h"', 'interval = "1s"')
        config.write_text(text)
        daemon.signal(signal.SIGHUP)

        async def bob_failed() -> bool:
            m = await daemon.metrics()
            return (value(m, "mailcanary_probe_failures_total", probe="imap", target="bob",
                          reason="invalid_credentials", **{"class": CLASS_OF[
                              "invalid_credentials"]}) or 0) >= 1 and (
                value(m, "mailcanary_probe_success", probe="imap", target="alice") == 1)
        await daemon.wait_for(bob_failed, 20, "bob's auth failure and alice's success")
        scrape = await daemon.metrics_text()
        code, said = await promtool_check(scrape)
        assert code == 0 and said.strip() == "", said
        code, health = await daemon.health()
        assert code == 200
        by_key = {(t["probe"], t["target"]): t for t in health["targets"]}
        assert by_key["imap", "bob"]["class"] == "auth"
        assert set(by_key["imap", "bob"]) >= {"probe", "target", "ok", "class", "reason",
                                               "phase", "finished_at"}
        exit_code, _ = await daemon.stop()
        assert exit_code == 0
        logs = daemon.log_path.read_text()
    for user in ("alice", "bob"):
        password = testbed.user(user).password
        assert password not in logs and password not in scrape
        assert password[::-1] not in logs


async def test_bad_config_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[daemon]\nlisten = "nonsense"\n')
    code, _out, err = await cli("run", "--config", str(path), limit=20)
    assert code == 2
    assert "daemon.listen" in err and "Traceback" not in err


async def test_sigterm_with_probe_in_flight_exits_0_fast(tmp_path: Path) -> None:
    """A probe hung on a silent server is cancelled: exit 0 well within 10 s."""
    port = free_port()
    async with fake_server(silent=True) as hole:
        config = daemon_config(
            tmp_path, port,
            '[[accounts]]\nname = "hole"\naddress = "h@example.test"\npassword = "x-secret"\n'
            f'timeout = "60s"\nimap = {endpoint("127.0.0.1", hole)}\n',
            interval="1s",
        )
        async with running_daemon(config, port) as daemon:
            async def in_flight() -> bool:
                return any(e.get("event") == "daemon_started" for e in daemon.logs())
            await daemon.wait_for(in_flight, 10)
            await asyncio.sleep(2.0)  # the 1 s job has started and hangs in "greeting"
            exit_code, seconds = await daemon.stop()
            assert exit_code == 0
            assert seconds < 10, seconds
            stopped = [e for e in daemon.logs() if e.get("event") == "daemon_stopped"]
            assert stopped and stopped[0]["cancelled_probes"] == 1
            print(f"shutdown with a hung probe: {seconds:.2f} s")


async def test_sighup_adds_removes_and_keeps_old_on_error(
    testbed: MailTestBed, tmp_path: Path
) -> None:
    port = free_port()
    sec = secrets_dir(tmp_path)
    alice = bed_account(testbed, "alice", "alice", sec)
    carol = bed_account(testbed, "carol", "carol", sec, smtp=False)
    config = daemon_config(tmp_path, port, alice)
    async with running_daemon(config, port) as daemon:
        def targets(m: dict[str, list[tuple[dict[str, str], float]]]) -> set[tuple[str, str]]:
            return {(lab["probe"], lab["target"]) for lab, _ in m["mailcanary_probe_success"]}

        assert targets(await daemon.metrics()) == {("imap", "alice"), ("smtp", "alice")}
        config.write_text(config.read_text().replace(alice, carol))
        daemon.signal(signal.SIGHUP)

        async def switched() -> bool:
            return targets(await daemon.metrics()) == {("imap", "carol")}
        await daemon.wait_for(switched, 10, "carol replacing alice")
        m = await daemon.metrics()
        assert value(m, "mailcanary_config_last_reload_successful") == 1.0
        assert not [s for s in m["mailcanary_probe_phase_duration_seconds"]
                    if s[0]["target"] == "alice"]

        good = config.read_text()
        config.write_text(good + "\n[[accounts]]\nname = \"broken\"\n")
        daemon.signal(signal.SIGHUP)

        async def failed_reload() -> bool:
            m = await daemon.metrics()
            return value(m, "mailcanary_config_last_reload_successful") == 0.0
        await daemon.wait_for(failed_reload, 10, "the reload gauge at 0")
        assert targets(await daemon.metrics()) == {("imap", "carol")}
        assert (await daemon.health())[0] == 200
        errors = [e for e in daemon.logs() if e.get("event") == "config_reload_failed"]
        assert errors and any("accounts[1]" in p for p in errors[0]["problems"])

        config.write_text(good)
        daemon.signal(signal.SIGHUP)
        await daemon.wait_for(
            lambda: _reload_ok(daemon), 10, "the reload gauge back at 1"
        )
        code, _ = await daemon.stop()
        assert code == 0


async def _reload_ok(daemon: RunningDaemon) -> bool:
    return value(await daemon.metrics(), "mailcanary_config_last_reload_successful") == 1.0


async def test_black_holed_account_does_not_delay_others(
    testbed: MailTestBed, tmp_path: Path
) -> None:
    port = free_port()
    sec = secrets_dir(tmp_path)
    async with fake_server(silent=True) as hole:
        config = daemon_config(
            tmp_path, port,
            bed_account(testbed, "alice", "alice", sec),
            bed_account(testbed, "carol", "carol", sec),
            '[[accounts]]\nname = "hole"\naddress = "h@example.test"\npassword = "x-secret"\n'
            f'timeout = "4s"\nimap = {endpoint("127.0.0.1", hole)}\n'
            f'smtp = {endpoint("127.0.0.1", hole)}\n',
            interval="1s",
        )
        async with running_daemon(config, port) as daemon:
            async def hole_timed_out() -> bool:
                return len(daemon.probe_lines("imap", "hole")) >= 2
            await daemon.wait_for(hole_timed_out, 20, "two timeouts of the black hole")
            code, _ = await daemon.stop()
            assert code == 0
    assert all(e["class"] == "timeout" for e in daemon.probe_lines("imap", "hole"))
    for kind in ("imap", "smtp"):
        for target in ("alice", "carol"):
            lines = daemon.probe_lines(kind, target)
            assert len(lines) >= 6, (kind, target, len(lines))
            times = [_ts(e["timestamp"]) for e in lines]
            gaps = [b - a for a, b in itertools.pairwise(times)]
            # Every 1 s; a probe takes ~0.05 s. No slip beyond a second.
            assert max(gaps) < 2.0, (kind, target, gaps)
            assert all(e["ok"] for e in lines), lines


def _ts(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


async def test_backoff_after_auth_failure_and_back_on_success(
    testbed: MailTestBed, tmp_path: Path
) -> None:
    port = free_port()
    sec = secrets_dir(tmp_path)
    config = daemon_config(
        tmp_path, port,
        bed_account(testbed, "bob", "bob", sec, smtp=False,
                    password="Wrong-" + testbed.user("bob").password),
        interval="1s",
    )
    async with running_daemon(config, port) as daemon:
        async def factor(want: float) -> bool:
            m = await daemon.metrics()
            got = value(m, "mailcanary_probe_backoff_factor", probe="imap", target="bob")
            return (1.0 if got is None else got) == want  # exported only while > 1
        await daemon.wait_for(lambda: factor(4.0), 20, "backoff factor 4")
        lines = daemon.probe_lines("imap", "bob")
        times = [_ts(e["timestamp"]) for e in lines]
        gaps = [b - a for a, b in itertools.pairwise(times)]
        # After one failure 2 s, after two 4 s (probe time ~0.5 s comes on top).
        assert gaps[0] >= 1.9, gaps
        backoffs = [e for e in daemon.logs() if e.get("event") == "probe_backoff"]
        assert [e["factor"] for e in backoffs[:2]] == [2, 4]
        (sec / "bob").write_text(testbed.user("bob").password + "\n")
        await daemon.wait_for(lambda: factor(1.0), 15, "backoff cleared")
        assert daemon.probe_lines("imap", "bob")[-1]["ok"] is True
        code, _ = await daemon.stop()
        assert code == 0


async def test_sd_notify_ready_watchdog_reload_stopping(
    testbed: MailTestBed, tmp_path: Path
) -> None:
    port = free_port()
    sec = secrets_dir(tmp_path)
    config = daemon_config(tmp_path, port, bed_account(testbed, "alice", "alice", sec))
    sock_path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_path))
    sock.setblocking(False)
    received: list[str] = []

    async def collect(seconds: float) -> None:
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        while loop.time() < end:
            try:
                data = sock.recv(4096)
            except BlockingIOError:
                await asyncio.sleep(0.02)
                continue
            received.append(data.decode())

    env = {"NOTIFY_SOCKET": str(sock_path), "WATCHDOG_USEC": "600000"}
    try:
        async with running_daemon(config, port, env=env) as daemon:
            await collect(1.5)
            assert any(m.startswith("READY=1") for m in received), received
            pings = [m for m in received if m == "WATCHDOG=1"]
            assert len(pings) >= 3, received  # every 0.2 s for a 0.6 s watchdog
            daemon.signal(signal.SIGHUP)
            await collect(1.0)
            reload = [m for m in received if m.startswith("RELOADING=1")]
            assert reload and "MONOTONIC_USEC=" in reload[0]
            after = received[received.index(reload[0]):]
            assert any(m.startswith("READY=1") for m in after)
            daemon.signal(signal.SIGTERM)
            await collect(1.0)
            assert daemon.proc.wait(10) == 0
            assert "STOPPING=1" in received
    finally:
        sock.close()


def test_notifier_abstract_socket() -> None:
    name = f"mailcanary-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        notifier = Notifier({"NOTIFY_SOCKET": "@" + name})
        notifier.ready()
        assert sock.recv(100) == b"READY=1"
    assert not Notifier({}).enabled
    assert Notifier({"WATCHDOG_USEC": "60000000"}).watchdog_seconds == 60.0
    assert Notifier({"WATCHDOG_USEC": "1", "WATCHDOG_PID": "1"}).watchdog_seconds is None
