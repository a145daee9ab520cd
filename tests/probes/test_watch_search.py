"""The watcher searches only messages newer than the UIDNEXT it noted before sending: a
message carrying the token with an older UID is never taken for the canary, and the
server scans only the new messages."""

from __future__ import annotations

import imaplib
import secrets
from pathlib import Path

import pytest

from mailcanary.config import load_config
from mailcanary.probes.mailbox.watcher import Watcher
from mailcanary.probes.roundtrip.canary import TOKEN_HEADER
from mailcanary.protocols.imap import imap_client_for
from mailcanary.protocols.signin import imap_login
from mailcanary.result import ProbeContext
from mailcanary.testbed import MailTestBed
from tests.helpers.support import account, endpoint, password_file, write_config

pytestmark = pytest.mark.testbed


def append(testbed: MailTestBed, user: str, token: str) -> None:
    message = (
        f"From: x@example.test\r\nTo: {user}@example.test\r\nSubject: t\r\n"
        f"{TOKEN_HEADER}: {token}\r\n\r\nbody\r\n"
    ).encode()
    imap = imaplib.IMAP4(testbed.host, testbed.imap_port)
    try:
        imap.login(user, testbed.user(user).password)
        typ, data = imap.append("INBOX", None, None, message)
        assert typ == "OK", data
    finally:
        imap.logout()


async def test_search_starts_at_uidnext_noted_before_sending(
    testbed: MailTestBed, tmp_path: Path
) -> None:
    pw = password_file(tmp_path, testbed.user("carol").password)
    config = load_config(write_config(tmp_path, account(
        "carol", password_file=pw, ca_file=testbed.ca_pem,
        imap=endpoint(testbed.host, testbed.imaps_port, "tls"),
    )))
    token = secrets.token_hex(8)
    append(testbed, "carol", token)  # an older message with the same token
    ctx = ProbeContext(probe="roundtrip", target="t")
    client = imap_client_for(ctx, config.account("carol"))
    try:
        await client.connect()
        await imap_login(client, config.account("carol"))
        watcher = Watcher(ctx, client, token_header=TOKEN_HEADER)
        await watcher.prepare()
        first = watcher.inbox_next
        assert first > 1
        assert await watcher.check(token) is None  # the old one is not the canary
        append(testbed, "carol", token)  # "the canary" arrives
        sighting = None
        for _ in range(3):  # Dovecot may report the new message after the first search
            sighting = sighting or await watcher.check(token)
        assert sighting is not None and sighting.uid >= first, "\n".join(ctx.transcript.lines[-12:])
        assert any(f"UID SEARCH UID {first}:* HEADER" in line
                   for line in ctx.transcript.lines), ctx.transcript.lines[-6:]
        await watcher.leave_idle()
        old = [u for u in await client.uid_search("HEADER", TOKEN_HEADER, token)]
        assert len(old) == 2
        assert await client.uid_delete(old)
        await client.logout()
    finally:
        client.close()
