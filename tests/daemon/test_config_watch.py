"""The daemon reloads on its own when the config or an included file changes (no SIGHUP):
an edit, an included file added or edited, a Kubernetes ConfigMap symlink swap; a broken
edit keeps the old config (mailcanary_config_last_reload_successful 0) and says why."""

from __future__ import annotations

import os
from pathlib import Path

from tests.helpers.daemon_support import RunningDaemon, free_port, running_daemon, value


def _account(name: str) -> str:  # a closed port: the probes fail fast, the series exist
    return (f'[[accounts]]\nname = "{name}"\naddress = "{name}@example.test"\n'
            'password_env = "HOME"\nimap = { host = "127.0.0.1", port = 1, security = "tls" }\n')


def _main(tmp: Path, port: int, *accounts: str, include: str = "conf.d/*.toml") -> str:
    state = tmp / "state"
    state.mkdir(exist_ok=True)
    return (f'include = ["{include}"]\n[daemon]\nlisten = "127.0.0.1:{port}"\n'
            f'state_dir = "{state}"\n[defaults]\ninterval = "1h"\ntimeout = "2s"\n\n'
            + "".join(_account(a) for a in accounts))


async def _targets(daemon: RunningDaemon) -> set[str]:
    m = await daemon.metrics()
    return {lab["target"] for lab, _ in m.get("mailcanary_probe_success", [])}


async def _wait_targets(daemon: RunningDaemon, want: set[str], what: str) -> None:
    async def there() -> bool:
        return await _targets(daemon) == want
    await daemon.wait_for(there, 15, what)


async def test_edits_of_the_file_and_its_includes_reload(tmp_path: Path) -> None:
    port = free_port()
    (tmp_path / "conf.d").mkdir()
    config = tmp_path / "mailcanary.toml"
    config.write_text(_main(tmp_path, port, "a"))
    async with running_daemon(config, port) as daemon:
        assert await _targets(daemon) == {"a"}
        config.write_text(_main(tmp_path, port, "a", "b"))  # the main file, edited in place
        await _wait_targets(daemon, {"a", "b"}, "b added by an edit")
        (tmp_path / "conf.d" / "team.toml").write_text(_account("c"))  # a new included file
        await _wait_targets(daemon, {"a", "b", "c"}, "c from a new included file")
        tmp = tmp_path / "conf.d" / ".team.toml.swp"  # an editor's save-by-rename
        tmp.write_text(_account("d"))
        os.replace(tmp, tmp_path / "conf.d" / "team.toml")
        await _wait_targets(daemon, {"a", "b", "d"}, "d replacing c in the included file")

        (tmp_path / "conf.d" / "team.toml").write_text(_account("d") + "[[accounts]\n")
        async def failed() -> bool:
            m = await daemon.metrics()
            return value(m, "mailcanary_config_last_reload_successful") == 0.0
        await daemon.wait_for(failed, 15, "the reload gauge at 0 after a broken edit")
        assert await _targets(daemon) == {"a", "b", "d"}  # the old config goes on
        errors = [e for e in daemon.logs() if e.get("event") == "config_reload_failed"]
        assert any("conf.d/team.toml: not valid TOML" in p for p in errors[-1]["problems"])
        (tmp_path / "conf.d" / "team.toml").write_text(_account("e"))

        async def fixed() -> bool:
            m = await daemon.metrics()
            return value(m, "mailcanary_config_last_reload_successful") == 1.0
        await daemon.wait_for(fixed, 15, "the reload gauge back at 1")
        await _wait_targets(daemon, {"a", "b", "e"}, "e after the fix")
        changed = [e for e in daemon.logs() if e.get("event") == "config_changed"]
        assert len(changed) >= 5
        code, _ = await daemon.stop()
        assert code == 0


async def test_kubernetes_configmap_symlink_swap_reloads(tmp_path: Path) -> None:
    """The kubelet's atomic update: files are symlinks through ``..data``, which is swapped
    to a new timestamped directory; nothing is written to the files' own paths."""
    port = free_port()
    mount = tmp_path / "config"
    mount.mkdir()

    def version(name: str, *accounts: str) -> None:
        (mount / name / "conf.d").mkdir(parents=True)
        (mount / name / "mailcanary.toml").write_text(
            _main(tmp_path, port, "main"))
        for acc in accounts:
            (mount / name / "conf.d" / f"{acc}.toml").write_text(_account(acc))

    version("..2026_12_07_10_00_00.1", "x")
    (mount / "..data").symlink_to("..2026_12_07_10_00_00.1")
    (mount / "mailcanary.toml").symlink_to("..data/mailcanary.toml")
    (mount / "conf.d").symlink_to("..data/conf.d")
    async with running_daemon(mount / "mailcanary.toml", port) as daemon:
        assert await _targets(daemon) == {"main", "x"}
        for step, accounts in enumerate([("y",), ("y", "z")], start=2):
            old = os.readlink(mount / "..data")
            new = f"..2026_12_07_10_0{step}_00.{step}"
            version(new, *accounts)
            (mount / "..data_tmp").symlink_to(new)
            os.replace(mount / "..data_tmp", mount / "..data")
            for path in sorted((mount / old).rglob("*"), reverse=True):
                path.unlink() if path.is_file() else path.rmdir()
            (mount / old).rmdir()
            await _wait_targets(daemon, {"main", *accounts}, f"swap {step}")
        code, _ = await daemon.stop()
        assert code == 0
