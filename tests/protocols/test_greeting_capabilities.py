"""A greeting that lists its capabilities (RFC 3501 7.1, Dovecot does) spares the
CAPABILITY round trip; after STARTTLS they are always asked again."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailcanary.config import load_config
from mailcanary.probes.runner import run_probe
from mailcanary.testbed import MailTestBed
from tests.helpers.support import account, endpoint, password_file, write_config

pytestmark = pytest.mark.testbed


@pytest.mark.parametrize(("security", "capability_commands"), [("tls", 0), ("starttls", 1)])
async def test_capability_command_only_when_needed(
    testbed: MailTestBed, tmp_path: Path, security: str, capability_commands: int
) -> None:
    port = testbed.imaps_port if security == "tls" else testbed.imap_port
    pw = password_file(tmp_path, testbed.user("alice").password)
    config = load_config(write_config(tmp_path, account(
        "alice", username="alice", password_file=pw, ca_file=testbed.ca_pem,
        imap=endpoint(testbed.host, port, security),
    )))
    result = await run_probe("imap", "alice", config)
    assert result.ok, result.as_json(transcript=True)
    sent = [line for line in result.transcript if " C: " in line]
    assert sum(line.endswith(" CAPABILITY") for line in sent) == capability_commands, sent
