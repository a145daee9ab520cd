"""A connection lost while a watcher waits is re-opened and the wait goes on; only when
re-opening fails does the round trip fail, in phase deliver. Real Dovecot and Postfix; the
cuts come from Dovecot itself (`doveadm kick`) or a TCP proxy in front of its IMAP port."""

from __future__ import annotations

from pathlib import Path

from mailcanary.config import load_config
from mailcanary.testbed import MailTestBed
from tests.helpers.faults import cutting_proxy
from tests.helpers.support import account, endpoint, password_file
from tests.probes.test_roundtrip import MakeConfig, canaries_left, route, run_route


def bob_via(testbed: MailTestBed, tmp_path: Path, port: int) -> str:
    """bob's account, its IMAP through `port` (a proxy) on the test bed's host."""
    pw = password_file(tmp_path, testbed.user("bob").password, name="pw-bob-proxied")
    return account("bobp", password_file=pw, ca_file=testbed.ca_pem, timeout="10s",
                   address="bob@" + testbed.user("bob").address.split("@")[1], username="bob",
                   imap=endpoint(testbed.host, port, "tls"))


async def test_dovecot_drops_the_idling_watcher(
    testbed: MailTestBed, make_config: MakeConfig
) -> None:
    config = load_config(make_config(route("a2b", "alice", "bob", deadline="15s")))

    async def kick(message: bytes) -> None:  # Dovecot ends every session of bob's
        testbed.doveadm("kick", "bob")

    result = await run_route(config, "a2b", after_accept=kick)
    row = result.as_json(transcript=True)
    assert result.ok, row
    assert row["placement"] == "inbox"
    assert any("re-opening" in line for line in row["transcript"]), row["transcript"]


async def test_proxy_cuts_every_connection_after_submission(
    testbed: MailTestBed, make_config: MakeConfig, tmp_path: Path
) -> None:
    async with cutting_proxy(testbed.host, testbed.imaps_port) as proxy:
        config = load_config(make_config(route("a2bp", "alice", "bobp", deadline="15s"),
                                         bob_via(testbed, tmp_path, proxy.port)))

        async def cut(message: bytes) -> None:
            proxy.cut()

        result = await run_route(config, "a2bp", after_accept=cut)
    row = result.as_json(transcript=True)
    assert result.ok, row
    assert row["placement"] == "inbox" and row["delivery_seconds"] < 5
    assert proxy.connections >= 2


async def test_reopen_fails_in_phase_deliver(
    testbed: MailTestBed, make_config: MakeConfig, tmp_path: Path
) -> None:
    async with cutting_proxy(testbed.host, testbed.imaps_port) as proxy:
        config = load_config(make_config(route("a2bp", "alice", "bobp", deadline="15s"),
                                         bob_via(testbed, tmp_path, proxy.port)))

        async def cut(message: bytes) -> None:
            proxy.refuse = True
            proxy.cut()

        result = await run_route(config, "a2bp", after_accept=cut)
    assert not result.ok
    assert (result.cls, result.phase) == ("network", "deliver"), result.as_json()
    # the canary arrived but nobody could watch it: remove it (the fixture checks the box)
    testbed.doveadm("expunge", "-u", "bob", "mailbox", "*", "HEADER", "X-Mailcanary-Token", "")
    assert canaries_left(testbed, "bob") == []
