"""backoff.json and alerts.json under a provider-wide outage: a few whole-file writes, not
one per event; backoff.json holds no fast hash a guess loop can test (it once recovered a
test password offline from a keyed blake2b whose key sat in the same file)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time
from pathlib import Path

import pytest

from mailcanary.config import load_config
from mailcanary.credentials import SCRYPT_N, SCRYPT_R
from mailcanary.daemon.alerts import AlertEngine
from mailcanary.daemon.backoff import FILE_NAME, Backoff
from mailcanary.daemon.metrics import MetricsState
from mailcanary.result import ProbeResult
from mailcanary.state import files
from mailcanary.state.files import dumps_chunked
from tests.helpers.daemon_support import daemon_config
from tests.helpers.support import PASSWORD, account, endpoint, password_file

ACCOUNTS = 2000


def outage_config(tmp_path: Path, n: int) -> Path:
    pw = password_file(tmp_path)
    accounts = [account(f"a{i}", imap=endpoint("127.0.0.1", 1), password_file=pw)
                for i in range(n)]
    sink = '[[alerts]]\nkind = "webhook"\nurl = "http://127.0.0.1:9/x"\nafter = 1\n'
    return daemon_config(tmp_path, 1, *accounts, sink)


def auth_failure(target: str) -> ProbeResult:
    return ProbeResult("imap", target, False, "auth", "invalid_credentials", "auth",
                       "NO [AUTHENTICATIONFAILED]", "", 0.1, {})


async def test_an_outage_of_many_accounts_is_a_few_backoff_writes(tmp_path: Path) -> None:
    config = load_config(outage_config(tmp_path, ACCOUNTS))
    backoff = Backoff()
    backoff.attach(tmp_path / "state")
    assert backoff.batch is not None
    for i in range(ACCOUNTS):
        backoff.record("imap", f"a{i}", "auth")
        backoff.save(config, "imap", f"a{i}", time.time() + 60)
    await asyncio.sleep(1.5)
    assert backoff.batch.writes <= 2, backoff.batch.writes
    backoff.close()
    saved = json.loads((tmp_path / "state" / FILE_NAME).read_text())["data"]
    assert len(saved["jobs"]) == ACCOUNTS


async def test_an_outage_of_many_accounts_is_a_few_alert_writes(tmp_path: Path) -> None:
    config = load_config(outage_config(tmp_path, ACCOUNTS))
    engine = AlertEngine(MetricsState(), lambda: config, lambda kind, target: 600.0)
    engine.persist_in(tmp_path / "state")
    engine.configure(list(config.alerts))
    assert engine.store is not None
    for i in range(ACCOUNTS):  # every account fires at once
        engine.observe(auth_failure(f"a{i}"))
    await asyncio.sleep(1.5)
    writes = engine.store.batch.writes
    engine.prune(set())  # a restart without those targets: one save, not 2,000
    await asyncio.sleep(1.5)
    assert writes <= 2 and engine.store.batch.writes <= writes + 2, engine.store.batch.writes
    for worker in engine.workers:
        worker.task.cancel()


async def test_backoff_file_holds_no_fast_hash_of_the_password(tmp_path: Path) -> None:
    config = load_config(outage_config(tmp_path, 1))
    backoff = Backoff()
    backoff.attach(tmp_path / "state")
    backoff.record("imap", "a0", "auth")
    backoff.save(config, "imap", "a0", time.time() + 60)
    for _ in range(100):
        await asyncio.sleep(0.05)
        if backoff.jobs["imap:a0"]["credentials"] is not None:
            break
    backoff.close()
    data = json.loads((tmp_path / "state" / FILE_NAME).read_text())["data"]
    stored = data["jobs"]["imap:a0"]["credentials"]
    assert stored and "key" not in data and PASSWORD not in json.dumps(data)
    # the old recipe's guess loop (a keyed fast hash, its key in the file) finds nothing
    for guess in ("letmein", "password", PASSWORD):
        for fast in (hashlib.sha256, hashlib.blake2b, hashlib.md5):
            assert fast(guess.encode()).hexdigest()[: len(stored)] != stored
    # what is stored costs a guess loop scrypt at >= 16 MiB per try
    assert SCRYPT_N * SCRYPT_R * 128 >= 16 << 20
    started = time.perf_counter()
    hashlib.scrypt(b"guess", salt=bytes.fromhex(data["salt"]), n=SCRYPT_N, r=SCRYPT_R, p=1,
                   maxmem=64 << 20, dklen=16)
    assert time.perf_counter() - started > 0.01


def test_an_old_file_with_fast_hashes_is_scrubbed_at_start(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    old = {"version": 1, "data": {"key": "00" * 16, "jobs": {"imap:a0": {
        "exponent": 2, "next_due": 1.0, "credentials": "ab" * 16}}}}
    (state / FILE_NAME).write_text(json.dumps(old))
    backoff = Backoff()
    backoff.attach(state)
    data = json.loads((state / FILE_NAME).read_text())["data"]
    assert "key" not in data and data["jobs"]["imap:a0"]["credentials"] is None
    assert data["jobs"]["imap:a0"]["exponent"] == 2  # the backoff itself goes on


def test_chunked_encoding_is_the_same_json() -> None:
    doc = {"version": 1, "data": {"salt": "ab", "paused": {}, "jobs": {
        f"imap:u{i:05d}": {"exponent": i % 4, "next_due": i / 3, "credentials": None,
                           "n\u00e4me": ["x", {"b": 1, "a": 2}]}
        for i in range(1000)}}}
    assert dumps_chunked(doc) == json.dumps(doc, sort_keys=True)
    assert dumps_chunked({}) == "{}" and dumps_chunked([1, "a"]) == '[1, "a"]'


async def test_backoff_file_is_encoded_and_written_off_the_loop_one_write_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A slow disk (each write 0.3 s) under an outage's stream of changes: while the
    daemon runs, every write happens in a worker thread (the loop is never the writer),
    never two at once, and the file ends with the last state after `close`."""
    loop_thread = threading.get_ident()
    writers: list[int] = []
    now_writing = most = 0
    real = files.write_atomic

    def slow_write(path: Path, data: bytes, *, mode: int | None = 0o600) -> None:
        nonlocal now_writing, most
        now_writing += 1
        most = max(most, now_writing)
        writers.append(threading.get_ident())
        time.sleep(0.3)
        real(path, data, mode=mode)
        now_writing -= 1

    monkeypatch.setattr(files, "write_atomic", slow_write)
    config = load_config(outage_config(tmp_path, 300))
    backoff = Backoff()
    backoff.attach(tmp_path / "state")
    assert backoff.batch is not None
    backoff.batch.every = 0.0  # as often as it can: the writes overlap unless serialised
    for i in range(300):
        backoff.record("imap", f"a{i}", "auth")
        backoff.save(config, "imap", f"a{i}", time.time() + 60)
        if i % 30 == 0:
            await asyncio.sleep(0.1)
    running = list(writers)
    backoff.close()  # at stop: the last write waits for the one under way, then is made
    assert len(running) >= 2 and loop_thread not in running, writers
    assert most == 1
    saved = json.loads((tmp_path / "state" / FILE_NAME).read_text())["data"]
    assert len(saved["jobs"]) == 300
