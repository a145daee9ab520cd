"""Waiting for a connection slot is not the server's answer time. In a provider-wide auth
outage each refusal holds its slot for the server's failure delay, and the healthy accounts
of the same server queue behind them: they must still report ok, not `timeout` (their own
timeout stands still while they wait). The wait has its own bound, so probes queued behind
a black-holed server still get a verdict: a timeout in phase connect that names the full
limit. Both through the daemon's real scheduler, against real sockets."""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path

import pytest

from mailcanary.config import load_config
from mailcanary.daemon.scheduler import ProbeScheduler
from mailcanary.probes.runner import run_probe
from mailcanary.protocols.imapwire import ImapWire
from mailcanary.protocols.limits import acquire_for, holding
from mailcanary.protocols.runtime import Runtime
from mailcanary.result import ProbeResult
from tests.helpers.faults import Script, fake_server
from tests.helpers.support import account, endpoint, password_file, write_config

HOST = "127.0.0.73"  # its standard ports are closed: the doctor finds nothing to suggest


def fleet(tmp_path: Path, port: int, names: list[str], *, timeout: str,
          interval: str) -> Path:
    pw = password_file(tmp_path)
    accounts = [account(name, username=name, password_file=pw, timeout=timeout,
                        imap=endpoint(HOST, port)) + f'interval = "{interval}"\n'
                for name in names]
    path = write_config(tmp_path, *accounts)
    path.write_text(path.read_text().replace(
        "[daemon]\n", "[daemon]\nmax_connections_per_server = 2\n"))
    return path


async def first_results(path: Path, within: float) -> dict[str, ProbeResult]:
    """Every job's first run due 0.3 s after the scheduler starts (all at once, in the
    config's order); each target's first result."""
    config = load_config(path)
    first: dict[str, ProbeResult] = {}
    complete = asyncio.Event()

    def seen(result: ProbeResult) -> None:
        first.setdefault(result.target, result)
        if len(first) == len(config.accounts):
            complete.set()

    scheduler = ProbeScheduler(config, seen)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(scheduler, "_offset", lambda *args, **kwargs: 0.3)
        scheduler.start()
    try:
        await asyncio.wait_for(complete.wait(), within)
    finally:
        await scheduler.stop(0.0)
        await scheduler.runtime.close()
    return first


async def test_healthy_accounts_stay_ok_behind_slow_refusals(tmp_path: Path) -> None:
    """Six refused accounts (1.5 s failure delay each) first, then three healthy ones, all
    on one server with 2 slots: the healthy ones wait ~4.5 s for a slot, longer than their
    2 s timeout, and still report ok; the refused ones report auth, none a timeout."""
    bad = [f"bad{i}" for i in range(6)]
    good = [f"good{i}" for i in range(3)]
    script = Script("imap", refused=frozenset(bad), refusal_delay=1.5)
    async with fake_server(script, host=HOST) as port:
        path = fleet(tmp_path, port, bad + good, timeout="2s", interval="20s")
        results = await first_results(path, 15)
    for name in bad:
        assert (results[name].cls, results[name].reason) == ("auth", "invalid_credentials"), \
            results[name]
    for name in good:
        assert results[name].ok, results[name]
        assert results[name].duration_seconds > 2.0, results[name]  # it did wait


async def test_probes_behind_a_black_holed_server_get_a_bounded_verdict(
    tmp_path: Path,
) -> None:
    """Ten accounts of a server that accepts and never greets, 2 slots, timeout 1 s, every
    3 s: a probe may wait 2 s (the interval less the timeout) for a slot. The first pairs
    time out in the greeting; those still queued after 2 s fail in phase connect, saying
    which slot they waited for and which limit was full; none takes longer than its
    wait bound plus its timeout."""
    names = [f"acc{i}" for i in range(10)]
    async with fake_server(silent=True, host=HOST) as port:
        path = fleet(tmp_path, port, names, timeout="1s", interval="3s")
        results = await first_results(path, 15)
    assert {r.cls for r in results.values()} == {"timeout"}, results
    assert all(r.duration_seconds < 3.5 for r in results.values()), results
    greeting = [r for r in results.values() if r.phase == "greeting"]
    queued = [r for r in results.values() if r.phase == "connect"]
    assert len(greeting) >= 4 and len(queued) >= 2, results
    for result in queued:
        assert f"connection slot to {HOST}:{port}" in result.detail, result
        assert "`[daemon] max_connections_per_server = 2`" in result.detail, result
        assert 1.9 < result.duration_seconds < 2.5, result


async def test_a_probe_waiting_for_a_slot_holds_no_protocol_object(tmp_path: Path) -> None:
    """Memory in an outage is per waiting probe (thousands wait behind slow refusals): the
    IMAP protocol object (aioimaplib's queues, events and buffers) is made only once its
    connection is up, so 40 probes queued behind one black-holed connection hold one."""
    async with fake_server(silent=True, host=HOST) as port:
        path = fleet(tmp_path, port, [f"acc{i}" for i in range(40)], timeout="20s",
                     interval="1h")
        config = load_config(path)
        runtime = Runtime.for_config(config)
        limits = runtime.limits
        assert limits is not None
        probes = [asyncio.create_task(run_probe("imap", f"acc{i}", config, runtime=runtime))
                  for i in range(40)]
        try:
            for _ in range(100):
                await asyncio.sleep(0.02)
                if sum(limits.busy.values()) == 2:  # the ones connected
                    break
            await asyncio.sleep(0.1)
            gc.collect()
            assert sum(isinstance(o, ImapWire) for o in gc.get_objects()) == 2
        finally:
            for probe in probes:
                probe.cancel()
            await asyncio.gather(*probes, return_exceptions=True)
            await runtime.close()


async def test_no_settings_search_for_a_probe_that_got_no_slot(tmp_path: Path) -> None:
    """A probe that waited its whole bound for a slot never reached the server: no wrong
    port or security can explain that, and the doctor's candidates would only add
    connections to a busy server, so none is searched."""
    path = fleet(tmp_path, 143, ["acc0"], timeout="1s", interval="2s")  # bound: 1 s
    config = load_config(path)
    runtime = Runtime.for_config(config)
    limits = runtime.limits
    assert limits is not None
    busy = asyncio.Event()

    async def occupy() -> None:  # both slots of the server taken, as by two dead logins
        with holding(limits):
            await acquire_for(HOST, 143)
            if sum(limits.busy.values()) == 2:
                busy.set()
            await asyncio.sleep(3600)

    holders = [asyncio.create_task(occupy()) for _ in range(2)]
    try:
        await busy.wait()
        result = await run_probe("imap", "acc0", config, runtime=runtime)
    finally:
        for task in holders:
            task.cancel()
        await asyncio.gather(*holders, return_exceptions=True)
        await runtime.close()
    assert (result.cls, result.phase) == ("timeout", "connect"), result
    assert f"connection slot to {HOST}:143" in result.detail, result
    assert runtime.doctor.started == 0
