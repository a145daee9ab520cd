"""Auth backoff survives reloads and restarts (config management or a crash loop must not
re-probe a wrong password at full rate) and resets only on new credentials or success."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

from tests.helpers.daemon_support import RunningDaemon, daemon_config, free_port, running_daemon
from tests.helpers.faults import Script, fake_server
from tests.helpers.support import account, endpoint, password_file

WRONG = "NO [AUTHENTICATIONFAILED] Authentication failed."


def logins(script: Script) -> int:
    return sum(" AUTHENTICATE " in line or " LOGIN " in line for line in script.received)


async def factor(daemon: RunningDaemon) -> float:
    _, doc = await daemon.health()
    [target] = [t for t in doc["targets"] if t["target"] == "acc"]
    return float(target["backoff_factor"] or 1.0)


async def logins_during(script: Script, seconds: float) -> int:
    before = logins(script)
    await asyncio.sleep(seconds)
    return logins(script) - before


async def test_backoff_survives_reload_and_restart(tmp_path: Path) -> None:
    script = Script("imap", login_reply=WRONG)
    port = free_port()
    pw = password_file(tmp_path)
    async with fake_server(script) as imap_port:
        acc = account("acc", imap=endpoint("127.0.0.1", imap_port), password_file=pw)
        config = daemon_config(tmp_path, port, acc, interval="1s")
        async with running_daemon(config, port) as daemon:
            async def backed_off() -> bool:
                return await factor(daemon) >= 4
            await daemon.wait_for(backed_off, 20, "backoff factor 4")
            # a reload that changes the target (its interval) and [defaults]
            body = daemon_config(tmp_path, port, acc + 'interval = "1s"\n', interval="1s")
            config.write_text(body.read_text().replace('timeout = "5s"', 'timeout = "4s"'))
            daemon.signal(signal.SIGHUP)

            async def reloaded() -> bool:
                return any(e.get("event") == "config_reloaded" for e in daemon.logs())
            await daemon.wait_for(reloaded, 10, "the reload")
            assert await factor(daemon) >= 4
            assert await logins_during(script, 2.5) <= 1
            code, _ = await daemon.stop()
            assert code == 0
        saved = json.loads((tmp_path / "state" / "backoff.json").read_text())
        assert saved["data"]["jobs"]["imap:acc"]["exponent"] >= 2
        assert "Canary" not in json.dumps(saved)  # a keyed hash, not the password
        async with running_daemon(config, port) as daemon:  # a restart
            assert await factor(daemon) >= 4
            assert await logins_during(script, 2.5) <= 1
            # new credentials: the backoff ends and the account is probed at once
            before = logins(script)
            password_file(tmp_path, "Another-Password-1")
            daemon.signal(signal.SIGHUP)

            async def reset() -> bool:
                return any(e.get("event") == "probe_backoff_reset" for e in daemon.logs())
            await daemon.wait_for(reset, 10, "the backoff reset by the new password")

            async def probed() -> bool:
                return logins(script) > before
            await daemon.wait_for(probed, 3, "a login right after the reset")
            code, _ = await daemon.stop()
            assert code == 0


async def test_success_clears_saved_backoff(tmp_path: Path) -> None:
    script = Script("imap", login_reply=WRONG)
    port = free_port()
    async with fake_server(script) as imap_port:
        acc = account("acc", imap=endpoint("127.0.0.1", imap_port),
                      password_file=password_file(tmp_path))
        config = daemon_config(tmp_path, port, acc, interval="1s")
        state = tmp_path / "state" / "backoff.json"
        async with running_daemon(config, port) as daemon:
            async def backed_off() -> bool:
                return await factor(daemon) >= 2 and state.exists()
            await daemon.wait_for(backed_off, 20, "a saved backoff")
            script.login_reply = "OK"

            async def cleared() -> bool:
                return await factor(daemon) == 1.0
            await daemon.wait_for(cleared, 20, "success clears the backoff")
            code, _ = await daemon.stop()
            assert code == 0
    assert json.loads(state.read_text())["data"]["jobs"] == {}
