"""The settings doctor under load: when a dead or wrong port fails hundreds of targets of
one server at once, it searches once per endpoint (the others wait for and reuse that
answer), its candidate connections take connection slots like any probe's, and `check`
runs share nothing with each other.

The candidate servers are counting asyncio servers on the imap standard ports (993, 143)
of a loopback address of their own; each holds a connection a moment and then hangs up
first (the searches' budgets are long enough that no client gives up before), so what it
counts as open is exact."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from mailcanary.cli import run_check
from mailcanary.config import Config, load_config
from mailcanary.probes.runner import run_probe
from mailcanary.protocols.limits import ConnectionLimits
from mailcanary.protocols.runtime import Runtime
from mailcanary.result import ProbeResult
from tests.helpers.support import account, endpoint, password_file, write_config

pytestmark = pytest.mark.xdist_group("doctor-limits")

HOST = "127.0.0.61"  # the candidates are standard ports: a loopback address of our own
HOLD = 0.2


@dataclass
class Counting:
    """Connections seen, and the most open at once (across all its ports)."""

    total: dict[int, int] = field(default_factory=dict)
    open_now: int = 0
    most: int = 0
    most_per_port: dict[int, int] = field(default_factory=dict)
    open_per_port: dict[int, int] = field(default_factory=dict)


async def until_closed(reader: asyncio.StreamReader) -> None:
    while await reader.read(4096):
        pass


@asynccontextmanager
async def counting_servers(ports: tuple[int, ...]) -> AsyncIterator[Counting]:
    seen = Counting()

    def handler(port: int):  # type: ignore[no-untyped-def]
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            seen.total[port] = seen.total.get(port, 0) + 1
            seen.open_now += 1
            seen.open_per_port[port] = seen.open_per_port.get(port, 0) + 1
            seen.most = max(seen.most, seen.open_now)
            seen.most_per_port[port] = max(seen.most_per_port.get(port, 0),
                                           seen.open_per_port[port])
            try:  # silent, as a black-holed TLS port; until HOLD or the client's close
                await asyncio.wait_for(until_closed(reader), HOLD)
            except TimeoutError:
                pass
            finally:
                seen.open_now -= 1  # before our close: the client can only react after it
                seen.open_per_port[port] -= 1
                writer.close()
        return handle

    async with AsyncExitStack() as stack:
        for port in ports:
            server = await asyncio.start_server(handler(port), HOST, port)
            await stack.enter_async_context(server)
        yield seen


def dead_port(offset: int) -> int:
    """Ports of HOST that nothing listens on (HOST has only the counting servers)."""
    return 10993 + offset


def fleet(tmp_path: Path, ports: list[int], *, daemon: str = "", timeout: str = "5s") -> Config:
    pw = password_file(tmp_path)
    accounts = [account(f"acc{i}", password_file=pw, timeout=timeout,
                        imap=endpoint(HOST, port, "tls"))
                for i, port in enumerate(ports)]
    path = write_config(tmp_path, *accounts)
    path.write_text(path.read_text().replace("[daemon]\n", f"[daemon]\n{daemon}"))
    return load_config(path)


async def run_all(config: Config, runtime: Runtime) -> list[ProbeResult]:
    return list(await asyncio.gather(*(
        run_probe("imap", acc.name, config, runtime=runtime) for acc in config.accounts)))


async def test_one_search_for_many_targets_of_one_dead_endpoint(tmp_path: Path) -> None:
    """200 targets on the same dead port fail at once: one candidate search (one connection
    each to 993 and 143), not 200; every target still gets the doctor's answer."""
    config = fleet(tmp_path, [dead_port(0)] * 200)
    runtime = Runtime.for_config(config)
    async with counting_servers((993, 143)) as seen:
        results = await run_all(config, runtime)
    assert {(r.reason, r.phase) for r in results} == {("connection_refused", "connect")}
    assert seen.total == {993: 1, 143: 1}, seen
    assert runtime.doctor.started == 1
    assert seen.most_per_port[993] <= config.daemon.max_connections_per_server


@pytest.mark.parametrize(("total", "per_server", "most"), [(64, 1, "per_port"), (1, 4, "all")])
async def test_candidate_connections_take_slots(
    tmp_path: Path, total: int, per_server: int, most: str
) -> None:
    """Six dead endpoints of one host: six searches, whose candidates all try 993 and 143.
    Their connections wait for slots like a probe's: at most `per_server` at once on each
    port, at most `total` at once in all."""
    config = fleet(tmp_path, [dead_port(i) for i in range(6)])
    runtime = Runtime(limits=ConnectionLimits(total, per_server))
    async with counting_servers((993, 143)) as seen:
        await run_all(config, runtime)
    assert runtime.doctor.started == 6
    assert seen.total[993] >= 2, seen  # more than one search reached the server
    if most == "per_port":
        assert max(seen.most_per_port.values()) == 1, seen
    else:
        assert seen.most == 1, seen


async def test_check_runs_in_one_process_share_no_answer(tmp_path: Path) -> None:
    """Two `check` runs of the same config object: each searches once (the doctor's answers
    belong to a run's runtime, not to the process or the config object)."""
    config = fleet(tmp_path, [dead_port(0)] * 3)
    probes = [("imap", acc.name) for acc in config.accounts]
    async with counting_servers((993, 143)) as seen:
        await run_check(config, probes)
        await run_check(config, probes)
    assert seen.total == {993: 2, 143: 2}, seen
