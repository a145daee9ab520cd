"""In-flight canaries get their verdict after SIGTERM or kill -9: the real Postfix holds the
canary in its queue (`defer_transports = lmtp`) while the daemon stops; it is released, and
the next daemon on the same state_dir counts it once, as delivered (INTERNALDATE minus the
recorded accept) or lost at its original deadline. Afterwards the mailbox holds nothing
but what was there before."""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailcanary.testbed import MailTestBed
from tests.helpers.daemon_support import (
    RunningDaemon,
    bed_account,
    daemon_config,
    free_port,
    running_daemon,
    value,
)
from tests.helpers.receivers import receiver
from tests.probes.test_roundtrip import canaries_left

pytestmark = pytest.mark.testbed

A2B = {"probe": "roundtrip", "target": "a2b"}  # the route's series


def postfix(bed: MailTestBed, *args: str) -> None:
    name, *rest = args
    binary = shutil.which(name, path="/usr/sbin:/usr/bin:/sbin") or name
    subprocess.run([binary, "-c", str(bed.postfix_dir), *rest], check=True,
                   capture_output=True, timeout=60)


def hold_queue(bed: MailTestBed, held: bool) -> None:
    postfix(bed, "postconf", "-e", f"defer_transports = {'lmtp' if held else ''}")
    past = time.time() - 60  # a young main.cf makes every postfix command wait ~1.7 s
    os.utime(bed.postfix_dir / "main.cf", (past, past))
    postfix(bed, "postfix", "reload")
    if not held:
        postfix(bed, "postqueue", "-f")


@pytest.fixture
def held_queue(testbed: MailTestBed) -> Iterator[None]:
    hold_queue(testbed, True)
    try:
        yield
    finally:
        hold_queue(testbed, False)
        # hygiene for the next tests on this bed (the assertions ran before): a canary of a
        # scheduled run that a test's daemon stopped may still come out of the queue
        time.sleep(1.0)
        testbed.doveadm("expunge", "-u", "bob", "mailbox", "*", "HEADER", "X-Mailcanary-Token",
                        "")


def in_flight(state: Path) -> list[tuple[str, str]]:
    db = state / "roundtrip.sqlite3"
    if not db.exists():
        return []
    try:
        with sqlite3.connect(db) as conn:
            return conn.execute("SELECT token, status FROM canaries").fetchall()
    except sqlite3.OperationalError:  # not created yet
        return []


def config_for(testbed: MailTestBed, tmp_path: Path, port: int, deadline: str,
               sinks: str = "") -> Path:
    secrets = tmp_path / "secrets"
    secrets.mkdir(exist_ok=True)
    route = ('[[routes]]\nname = "a2b"\nfrom = "alice"\nto = "bob"\ninterval = "1h"\n'
             f'deadline = "{deadline}"\nslo = "60s"\n')
    return daemon_config(
        tmp_path, port,
        bed_account(testbed, "alice", "alice", secrets, interval="1h", imap=False),
        bed_account(testbed, "bob", "bob", secrets, interval="1h", smtp=False), route, sinks)


async def submit_then_stop(daemon: RunningDaemon, state: Path, how: str) -> None:
    async def accepted() -> bool:
        return any(status == "in_flight" for _, status in in_flight(state))
    await daemon.wait_for(accepted, 70, "a canary accepted and held in the queue")
    if how == "kill -9":
        daemon.proc.kill()
        daemon.proc.wait(10)
    else:
        code, seconds = await daemon.stop(within=12)
        assert code == 0 and seconds < 10


async def canaries(daemon: RunningDaemon, placement: str) -> float:
    return value(await daemon.metrics(), "mailcanary_canaries_total", **A2B,
                 placement=placement) or 0.0


@pytest.mark.usefixtures("held_queue")
@pytest.mark.parametrize("how", ["SIGTERM", "kill -9"])
async def test_held_canary_delivered_after_restart(
    testbed: MailTestBed, tmp_path: Path, how: str
) -> None:
    before = canaries_left(testbed, "bob")
    port = free_port()
    config = config_for(testbed, tmp_path, port, deadline="120s")
    state = tmp_path / "state"
    async with running_daemon(config, port) as daemon:
        await submit_then_stop(daemon, state, how)
    hold_queue(testbed, False)
    for _ in range(100):
        if canaries_left(testbed, "bob"):
            break
        await asyncio.sleep(0.1)
    async with running_daemon(config, port) as daemon:
        async def counted() -> bool:
            return await canaries(daemon, "inbox") >= 1
        await daemon.wait_for(counted, 20, "the held canary's verdict")
        metrics = await daemon.metrics()
        runs = len(daemon.probe_lines("roundtrip", "a2b"))
        await daemon.stop()
    verdicts = [e for e in daemon.probe_lines("roundtrip", "a2b") if "delivery_seconds" in e]
    assert value(metrics, "mailcanary_canaries_total", **A2B, placement="inbox") == runs
    assert value(metrics, "mailcanary_delivery_duration_seconds_count", **A2B) == runs
    assert verdicts and verdicts[0]["ok"] and verdicts[0]["delivery_seconds"] >= 0, daemon.tail()
    assert value(metrics, "mailcanary_late_canaries_total", **A2B) in (None, 0.0)
    assert canaries_left(testbed, "bob") == before
    assert in_flight(state) == []


@pytest.mark.usefixtures("held_queue")
async def test_held_canary_lost_at_its_deadline_after_kill(
    testbed: MailTestBed, tmp_path: Path
) -> None:
    before = canaries_left(testbed, "bob")
    port = free_port()
    async with receiver() as hook:
        sink = f'[[alerts]]\nkind = "webhook"\nurl = "{hook.url}/hook"\nafter = 1\n'
        config = config_for(testbed, tmp_path, port, deadline="8s", sinks=sink)
        state = tmp_path / "state"
        async with running_daemon(config, port) as daemon:
            await submit_then_stop(daemon, state, "kill -9")
            started = time.time()
        async with running_daemon(config, port) as daemon:
            async def counted() -> bool:
                return await canaries(daemon, "missing") >= 1 and bool(hook.bodies("/hook"))
            await daemon.wait_for(counted, 30, "the lost verdict and its alert")
            metrics = await daemon.metrics()
            lost = [e for e in daemon.probe_lines("roundtrip", "a2b") if e["reason"] == "lost"]
            await daemon.stop()
    # The restarted daemon's own run may also lose a canary in the held queue: each lost
    # verdict, the one from before the kill among them, is counted exactly once.
    alert = hook.bodies("/hook")[0]  # a result like any other: it alerts
    assert (alert["status"], alert["target"], alert["reason"]) == ("firing", "a2b", "lost")
    assert time.time() - started >= 8  # not before the original deadline
    assert value(metrics, "mailcanary_probe_success", **A2B) == 0.0
    assert value(metrics, "mailcanary_probe_failures_total", **A2B,
                 **{"class": "delivery", "reason": "lost"}) == len(lost) >= 1
    # the canary arrives once released: the mailbox is cleaned (as the next sweep would)
    hold_queue(testbed, False)
    for _ in range(100):
        if canaries_left(testbed, "bob") != before:
            break
        await asyncio.sleep(0.1)
    testbed.doveadm("expunge", "-u", "bob", "mailbox", "*", "HEADER", "X-Mailcanary-Token", "")
    assert canaries_left(testbed, "bob") == before == []
