"""Hostile servers: whatever a server sends, the probe ends as a failure within its
timeout, the process stays small, and no secret leaks (also with --transcript and debug
logging). The `check` child measures its own peak memory (tests/helpers/measure.py)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from mailcanary.config import load_config
from mailcanary.credentials import Secret
from mailcanary.diagnosis import Where
from mailcanary.protocols.imap import ImapClient
from mailcanary.result import ProbeContext
from tests.helpers.faults import Script, fake_server
from tests.helpers.measure import check_measured
from tests.helpers.support import PASSWORD, account, endpoint, password_file, write_config

MEMORY_MB = 100  # the bound for the whole process
BIG = 20 << 20  # a 20 MB line

# (protocol, greeting, flood); built per test so 20 MB strings do not pile up at collection
HOSTILE = {
    "imap-20MB-greeting": ("imap", "* OK ", None),  # + BIG bytes
    "smtp-20MB-greeting": ("smtp", "220 ", None),
    # long lines: a read holds fewer of them than Python's recursion limit, so the stream
    # cannot end by accident in a parser that recurses once per line
    "imap-endless-untagged": ("imap", None, "* OK still talking " + "t" * 1000),
    "imap-endless-fetch": ("imap", None, "* 1 FETCH (FLAGS (\\Seen) X-NOTE " + "f" * 1000 + ")"),
    "smtp-endless-220-": ("smtp", None, "220-still greeting"),
    "pop3-20MB-greeting": ("pop3", "+OK ", None),
    "pop3-endless-capa": ("pop3", None, "X-STILL-LISTING " + "c" * 200),
}


@pytest.mark.parametrize("case", list(HOSTILE))
async def test_hostile_server_is_a_bounded_failure(tmp_path: Path, case: str) -> None:
    proto, greeting, flood = HOSTILE[case]
    script = Script(proto, greeting=greeting and greeting + "x" * BIG, flood=flood)
    phase = "greeting"
    async with fake_server(script) as port:
        ep = endpoint("127.0.0.1", port)
        cfg = write_config(tmp_path, account(
            "acc", password_file=password_file(tmp_path), timeout="10s",
            imap=ep if proto == "imap" else None, smtp=ep if proto == "smtp" else None,
            pop3=ep if proto == "pop3" else None))
        start = time.monotonic()
        code, rows, output, peak_mb = await check_measured(cfg, "--transcript")
    assert code == 1, output[-2000:]
    [row] = rows
    assert not row["ok"] and row["phase"] == phase, row
    assert (row["class"], row["reason"]) == ("protocol", "protocol_error"), row
    assert time.monotonic() - start < 10 + 5
    assert peak_mb < MEMORY_MB, f"peak {peak_mb:.0f} MB"
    assert len(output) < 4_000_000  # the transcript and the detail are bounded too


@pytest.mark.parametrize("log_level", ["info", "debug"])
async def test_mismatched_tag_on_login_leaks_nothing(tmp_path: Path, log_level: str) -> None:
    script = Script("imap", capabilities="IMAP4rev1", tags="wrong_on_login")
    async with fake_server(script) as port:
        cfg = write_config(tmp_path, account(
            "acc", imap=endpoint("127.0.0.1", port), password_file=password_file(tmp_path)))
        _, rows, output, _ = await check_measured(cfg, "--transcript", log_level=log_level)
    # LOGIN carried the password (so a leak would show), and its reply had a stray tag
    assert any(" LOGIN " in line and PASSWORD in line for line in script.received)
    [row] = rows
    assert (row["class"], row["reason"], row["phase"]) == ("protocol", "protocol_error", "auth")
    assert "ZZZ999" in row["detail"]
    assert "acc@example.test" not in row["detail"]  # no command arguments in the text
    assert PASSWORD not in output


@pytest.mark.parametrize("log_level", ["info", "debug"])
async def test_lowercase_tags_are_the_same_tags(tmp_path: Path, log_level: str) -> None:
    script = Script("imap", capabilities="IMAP4rev1", tags="lower")
    async with fake_server(script) as port:
        cfg = write_config(tmp_path, account(
            "acc", imap=endpoint("127.0.0.1", port), password_file=password_file(tmp_path)))
        code, rows, output, _ = await check_measured(cfg, "--transcript", log_level=log_level)
    [row] = rows
    assert row["ok"], row
    assert code == 0
    assert any(" ok " in line.lower() for line in row["transcript"])
    assert PASSWORD not in output


async def test_capabilities_are_read_again_after_login(tmp_path: Path) -> None:
    """Exchange-like: LOGIN's OK carries no [CAPABILITY], so ask for the list again."""
    script = Script("imap", capabilities="IMAP4rev1 IDLE",
                    caps_after_login="IMAP4rev1 IDLE UIDPLUS SPECIAL-USE MOVE")
    async with fake_server(script) as port:
        cfg = write_config(tmp_path, account(
            "acc", imap=endpoint("127.0.0.1", port), password_file=password_file(tmp_path)))
        config = load_config(cfg)
        acc = config.account("acc")
        assert acc.imap is not None
        ctx = ProbeContext("imap", "acc", where=Where("127.0.0.1", port))
        client = ImapClient(ctx, acc.imap, None)
        try:
            await client.connect()
            assert "UIDPLUS" not in client.capabilities
            await client.login("acc", Secret(PASSWORD))
            assert {"UIDPLUS", "SPECIAL-USE", "MOVE"} <= client.capabilities
        finally:
            client.close()
    assert [line.split(" ", 1)[1] for line in script.received].count("CAPABILITY") == 2


async def test_tagged_line_ending_in_literal_marker_does_not_desync(tmp_path: Path) -> None:
    """`A1 OK done {40}` is a complete tagged reply, not the start of a 40-byte literal
    (which would swallow the next command's reply and hang the probe)."""
    script = Script("imap", login_reply="OK logged in {40}")
    async with fake_server(script) as port:
        cfg = write_config(tmp_path, account(
            "acc", imap=endpoint("127.0.0.1", port), password_file=password_file(tmp_path)))
        code, rows, output, _ = await check_measured(cfg)
    assert code == 0 and rows[0]["ok"], output


async def test_only_the_leading_untagged_marker_is_removed(tmp_path: Path) -> None:
    """aioimaplib removes "* " anywhere in a line: a folder named "Kunden * Archiv" would
    lose its star and be looked up under a name that does not exist."""
    script = Script("imap", folders=("INBOX", "Kunden * Archiv"))
    async with fake_server(script) as port:
        cfg = write_config(tmp_path, account(
            "acc", imap=endpoint("127.0.0.1", port), password_file=password_file(tmp_path)))
        acc = load_config(cfg).account("acc")
        assert acc.imap is not None
        client = ImapClient(ProbeContext("imap", "acc"), acc.imap, None)
        try:
            await client.connect()
            await client.login("acc", Secret(PASSWORD))
            names = [f.name for f in await client.list_folders()]
        finally:
            client.close()
    assert names == ["INBOX", "Kunden * Archiv"]
