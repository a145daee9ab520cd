"""The probe-kind contract: what a kind must provide, checked for every registered kind,
and a kind the rest of mailcanary has never heard of run through selection, the schedule,
the metrics, the backoff identity and the upkeep by registering it, nothing else."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator
from dataclasses import fields
from pathlib import Path

import pytest
from pydantic import BaseModel

from mailcanary.config import AccountConfig, Config, config_from_dict
from mailcanary.daemon.app import Daemon
from mailcanary.daemon.exposition import render_chunks
from mailcanary.daemon.scheduler import ProbeScheduler
from mailcanary.diagnosis import CLASS_OF, TAXONOMY
from mailcanary.probes import PROBES
from mailcanary.probes.kind import AnyEndpoint, ProbeKind, Selection, Upkeep
from mailcanary.probes.selection import SelectionError, select_probes, selections
from mailcanary.protocols.runtime import Runtime
from mailcanary.result import PHASES, ProbeContext, ProbeResult

# What a kind must provide: every field of ProbeKind, each checked below for every kind.
CONTRACT = {
    "name", "run", "timeout", "reasons", "selection", "has", "entry", "accounts",
    "endpoints", "phases", "preset_phases", "delivery", "doctor", "sweep", "watched_accounts",
    "home",
}


def every_kind_config(state_dir: Path, port: int = 1, password: str = "pw-a") -> Config:
    """A config with at least one target of every registered kind (bob every second)."""
    imap = {"host": "127.0.0.1", "port": port, "security": "none", "allow_insecure_auth": True,
            "max_connections": 2}
    return config_from_dict({
        "daemon": {"state_dir": str(state_dir)},
        "accounts": [
            {"name": "alice", "address": "alice@example.test", "password": password,
             "imap": imap, "smtp": imap, "pop3": imap},
            {"name": "bob", "address": "bob@example.test", "password": "pw-b", "imap": imap,
             "interval": "1s"},
        ],
        "routes": [{"from": "alice", "to": "bob"}],
        "inbound": [{"name": "signup", "account": "bob",
                     "match": {"subject": "Welcome"}}],
        "domains": [{"name": "example-domain", "domain": "example.test"}],
    })


def test_probe_kind_fields_are_the_contract() -> None:
    """A new field on ProbeKind is a new promise: add it to CONTRACT and check it below."""
    assert {f.name for f in fields(ProbeKind)} == CONTRACT


@pytest.mark.parametrize("name", sorted(PROBES))
def test_every_kind_provides_the_contract(name: str, tmp_path: Path) -> None:
    kind = PROBES[name]
    config = every_kind_config(tmp_path)
    assert kind.name == name
    assert inspect.iscoroutinefunction(kind.run)
    assert kind.reasons and len(set(kind.reasons)) == len(kind.reasons)
    assert set(kind.reasons) <= set(CLASS_OF), "every reason has a class in the taxonomy"
    assert isinstance(kind.selection, Selection) and kind.selection.flag.isidentifier()
    assert kind.selection.help and kind.selection.noun and kind.selection.plural
    assert set(kind.phases) <= set(PHASES) and kind.phases
    assert kind.sweep is None or inspect.iscoroutinefunction(kind.sweep)
    targets = kind.targets(config)
    assert targets, f"the sample config has no {name} target"
    assert set(targets) <= set(kind.selection.names(config))
    for target in targets:
        assert isinstance(kind.entry(config, target), BaseModel)
        assert kind.timeout(config, target) > 0
        assert kind.interval(config, target) > 0
        accounts = kind.accounts(config, target)
        assert all(isinstance(a, AccountConfig) for a in accounts)
        # A kind that can fail on credentials names whose (its backoff identity); a kind
        # without any (domain) names none.
        assert accounts or not set(kind.reasons) & set(TAXONOMY["auth"])
        assert all(s == "127.0.0.1:1" for s in kind.servers(config, target))
        # The servers known before it runs: a kind that logs in talks to its accounts'; one
        # that learns them at run time (domain: the MX hosts, from DNS) names none.
        assert kind.servers(config, target) or not accounts
        assert set(kind.preset_phases(config, target)) <= set(kind.phases)
        assert isinstance(kind.fingerprint(config, target), str)
        home = kind.home(config, target)  # the mailbox its server/labels come from
        if home is not None:
            assert home[0] in accounts and kind.whereabouts(config, target).server == (
                "127.0.0.1:1")
    with pytest.raises(KeyError):
        kind.entry(config, "no-such-target")


def test_selection_flags_name_each_selection_once() -> None:
    flags = [s.flag for s in selections()]
    assert flags == ["account", "route", "inbound", "domain"]


# ---------------------------------------------------------------- a kind nobody knows


async def echo_server() -> tuple[asyncio.Server, int]:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(await reader.readline())
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


@pytest.fixture
async def echo_port() -> AsyncIterator[int]:
    server, port = await echo_server()
    async with server:
        yield port


async def echo_run(ctx: ProbeContext, config: Config, target: str) -> None:
    """The tiny kind's probe: a line to the account's IMAP port must come back unchanged."""
    endpoint = config.account(target).imap
    assert endpoint is not None
    with ctx.phase("connect"):
        reader, writer = await asyncio.open_connection(endpoint.host, endpoint.effective_port)
    try:
        with ctx.phase("greeting"):
            writer.write(b"canary\n")
            if await reader.readline() != b"canary\n":
                raise ConnectionResetError("the echo did not come back")
    finally:
        writer.close()


swept: list[str] = []


async def echo_sweep(config: Config, runtime: Runtime, backed_off: object,
                     owns: object) -> Upkeep:
    swept.extend(a.name for a in config.accounts)
    late = ProbeResult(probe="echo", target="alice", ok=True, cls="ok", reason="ok",
                       phase=None, detail="", hint="", duration_seconds=0.0, phases={},
                       extra={"placement": "inbox", "delivery_seconds": 0.5})
    return Upkeep(removed=1, results=[late], late={"alice": 2})


def endpoints_of(config: Config, target: str) -> list[AnyEndpoint]:
    imap = config.account(target).imap
    return [] if imap is None else [imap]


ECHO = ProbeKind(
    name="echo", run=echo_run, timeout=lambda config, target: 2.0, reasons=("ok",),
    selection=Selection("echo", "echo target", "echo targets",
                        lambda config: [a.name for a in config.accounts], help="only this echo"),
    has=lambda config, target: config.account(target).imap is not None,
    entry=lambda config, target: config.account(target),
    accounts=lambda config, target: [config.account(target)],
    endpoints=endpoints_of, phases=("connect", "greeting"),
    preset_phases=lambda config, target: ("connect",), delivery=True, sweep=echo_sweep,
)


async def test_a_registered_kind_runs_everywhere(echo_port: int, tmp_path: Path) -> None:
    """One registry line: selection, scheduler, metrics, backoff and upkeep take it."""
    registry = {**PROBES, "echo": ECHO}
    config = every_kind_config(tmp_path, echo_port)
    # selection: by default, and by its own flag; an unknown name is named as its noun
    assert ("echo", "alice") in select_probes(config, registry=registry)
    assert select_probes(config, {"echo": ["bob"]}, registry) == [("echo", "bob")]
    with pytest.raises(SelectionError, match="no echo target named 'carol'"):
        select_probes(config, {"echo": ["carol"]}, registry)
    assert "echo" in [s.flag for s in selections(registry)]
    # the schedule: its jobs, its interval, its server's connection cap
    results: list[ProbeResult] = []
    daemon = Daemon(tmp_path / "unused.toml", config, registry={"echo": ECHO})
    daemon.scheduler.hooks.result = results.append
    daemon.scheduler.max_jitter = 0.0  # first runs due at once (the next 100 ms grid point)
    specs = daemon.scheduler.start()
    try:
        assert {s.job_id: s.interval for s in specs} == {"echo:alice": 60.0, "echo:bob": 1.0}
        assert daemon.scheduler.limits.caps == {f"127.0.0.1:{echo_port}": 2}
        daemon._add_series(specs)
        for _ in range(100):  # both first runs, at once
            if {r.target for r in results} == {"alice", "bob"}:
                break
            await asyncio.sleep(0.05)
        results.append(await daemon.scheduler.run_now("echo", "alice"))
    finally:
        await daemon.scheduler.stop(1.0)
    assert sorted(r.target for r in results[:2]) == ["alice", "bob"]
    assert results[-1].target == "alice"  # run_now's
    assert all(r.ok for r in results), [r.as_json() for r in results]
    # the metrics: its own series, its pre-set phase, its delivery histogram
    for result in results:
        daemon.metrics.record(result)
    text = "".join(render_chunks(daemon.metrics))
    assert 'mailcanary_probe_success{probe="echo",target="alice"} 1' in text
    assert 'probe="echo",target="bob",phase="greeting"' in text
    assert daemon.metrics.targets["echo", "bob"].delivery
    # the upkeep: the daemon runs its sweep and counts what it reports
    swept.clear()
    await daemon.sweep_once()
    assert swept == ["alice", "bob"]
    assert daemon.metrics.swept == 1 and daemon.metrics.late == {"alice": 2}
    assert daemon.metrics.routes["alice"].placements["inbox"] == 1
    # the backoff identity: the credentials its accounts log in with
    backoff = ProbeScheduler(config, lambda result: None, registry={"echo": ECHO}).backoff
    try:
        before = await backoff.fingerprints.of(config, "echo", "alice")
        changed = every_kind_config(tmp_path, echo_port, password="pw-new")  # alice's only
        assert await backoff.fingerprints.of(changed, "echo", "alice") != before
        assert (await backoff.fingerprints.of(changed, "echo", "bob")
                == await backoff.fingerprints.of(config, "echo", "bob"))
    finally:
        backoff.close()
