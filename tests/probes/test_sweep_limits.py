"""The periodic sweep logs in through the connection limits and never to an account in
auth backoff."""

from __future__ import annotations

import asyncio
from pathlib import Path

from mailcanary.config import load_config
from mailcanary.probes.roundtrip.sweep import sweep
from mailcanary.protocols.limits import ConnectionLimits
from mailcanary.protocols.runtime import Runtime
from tests.helpers.support import account, endpoint, password_file, write_config


async def test_sweep_goes_through_limits_and_backoff(tmp_path: Path) -> None:
    now = 0
    most = 0
    connections = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal now, most, connections
        now += 1
        connections += 1
        most = max(most, now)
        await asyncio.sleep(0.1)  # a slow server...
        now -= 1
        writer.close()  # ...that hangs up: the sweep of that account fails, quickly

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    names = ["r1", "r2", "r3", "locked"]
    pw = password_file(tmp_path)
    accounts = [
        account(n, password_file=pw, imap=endpoint("127.0.0.1", port), timeout="5s")
        for n in names
    ]
    accounts.append(account("sender", password_file=pw, smtp=endpoint("127.0.0.1", 9)))
    routes = "".join(f'\n[[routes]]\nname = "to-{n}"\nfrom = "sender"\nto = "{n}"\n'
                     for n in names)
    config = load_config(write_config(tmp_path, *accounts, extra=routes))
    async with server:
        unlimited = await sweep(config)
        assert most == 4 and connections == 4  # before: everyone at once
        most = connections = 0
        limits = ConnectionLimits(total=64, per_server=1)
        report = await sweep(config, runtime=Runtime(limits=limits),
                             skip=lambda name: name == "locked")
    assert most == 1 and connections == 3, (most, connections)
    assert "backoff" in report.errors["locked"]
    assert set(report.errors) == set(unlimited.errors) == set(names)
    assert limits.global_slots._value == 64
