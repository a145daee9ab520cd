"""Hostile mail in a watched mailbox of the real test bed, with `mailcanary run` watching.

Crafted messages (HTML of `<` at 60 KB and at the fetch limit, 178 KB of nested multiparts,
tens of thousands of parts, broken encodings, a header of semicolons) sit in the INBOX of a
passive watch. While the watch reads them, /metrics answers every scrape within 1 s, an
IMAP target of another account keeps its 1 s schedule, the watch still finds the one real
matching message, and each unparseable message is warned about once: not again on the
next runs, not after a restart.
"""

from __future__ import annotations

import asyncio
import itertools
import subprocess
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from mailcanary.probes.inbound.finder import FETCH_LIMIT
from mailcanary.testbed import MailTestBed, ensure_installed
from mailcanary.testbed.users import TestBedUser
from tests.helpers import hostile_mail
from tests.helpers.daemon_support import (
    RunningDaemon,
    bed_account,
    daemon_config,
    free_port,
    running_daemon,
    value,
)

pytestmark = [pytest.mark.testbed, pytest.mark.slow]

USERS = (TestBedUser("mallory", "Ml7-hostile-Qz4x"), TestBedUser("olga", "0lga-steady-Rk2p"))
UNPARSEABLE = 2  # the nested one and the one of many parts


@pytest.fixture(scope="module")
def bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailTestBed]:
    """A bed of its own: nobody else's test reads or fills these mailboxes."""
    ensure_installed()
    bed = MailTestBed(tmp_path_factory.mktemp("hostilebed"), USERS)
    bed.start()
    try:
        yield bed
    finally:
        bed.stop()


def deliver(bed: MailTestBed, user: str, raw: bytes) -> None:
    subprocess.run(["doveadm", "-c", str(bed.dovecot_conf), "save", "-u", user, "-m", "INBOX"],
                   input=raw, check=True, capture_output=True, timeout=30)


def crafted() -> list[bytes]:
    return [
        hostile_mail.html_of(60_000),
        hostile_mail.html_of(FETCH_LIMIT),
        hostile_mail.html_of(FETCH_LIMIT, "<a "),
        hostile_mail.nested(178_000),
        hostile_mail.many_parts(FETCH_LIMIT),
        hostile_mail.bad_encodings(FETCH_LIMIT),
        hostile_mail.header_bomb(FETCH_LIMIT),
    ]


REAL = (b"From: App <no-reply@app.example>\r\nSubject: Verify your account\r\n"
        b"Content-Type: text/plain\r\n\r\nYour code: 123456\r\n")


def config_for(bed: MailTestBed, tmp: Path, port: int) -> Path:
    secrets = tmp / "secrets"
    secrets.mkdir(exist_ok=True)
    watch = ('[[inbound]]\nname = "stranger-mail"\naccount = "mallory"\ndeadline = "1h"\n'
             'interval = "1s"\ncleanup = "keep"\nmatch = { subject = "verify" }\n')
    return daemon_config(
        tmp, port, bed_account(bed, "mallory", "mallory", secrets, smtp=False),
        bed_account(bed, "olga", "olga", secrets, smtp=False, interval="1s"), watch,
    )


async def watch_while_scraping(daemon: RunningDaemon, runs: int) -> list[float]:
    """Scrape /metrics back to back until the watch has `runs` more results and the other
    account's probe `runs` in all; each scrape's time. Fails at once on a scrape over 1 s."""
    times: list[float] = []
    start_runs: float | None = None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        began = time.monotonic()
        metrics = await daemon.metrics()
        took = time.monotonic() - began
        times.append(took)
        assert took < 1.0, f"/metrics took {took:.2f} s\n{daemon.tail()}"
        assert value(metrics, "mailcanary_probe_success", probe="inbound",
                     target="stranger-mail") is not None
        count = len(daemon.probe_lines("inbound", "stranger-mail"))
        if start_runs is None:
            start_runs = count
        if count - start_runs >= runs and len(daemon.probe_lines("imap", "olga")) >= runs:
            return times
        await asyncio.sleep(0.05)
    raise AssertionError(f"the watch did not run {runs} times\n{daemon.tail()}")


def skips(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in logs if e.get("event") == "message_skipped"]


def largest_gap(lines: list[dict[str, Any]]) -> float:
    stamps = sorted(datetime.fromisoformat(e["timestamp"]).timestamp() for e in lines)
    return max((b - a for a, b in itertools.pairwise(stamps)), default=0.0)


async def test_hostile_mail_neither_stalls_nor_loops(bed: MailTestBed, tmp_path: Path) -> None:
    for raw in crafted():
        deliver(bed, "mallory", raw)
    deliver(bed, "mallory", REAL)
    port = free_port()
    config = config_for(bed, tmp_path, port)
    async with running_daemon(config, port) as daemon:
        times = await watch_while_scraping(daemon, runs=3)
        logs = daemon.logs()
        watch_lines = daemon.probe_lines("inbound", "stranger-mail")
        olga = daemon.probe_lines("imap", "olga")
        assert (await daemon.stop())[0] == 0
    assert watch_lines[-1]["ok"] is True, watch_lines[-1]
    assert [e["event"] for e in logs if e.get("level") in ("error", "critical")] == []
    first = skips(logs)
    assert len(first) == UNPARSEABLE, first
    assert len({e["uid"] for e in first}) == UNPARSEABLE
    assert all(e["watch"] == "stranger-mail" and e["folder"] == "INBOX" for e in first)
    # The other account's probe kept its 1 s schedule while the watch read the mail.
    assert len(olga) >= 3 and largest_gap(olga) < 2.5, [e["timestamp"] for e in olga]
    assert max(times) < 1.0
    async with running_daemon(config, port) as daemon:  # a restart: same state_dir
        await watch_while_scraping(daemon, runs=2)
        again = skips(daemon.logs())
        last = daemon.probe_lines("inbound", "stranger-mail")[-1]
        assert (await daemon.stop())[0] == 0
    assert again == [], again
    assert last["ok"] is True, last
