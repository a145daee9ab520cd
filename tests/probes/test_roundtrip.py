"""Round trips on the real test bed: every placement and delivery reason, cleanup that
touches nothing else, and a restart between send and arrival."""

from __future__ import annotations

import asyncio
import imaplib
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from mailcanary.config import Config, load_config
from mailcanary.daemon.app import Daemon
from mailcanary.probes import PROBES
from mailcanary.probes.roundtrip.probe import round_trip, sweep
from mailcanary.probes.roundtrip.state import CanaryStore
from mailcanary.probes.runner import run_probe
from mailcanary.result import ProbeResult
from mailcanary.testbed import BLACKHOLE_ADDRESS, SPAM_HEADER, MailTestBed
from tests.helpers.support import account, check_json, endpoint, password_file, write_config

USERS = ("alice", "bob", "carol", "dave")
MakeConfig = Callable[..., Path]


def canaries_left(bed: MailTestBed, user: str) -> list[str]:
    out = bed.doveadm("search", "-u", user, "mailbox", "*", "HEADER", "X-Mailcanary-Token", "")
    return [line for line in out.stdout.splitlines() if line.strip()]


def wait_for_canary(bed: MailTestBed, user: str, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not canaries_left(bed, user):
        assert time.monotonic() < deadline, f"no canary reached {user}"
        time.sleep(0.01)


@pytest.fixture
def make_config(testbed: MailTestBed, tmp_path: Path) -> Iterator[MakeConfig]:
    """Accounts for every test bed user (plus `extra_accounts`) and the given routes."""

    def make(routes: str, extra_accounts: str = "", state: Path | None = None) -> Path:
        accs = []
        for user in USERS:
            pw = password_file(tmp_path, testbed.user(user).password, name=f"pw-{user}")
            accs.append(account(
                user, password_file=pw, ca_file=testbed.ca_pem, timeout="10s",
                imap=endpoint(testbed.host, testbed.imaps_port, "tls"),
                smtp=endpoint(testbed.host, testbed.submission_port, "starttls"),
            ))
        path = write_config(tmp_path, *accs, extra_accounts, extra=routes)
        if state is not None:
            path.write_text(path.read_text().replace(str(tmp_path / "state"), str(state)))
        return path

    yield make
    for user in USERS:
        assert canaries_left(testbed, user) == [], f"canary left in {user}'s mailbox"


def route(name: str, src: str, dst: str, deadline: str = "10s", slo: str = "5s") -> str:
    return (f'\n[[routes]]\nname = "{name}"\nfrom = "{src}"\nto = "{dst}"\n'
            f'deadline = "{deadline}"\nslo = "{slo}"\n')


def other_account(testbed: MailTestBed, tmp_path: Path, name: str, address: str, login: str) -> str:
    """An account whose address is `address` but whose IMAP login is `login`'s."""
    pw = password_file(tmp_path, testbed.user(login).password, name=f"pw-{name}")
    return account(
        name, password_file=pw, ca_file=testbed.ca_pem, timeout="10s", address=address,
        username=login,
        imap=endpoint(testbed.host, testbed.imaps_port, "tls"),
        smtp=endpoint(testbed.host, testbed.submission_port, "starttls"),
    )


async def run_route(config: Config, name: str, **hooks: object) -> ProbeResult:
    """The runner with the real timeout, but the probe function given test-only hooks."""
    kind = PROBES["roundtrip"]

    async def run(ctx: object, cfg: Config, target: str) -> None:
        await round_trip(ctx, cfg, target, **hooks)  # type: ignore[arg-type]  # test hooks

    registry = {"roundtrip": replace(kind, run=run)}
    return await run_probe("roundtrip", name, config, registry=registry)


async def crash_after_accept(config: Config, name: str) -> None:
    """Run the route and kill the probe right after the SMTP server accepted the canary,
    as a crash or restart would."""
    accepted = asyncio.Event()

    async def die(message: bytes) -> None:
        accepted.set()
        await asyncio.sleep(3600)

    task = asyncio.create_task(run_route(config, name, after_accept=die))
    await asyncio.wait_for(accepted.wait(), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_inbox_delivery(make_config: MakeConfig) -> None:
    config = load_config(make_config(route("a2b", "alice", "bob")))
    result = await run_probe("roundtrip", "a2b", config)
    row = result.as_json(transcript=True)
    assert result.ok, row
    assert row["placement"] == "inbox"
    assert 0 < row["delivery_seconds"] < 1.0
    assert row["auth_results"] == {"spf": "none", "dkim": "none", "dmarc": "none"}
    for phase in ("connect", "tls", "greeting", "starttls", "auth", "send", "deliver", "cleanup"):
        assert phase in row["phases"], row["phases"]
    assert any("Received by" in line for line in row["transcript"])


async def test_spam_folder(make_config: MakeConfig) -> None:
    config = load_config(make_config(route("a2c", "alice", "carol")))
    result = await run_route(config, "a2c", extra_headers={SPAM_HEADER: "yes"})
    assert (result.cls, result.reason, result.phase) == ("spam", "spam_folder", "deliver")
    assert result.extra["placement"] == "spam" and result.extra["folder"] == "Junk"
    assert result.extra["delivery_seconds"] > 0
    assert "the receiving side's headers give no reason" in result.detail


async def test_spam_folder_says_why(make_config: MakeConfig) -> None:
    """The receiving side's verdict headers go into the detail, and the hint says what to fix."""
    config = load_config(make_config(route("a2c", "alice", "carol")))
    result = await run_route(config, "a2c", extra_headers={
        SPAM_HEADER: "yes",
        "Authentication-Results": "mx.example.test; spf=pass smtp.mailfrom=alice@example.test; "
                                  "dkim=fail (body hash) header.d=example.test header.s=mc1",
        "X-Spamd-Result": "default: True [9.10 / 15.00]; R_DKIM_REJECT(1.00)[example.test]; "
                          "BAYES_SPAM(5.10)[99.9%]; MIME_GOOD(-0.10)[text/plain]",
        "X-Rspamd-Score": "9.10",
    })
    assert result.reason == "spam_folder"
    assert "dkim=fail (header.d=example.test, header.s=mc1)" in result.detail, result.detail
    assert "Rspamd score 9.10 of 15.00" in result.detail
    assert "BAYES_SPAM(5.1)" in result.detail
    assert result.hint.startswith("DKIM fail for example.test"), result.hint
    assert "mc1._domainkey.example.test" in result.hint


@pytest.fixture
def dave_meiwaku(testbed: MailTestBed) -> Iterator[str]:
    name = "迷惑メール"
    if name not in testbed.doveadm("mailbox", "list", "-u", "dave").stdout:
        testbed.create_folder("dave", name)
    yield name


def append_into(testbed: MailTestBed, user: str, folder_wire: str, message: bytes) -> None:
    imap = imaplib.IMAP4(testbed.host, testbed.imap_port)
    try:
        imap.login(user, testbed.user(user).password)
        typ, data = imap.append(f'"{folder_wire}"', None, None, message)
        assert typ == "OK", data
    finally:
        imap.logout()


@pytest.mark.parametrize(("special_use", "placement"), [(False, "spam"), (True, "other")])
async def test_japanese_junk_folder_without_special_use(
    testbed: MailTestBed, tmp_path: Path, make_config: MakeConfig, dave_meiwaku: str,
    special_use: bool, placement: str,
) -> None:
    """The canary goes to the black hole; a copy appears in dave's 迷惑メール (no \\Junk
    flag). Found by name when SPECIAL-USE is ignored; otherwise only after the deadline."""
    hole = other_account(testbed, tmp_path, "hole", BLACKHOLE_ADDRESS, "dave")
    config = load_config(make_config(route("a2h", "alice", "hole", deadline="2s"), hole))

    async def deliver_copy(message: bytes) -> None:
        await asyncio.to_thread(append_into, testbed, "dave", "&j,dg0TDhMPww6w-", message)

    result = await run_route(
        config, "a2h", after_accept=deliver_copy, use_special_use=special_use
    )
    assert result.extra["placement"] == placement, result.as_json(transcript=True)
    assert result.extra["folder"] == dave_meiwaku
    expected = ("spam", "spam_folder") if placement == "spam" else ("delivery", "lost")
    assert (result.cls, result.reason) == expected


async def test_lost(testbed: MailTestBed, tmp_path: Path, make_config: MakeConfig) -> None:
    hole = other_account(testbed, tmp_path, "hole", BLACKHOLE_ADDRESS, "alice")
    config = load_config(make_config(route("a2h", "bob", "hole", deadline="2s"), hole))
    start = time.monotonic()
    result = await run_probe("roundtrip", "a2h", config)
    assert (result.cls, result.reason, result.phase) == ("delivery", "lost", "deliver")
    assert result.extra["placement"] == "missing" and result.extra["delivery_seconds"] is None
    assert 2.0 <= time.monotonic() - start < 6
    # The record waits for a late arrival; it is a lost canary, reported once only.
    records = CanaryStore(config.daemon.state_dir).all()
    assert [r.status for r in records] == ["lost"]
    report = await sweep(config)
    assert report.lost == [] and report.late == []


async def test_delayed(make_config: MakeConfig) -> None:
    config = load_config(make_config(route("b2a", "bob", "alice", slo="1ms")))
    result = await run_probe("roundtrip", "b2a", config)
    assert (result.cls, result.reason, result.phase) == ("delivery", "delayed", "deliver")
    assert result.extra["placement"] == "inbox"
    assert "slo" in result.detail


async def test_recipient_rejected(
    testbed: MailTestBed, tmp_path: Path, make_config: MakeConfig
) -> None:
    nobody = other_account(testbed, tmp_path, "nobody", "nobody@example.test", "bob")
    config = load_config(make_config(route("a2n", "alice", "nobody"), nobody))
    result = await run_probe("roundtrip", "a2n", config)
    assert (result.cls, result.reason, result.phase) == ("rejected", "recipient_rejected", "send")
    assert "5.1.1" in result.detail
    assert "placement" not in result.extra
    assert CanaryStore(config.daemon.state_dir).all() == []


async def test_restart_between_send_and_arrival(
    testbed: MailTestBed, make_config: MakeConfig
) -> None:
    """The probe dies right after the accept; a sweep (as after a restart) matches the
    canary with its record, reports it late once, and deletes it."""
    config = load_config(make_config(route("c2d", "carol", "dave")))
    await crash_after_accept(config, "c2d")
    store = CanaryStore(config.daemon.state_dir)
    [record] = store.all()
    assert record.status == "in_flight"
    await asyncio.to_thread(wait_for_canary, testbed, "dave")
    report = await sweep(config)
    assert [c.token for c in report.late] == [record.token], report
    assert report.late[0].placement == "inbox" and report.removed == 1
    assert store.all() == []
    again = await sweep(config)
    assert again.late == [] and again.removed == 0


async def test_next_probe_matches_an_earlier_lost_canary(
    testbed: MailTestBed, make_config: MakeConfig
) -> None:
    """A canary given up as lost that shows up later is matched by the next round trip."""
    config = load_config(make_config(route("d2c", "dave", "carol")))
    await crash_after_accept(config, "d2c")
    [old] = CanaryStore(config.daemon.state_dir).all()
    result = await run_probe("roundtrip", "d2c", config)
    assert result.ok, result.as_json(transcript=True)
    assert [c["token"] for c in result.extra["late_canaries"]] == [old.token]
    assert CanaryStore(config.daemon.state_dir).all() == []


OTHER = (b"From: someone@example.test\r\nTo: bob@example.test\r\n"
         b"Subject: mailcanary automated delivery test (a2b)\r\n"
         b"X-Mailcanary-Installation: not-this-one\r\n"
         b"X-Mailcanary-Token: 0123456789abcdef\r\n\r\nnot a canary of ours\r\n")


def count(testbed: MailTestBed, user: str, folder: str) -> int:
    out = testbed.doveadm("search", "-u", user, "mailbox", folder, "ALL").stdout
    return len(out.splitlines())


async def test_other_mail_is_never_touched(
    testbed: MailTestBed, make_config: MakeConfig
) -> None:
    """Look-alikes (same subject, another installation's headers) and a message someone
    marked \\Deleted, in INBOX and Junk, survive a round trip, a spam one and a sweep."""
    for folder, flags in (("INBOX", None), ("INBOX", r"(\Deleted)"), ("Junk", None),
                          ("Junk", r"(\Deleted)")):
        await asyncio.to_thread(_append_flags, testbed, "bob", folder, flags, OTHER)
    before = {f: count(testbed, "bob", f) for f in ("INBOX", "Junk")}
    config = load_config(make_config(route("a2b", "alice", "bob")))
    assert (await run_probe("roundtrip", "a2b", config)).ok
    spam = await run_route(config, "a2b", extra_headers={SPAM_HEADER: "yes"})
    assert spam.reason == "spam_folder"
    report = await sweep(config, older_than=0.0)
    assert report.removed == 0 and report.errors == {}
    assert {f: count(testbed, "bob", f) for f in ("INBOX", "Junk")} == before
    for folder in ("INBOX", "Junk"):
        testbed.doveadm("expunge", "-u", "bob", "mailbox", folder, "HEADER",
                        "X-Mailcanary-Installation", "not-this-one")


def _append_flags(
    testbed: MailTestBed, user: str, folder: str, flags: str | None, message: bytes
) -> None:
    imap = imaplib.IMAP4(testbed.host, testbed.imap_port)
    try:
        imap.login(user, testbed.user(user).password)
        typ, data = imap.append(folder, flags, None, message)
        assert typ == "OK", data
    finally:
        imap.logout()


async def test_check_cli_end_to_end(make_config: MakeConfig) -> None:
    path = make_config(route("b2c", "bob", "carol"))
    code, results, output = await check_json(path, "--route", "b2c")
    assert code == 0, output
    [row] = results
    assert (row["probe"], row["target"], row["class"]) == ("roundtrip", "b2c", "ok")
    assert row["placement"] == "inbox" and row["delivery_seconds"] > 0
    assert set(row["auth_results"]) == {"spf", "dkim", "dmarc"}
    assert "Canary-Secret" not in output


async def test_daemon_sweep_counts_and_removes_orphans(
    testbed: MailTestBed, make_config: MakeConfig
) -> None:
    """The daemon's sweep (start-up and periodic) deletes an orphaned canary and gives it
    its verdict once: a delivered canary like any other (issue 10), not a "late" one."""
    path = make_config(route("b2c", "bob", "carol"))
    config = load_config(path)
    await crash_after_accept(config, "b2c")
    await asyncio.to_thread(wait_for_canary, testbed, "carol")
    daemon = Daemon(path, config)
    daemon.metrics.ensure("roundtrip", "b2c", PROBES["roundtrip"].reasons, delivery=True)
    await daemon.sweep_once()
    assert daemon.metrics.swept == 1
    assert daemon.metrics.late == {}
    assert daemon.metrics.routes["b2c"].placements.get("inbox") == 1
    assert daemon.metrics.sweep_success_time > 0
    await daemon.sweep_once()
    assert daemon.metrics.swept == 1 and daemon.metrics.late == {}
    assert daemon.metrics.routes["b2c"].placements.get("inbox") == 1
