"""The EHLO name: `[daemon] helo_name` when set, else the FQDN looked up once per process
(a slow resolver must not stall every SMTP probe)."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from mailcanary.config import load_config
from mailcanary.probes.runner import run_probe
from mailcanary.protocols import smtp
from tests.helpers.support import account, endpoint, password_file, write_config


async def ehlo_names(tmp_path: Path, runs: int, helo: str | None) -> list[str]:
    said: list[str] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 fake ESMTP\r\n")
        line = await reader.readline()
        said.append(line.decode().strip())
        writer.write(b"421 4.3.2 closing\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    path = write_config(tmp_path, account(
        "acc", password_file=password_file(tmp_path), smtp=endpoint("127.0.0.1", port),
    ))
    if helo:
        path.write_text(path.read_text().replace("[daemon]\n", f'[daemon]\nhelo_name = "{helo}"\n'))
    config = load_config(path)
    smtp.set_helo_name(config.daemon.helo_name)
    async with server:
        for _ in range(runs):
            await run_probe("smtp", "acc", config)
    return said


async def test_fqdn_looked_up_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = 0

    def slow_fqdn(name: str = "") -> str:
        nonlocal calls
        calls += 1
        return "probe-host.example.test"

    monkeypatch.setattr(socket, "getfqdn", slow_fqdn)
    said = await ehlo_names(tmp_path, 5, None)
    assert said == ["EHLO probe-host.example.test"] * 5
    assert calls == 1


async def test_helo_name_from_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket, "getfqdn", lambda name="": pytest.fail("looked up"))
    said = await ehlo_names(tmp_path, 2, "canary.example.net")
    assert said == ["EHLO canary.example.net"] * 2
    smtp.set_helo_name(None)
