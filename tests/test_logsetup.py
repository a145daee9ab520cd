"""The daemon's stderr is JSON Lines only: structlog events and stdlib records alike."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from mailcanary.logsetup import configure_logging


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers = handlers
    root.setLevel(level)
    structlog.reset_defaults()


def test_stdlib_records_are_json_lines(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("info", json=True)
    structlog.get_logger("mailcanary.probe").info("probe", probe="imap", target="alice")
    logging.getLogger("apscheduler.executors.default").warning(
        "Run time of job %r was missed by %s", "imap:alice", "0:00:01"
    )
    logging.getLogger("aioimaplib.aioimaplib").debug("C: LOGIN alice secret")  # below floor
    try:
        raise KeyError("boom")
    except KeyError:
        logging.getLogger("asyncio").exception("Task exception was never retrieved")
    lines = capsys.readouterr().err.strip().splitlines()
    events = [json.loads(line) for line in lines]  # every line is one JSON object
    assert [e["event"] for e in events] == [
        "probe",
        "Run time of job 'imap:alice' was missed by 0:00:01",
        "Task exception was never retrieved",
    ]
    assert events[1]["level"] == "warning"
    assert events[1]["logger"] == "apscheduler.executors.default"
    assert "KeyError" in events[2]["exception"]
    assert all("timestamp" in e for e in events)
