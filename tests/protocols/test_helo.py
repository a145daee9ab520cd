"""The EHLO name: `[daemon] helo_name` when set, else the FQDN looked up once per runtime, in
a thread (a slow resolver must neither stall every SMTP probe nor block the event loop), and
each daemon or `check` run has its own."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from mailcanary.config import Config, load_config
from mailcanary.probes.runner import run_probe
from mailcanary.protocols.runtime import Runtime
from tests.helpers.support import account, endpoint, password_file, write_config


@asynccontextmanager
async def ehlo_server(said: list[str]) -> AsyncIterator[int]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 fake ESMTP\r\n")
        line = await reader.readline()
        said.append(line.decode().strip())
        writer.write(b"421 4.3.2 closing\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    async with server:
        yield server.sockets[0].getsockname()[1]


def smtp_config(tmp_path: Path, port: int, helo: str | None) -> Config:
    path = write_config(tmp_path, account(
        "acc", password_file=password_file(tmp_path), smtp=endpoint("127.0.0.1", port),
    ))
    if helo:
        path.write_text(path.read_text().replace("[daemon]\n", f'[daemon]\nhelo_name = "{helo}"\n'))
    return load_config(path)


async def ehlo_names(tmp_path: Path, runs: int, helo: str | None) -> list[str]:
    said: list[str] = []
    async with ehlo_server(said) as port:
        config = smtp_config(tmp_path, port, helo)
        runtime = Runtime.for_config(config)
        for _ in range(runs):
            await run_probe("smtp", "acc", config, runtime=runtime)
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


async def test_slow_fqdn_does_not_block_the_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A resolver that takes 0.6 s to answer getfqdn(): the probes wait for it, the loop
    does not (a ticker on the loop never misses more than a fraction of that)."""

    def slow_fqdn(name: str = "") -> str:
        time.sleep(0.6)
        return "slow-host.example.test"

    monkeypatch.setattr(socket, "getfqdn", slow_fqdn)
    worst = 0.0
    stop = asyncio.Event()

    async def ticker() -> None:
        nonlocal worst
        while not stop.is_set():
            before = time.monotonic()
            await asyncio.sleep(0.01)
            worst = max(worst, time.monotonic() - before)

    tick = asyncio.create_task(ticker())
    said = await ehlo_names(tmp_path, 3, None)
    stop.set()
    await tick
    assert said == ["EHLO slow-host.example.test"] * 3
    assert worst < 0.3, worst


async def test_helo_name_from_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket, "getfqdn", lambda name="": pytest.fail("looked up"))
    said = await ehlo_names(tmp_path, 2, "canary.example.net")
    assert said == ["EHLO canary.example.net"] * 2


async def test_two_runtimes_in_one_process_keep_their_own_name(tmp_path: Path) -> None:
    """Two daemons (or `check` runs) in one process, probing at the same time with
    different `[daemon] helo_name`s: each server hears its own daemon's name."""
    said_a: list[str] = []
    said_b: list[str] = []
    async with ehlo_server(said_a) as port_a, ehlo_server(said_b) as port_b:
        (tmp_path / "a").mkdir()
        (tmp_path / "b").mkdir()
        config_a = smtp_config(tmp_path / "a", port_a, "daemon-a.example.net")
        config_b = smtp_config(tmp_path / "b", port_b, "daemon-b.example.net")
        runtime_a, runtime_b = Runtime.for_config(config_a), Runtime.for_config(config_b)
        await asyncio.gather(*(
            run_probe("smtp", "acc", config, runtime=runtime)
            for config, runtime in [(config_a, runtime_a), (config_b, runtime_b)] * 3
        ))
    assert said_a == ["EHLO daemon-a.example.net"] * 3
    assert said_b == ["EHLO daemon-b.example.net"] * 3
