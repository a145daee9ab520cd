"""Each daemon and each `check` run has its own runtime (protocols/runtime.py): two daemons
in one process keep their own EHLO name, resolver cache, token sources and slots, a reload
of one changes nothing of the other; and `check` takes connection slots as the daemon does.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mailcanary.config import load_config
from mailcanary.daemon.alerts.sinks import EmailSink, SinkError
from mailcanary.daemon.alerts.state import AlertEvent
from mailcanary.daemon.app import Daemon
from mailcanary.protocols.runtime import Runtime
from tests.helpers.support import account, check_json, endpoint, password_file, write_config


@asynccontextmanager
async def ehlo_server(said: list[str]) -> AsyncIterator[int]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 fake ESMTP\r\n")
        said.append((await reader.readline()).decode().strip())
        writer.write(b"421 4.3.2 closing\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    async with server:
        yield server.sockets[0].getsockname()[1]


def smtp_config(tmp: Path, port: int, helo: str) -> Path:
    tmp.mkdir()
    path = write_config(tmp, account("acc", password_file=password_file(tmp),
                                     smtp=endpoint("127.0.0.1", port)))
    path.write_text(path.read_text().replace("[daemon]\n", f'[daemon]\nhelo_name = "{helo}"\n'))
    return path


async def test_two_daemons_in_one_process_share_no_state(tmp_path: Path) -> None:
    said_a: list[str] = []
    said_b: list[str] = []
    async with ehlo_server(said_a) as port_a, ehlo_server(said_b) as port_b:
        path_a = smtp_config(tmp_path / "a", port_a, "daemon-a.example.net")
        path_b = smtp_config(tmp_path / "b", port_b, "daemon-b.example.net")
        a, b = Daemon(path_a, load_config(path_a)), Daemon(path_b, load_config(path_b))
        await asyncio.gather(*(d.scheduler.run_now("smtp", "acc") for d in (a, b, a, b)))
        path_a.write_text(path_a.read_text().replace("daemon-a.", "daemon-a2."))
        assert await a.reload()
        await asyncio.gather(*(d.scheduler.run_now("smtp", "acc") for d in (a, b)))
        await a.runtime.close()
        await b.runtime.close()
    assert said_a == ["EHLO daemon-a.example.net"] * 2 + ["EHLO daemon-a2.example.net"]
    assert said_b == ["EHLO daemon-b.example.net"] * 3
    assert a.runtime is not b.runtime and a.runtime.limits is not b.runtime.limits
    assert a.runtime.resolver.lookups == b.runtime.resolver.lookups == 1  # each its own


def test_runtimes_share_no_token_source_or_canary(tmp_path: Path) -> None:
    path = write_config(tmp_path, account("acc", smtp=endpoint("127.0.0.1", 25)).replace(
        "[[accounts]]\n", "[[accounts]]\noauth2 = { provider = \"google\", client_id = \"c\", "
        "refresh_token_env = \"RT\" }\n"))
    acc = load_config(path).account("acc")
    one, two = Runtime(), Runtime()
    assert one.token_source(acc) is one.token_source(acc)
    assert one.token_source(acc) is not two.token_source(acc)
    one.canaries.add("token-1")
    assert not two.canaries


@dataclass
class Seen:
    open_now: int = 0
    most: int = 0
    total: int = 0


@asynccontextmanager
async def counting_server() -> AsyncIterator[tuple[int, Seen]]:
    """Silent for a moment, then hangs up itself (so its count of open ones is exact)."""
    seen = Seen()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.total += 1
        seen.open_now += 1
        seen.most = max(seen.most, seen.open_now)
        try:
            await asyncio.sleep(0.3)
        finally:
            seen.open_now -= 1
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    async with server:
        yield server.sockets[0].getsockname()[1], seen


@pytest.mark.parametrize(("daemon_keys", "endpoint_cap", "most"), [
    ("max_connections_per_server = 2\n", None, 2),
    ("max_concurrent_probes = 3\n", None, 3),
    ("", 1, 1),
])
async def test_check_honours_the_connection_limits(
    tmp_path: Path, daemon_keys: str, endpoint_cap: int | None, most: int
) -> None:
    """Twelve accounts on one server: `mailcanary check` opens no more connections to it at
    once than the daemon would (`[daemon]` limits, an endpoint's `max_connections`)."""
    async with counting_server() as (port, seen):
        extra: dict[str, Any] = {"max_connections": endpoint_cap} if endpoint_cap else {}
        pw = password_file(tmp_path)
        path = write_config(tmp_path, *(
            account(f"acc{i}", password_file=pw, imap=endpoint("127.0.0.1", port, **extra),
                    timeout="15s")  # 12 one after the other take 3.6 s
            for i in range(12)))
        path.write_text(path.read_text().replace("[daemon]\n", f"[daemon]\n{daemon_keys}"))
        code, rows, output = await check_json(path)
    assert code == 1 and len(rows) == 12, output
    assert seen.total >= 12
    assert seen.most == most, (seen, output)


async def test_alert_mail_says_the_configured_helo_name(tmp_path: Path) -> None:
    """The e-mail sink's SMTP session uses `[daemon] helo_name` like the probes."""
    said: list[str] = []
    async with ehlo_server(said) as port:
        path = smtp_config(tmp_path / "a", port, "alerts.example.net")
        path.write_text(path.read_text() + '\n[[alerts]]\nkind = "email"\naccount = "acc"\n'
                        'to = ["ops@example.test"]\n')
        config = load_config(path)
        sink = EmailSink(config.alerts[0], lambda: config)
        event = AlertEvent("firing", "imap", "acc", "auth", "invalid_credentials", "auth", "",
                           "", 0.0, 2, 0.0, 0.0)
        with pytest.raises(SinkError):
            await sink.send(event)  # the fake server closes after EHLO
    assert said == ["EHLO alerts.example.net"]
