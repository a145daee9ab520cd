"""`daemon.state_dir` that cannot be created or written: `run` exits 2 and names the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.daemon_support import daemon_config, free_port
from tests.helpers.support import cli


@pytest.mark.parametrize("where", ["under-a-file", "read-only"])
async def test_unusable_state_dir_exits_2(tmp_path: Path, where: str) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    # /proc refuses new files even to root (tests may run as root, where chmod does not)
    state = blocker / "state" if where == "under-a-file" else Path("/proc")
    config = daemon_config(tmp_path, free_port())
    config.write_text(config.read_text().replace(str(tmp_path / "state"), str(state)))
    code, out, err = await cli("run", "--config", str(config), limit=20)
    assert code == 2, out + err
    assert "daemon.state_dir" in err and str(state) in err
    assert "Traceback" not in err
