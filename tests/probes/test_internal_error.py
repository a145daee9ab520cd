"""A bug in mailcanary is `internal/internal_error`, never blamed on the server.

The exception is injected into the real IMAP prober (its SELECT step raises) inside the real
`mailcanary check --json` process; the server is a fake that answers everything correctly.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest
from aioimaplib import aioimaplib as imap_impl

from mailcanary.diagnosis import Where, classify
from tests.helpers.faults import Script, fake_server
from tests.helpers.support import PASSWORD, SRC, account, endpoint, password_file, write_config

# Runs the CLI with ImapClient.select replaced by a function that raises EXC (a bug of ours).
INJECT = """
import sys
from mailcanary.protocols.imap import ImapClient
async def broken(self, *args, **kwargs):
    secret = {password!r}
    raise {exc}
ImapClient.select = broken
from mailcanary.cli import main
raise SystemExit(main(sys.argv[1:]))
"""


async def check_with_bug(cfg: Path, exc: str) -> tuple[int, list[dict[str, object]], str]:
    env = dict(os.environ, PYTHONPATH=SRC)
    code = INJECT.format(exc=exc, password=PASSWORD)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, "--log-level", "debug", "check", "--config", str(cfg),
        "--json", "--transcript",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    rows = [json.loads(line) for line in out.decode().splitlines() if line.strip()]
    return proc.returncode or 0, rows, err.decode()


@pytest.mark.parametrize(
    "exc", ["KeyError('folder')", "AssertionError('state')", "TypeError('bad arg')",
            "AttributeError('x')", "ValueError('oops ' + secret)"],
)
async def test_injected_bug_is_internal_error(tmp_path: Path, exc: str) -> None:
    async with fake_server(Script("imap")) as port:
        cfg = write_config(tmp_path, account(
            "acc", imap=endpoint("127.0.0.1", port), password_file=password_file(tmp_path)))
        code, rows, err = await check_with_bug(cfg, exc)
    assert code == 1, err
    [row] = rows
    assert (row["class"], row["reason"], row["phase"]) == ("internal", "internal_error", "select")
    assert "bug in mailcanary" in str(row["hint"]) and "speaks IMAP" not in str(row["hint"])
    assert exc.split("(", maxsplit=1)[0] in str(row["detail"])
    records = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    [trace] = [r for r in records if r.get("event") == "internal_error"]
    assert trace["level"] == "error"
    assert "Traceback" in trace["traceback"] and "broken" in trace["traceback"]
    assert PASSWORD not in err and PASSWORD not in json.dumps(rows)


def test_reply_library_errors_stay_protocol_errors() -> None:
    where = Where("h", 993, "imap")
    for exc in (imap_impl.Abort("unexpected tagged response"), imap_impl.Error("bad"),
                UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte")):
        assert classify(exc, "auth", where).reason == "protocol_error", exc
    for bug in (KeyError("k"), AssertionError(), TypeError("t"), IndexError("i"),
                RuntimeError("r")):
        fail = classify(bug, "auth", where)
        assert (fail.cls, fail.reason) == ("internal", "internal_error"), bug
