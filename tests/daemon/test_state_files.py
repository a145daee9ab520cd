"""State files: 0600 in a 0700 state_dir under umask 022, never written or read through a
planted symlink, and a file of the wrong shape moved aside while the daemon starts."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailcanary.config import load_config
from mailcanary.credentials import Secret
from mailcanary.daemon.alerts.store import AlertStore, sink_identity
from mailcanary.probes.inbound import memory
from mailcanary.probes.roundtrip.state import CanaryStore
from mailcanary.protocols.oauth2 import rotated
from mailcanary.state import JsonState, check_state_dir, write_atomic
from tests.helpers.daemon_support import daemon_config, free_port, running_daemon
from tests.helpers.faults import Script, fake_server
from tests.helpers.support import account, endpoint, password_file


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


@pytest.mark.usefixtures("umask_022")
def test_every_state_writer_makes_0600_files_in_0700_dirs(tmp_path: Path) -> None:
    state = tmp_path / "state"
    check_state_dir(state)
    JsonState(state / "backoff.json").save({"jobs": {}})
    AlertStore(state, dict).save()
    memory.save(state, "watch", memory.Memory(last_trigger=1.0))
    CanaryStore(state).add("tok", "route", "bob", 60.0)
    rotated.keep(state, "acc", Secret("new-refresh-token"), Secret("old-refresh-token"))
    assert mode(state) == 0o700
    for path in state.rglob("*"):
        assert mode(path) == (0o700 if path.is_dir() else 0o600), path


def test_an_existing_open_state_dir_is_closed_down(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o755)
    state.chmod(0o755)
    check_state_dir(state)
    assert mode(state) == 0o700


def test_no_write_through_a_symlink_planted_at_the_file_or_its_temp_name(
    tmp_path: Path,
) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    state = tmp_path / "state"
    check_state_dir(state)
    target = state / "backoff.json"
    target.symlink_to(victim)
    for pid in {os.getpid(), os.getpid() + 1}:  # the old, guessable temporary names
        (state / f".backoff.json.{pid}.tmp").symlink_to(victim)
    JsonState(target).save({"jobs": {}})
    assert victim.read_text() == "precious\n"
    assert not target.is_symlink() and json.loads(target.read_text())["data"] == {"jobs": {}}


def test_a_symlinked_state_file_is_not_read_but_moved_aside(tmp_path: Path) -> None:
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps({"last_trigger": 9e18}))
    (tmp_path / "inbound").mkdir()
    link = tmp_path / "inbound" / "watch.json"
    link.symlink_to(forged)
    assert memory.load(tmp_path, "watch") == memory.Memory()
    assert not link.exists() and not link.is_symlink()
    assert forged.exists()
    assert [p.name.split(".corrupt-")[0] for p in (tmp_path / "inbound").iterdir()] == [
        "watch.json"]


def test_a_symlinked_subdirectory_is_refused(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "inbound").symlink_to(elsewhere)
    with pytest.raises(Exception, match="symlink"):
        memory.save(tmp_path, "watch", memory.Memory())
    assert list(elsewhere.iterdir()) == []


@pytest.mark.parametrize("doc", [
    [1, 2], {"verdict": "not an object"}, {"floors": {"INBOX": "x"}}, {"last_trigger": "soon"},
])
def test_wrong_shape_inbound_memory_is_moved_aside(tmp_path: Path, doc: object) -> None:
    path = tmp_path / "inbound" / "watch.json"
    path.parent.mkdir()
    path.write_text(json.dumps(doc))
    assert memory.load(tmp_path, "watch") == memory.Memory()
    assert not path.exists()
    assert len(list(path.parent.glob("watch.json.corrupt-*"))) == 1


def test_write_atomic_sets_the_mode_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o000)
    try:
        write_atomic(tmp_path / "f", b"x")
    finally:
        os.umask(old)
    assert mode(tmp_path / "f") == 0o600


WRONG_SHAPES = {
    "alerts.json": {"version": 1, "data": {"webhook-0123": [{"probe": "imap"}]}},
    "backoff.json": {"version": 1, "data": {"jobs": {"imap:acc": {"exponent": "many"}}}},
}


@pytest.mark.parametrize("name", sorted(WRONG_SHAPES))
async def test_daemon_starts_with_a_wrong_shape_state_file(tmp_path: Path, name: str) -> None:
    script = Script("imap", login_reply="NO [AUTHENTICATIONFAILED] no")
    port = free_port()
    async with fake_server(script) as imap_port:
        acc = account("acc", imap=endpoint("127.0.0.1", imap_port),
                      password_file=password_file(tmp_path))
        sink = '[[alerts]]\nkind = "webhook"\nurl = "http://127.0.0.1:9/x"\nafter = 1\n'
        config = daemon_config(tmp_path, port, acc, sink)
        bad = tmp_path / "state" / name
        doc = WRONG_SHAPES[name]
        if name == "alerts.json":  # under the real sink's identity
            ident = sink_identity(load_config(config).alerts[0])
            doc = {"version": 1, "data": {ident: [{"probe": "imap"}]}}
        bad.write_text(json.dumps(doc))
        async with running_daemon(config, port) as daemon:
            code, _ = await daemon.health()
            assert code == 200
            assert any(e.get("event") == "state_file_corrupt" for e in daemon.logs())
        assert list(bad.parent.glob(f"{name}.corrupt-*"))
