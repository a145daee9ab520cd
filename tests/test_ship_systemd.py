"""The systemd unit against a real install: `pip install` of the built wheel into a venv
laid out like /opt/mailcanary, then `systemd-analyze verify` of the unit pointed at that
venv (it checks that ExecStart= is an executable), the console script runs, and every
`Documentation=` file exists in the install."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "systemd" / "mailcanary.service"
PREFIX = "/opt/mailcanary"  # the venv of systemd/README.md step 1

# One worker builds the wheel for the whole module (two builds at once collide).
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("wheel-build")]


def _run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=300, check=False,
                          cwd=cwd)


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv with the wheel built from this checkout (no dependencies: the console script
    and the data files are what the unit names; --version needs nothing else)."""
    tmp = tmp_path_factory.mktemp("install")
    # Built from a copy: setuptools builds in the tree's build/, which a stale or concurrent
    # build would mix into this wheel.
    source = tmp / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "*.egg-info", "__pycache__", ".mypy_cache", ".ruff_cache"))
    built = _run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w",
                 str(tmp / "wheels"), str(source))
    assert built.returncode == 0, built.stderr[-3000:]
    wheel = next((tmp / "wheels").glob("mailcanary-*.whl"))
    target = tmp / "opt-mailcanary"
    made = _run(sys.executable, "-m", "venv", "--without-pip", str(target))
    assert made.returncode == 0, made.stderr
    installed = _run(sys.executable, "-m", "pip", "--python", str(target / "bin" / "python"),
                     "install", "-q", "--no-deps", "--no-index", str(wheel))
    assert installed.returncode == 0, installed.stderr[-3000:]
    return target


def unit_settings(key: str) -> list[str]:
    return [line.split("=", 1)[1] for line in UNIT.read_text().splitlines()
            if line.startswith(f"{key}=")]


def test_exec_start_is_the_venvs_console_script(venv: Path) -> None:
    [exec_start] = unit_settings("ExecStart")
    binary, *args = exec_start.split()
    assert binary == f"{PREFIX}/bin/mailcanary"
    assert args == ["run", "--config", "/etc/mailcanary/mailcanary.toml"]
    script = venv / binary.removeprefix(PREFIX + "/")
    version = _run(str(script), "--version")
    assert version.returncode == 0, version.stderr
    assert re.fullmatch(r"mailcanary \S+\n", version.stdout), version.stdout


def test_documentation_is_installed(venv: Path) -> None:
    docs = [uri for line in unit_settings("Documentation") for uri in line.split()]
    assert docs
    for uri in docs:
        assert uri.startswith(f"file://{PREFIX}/"), uri
        path = venv / uri.removeprefix(f"file://{PREFIX}/")
        assert path.is_file(), uri
        assert path.stat().st_size > 1000, uri


def test_systemd_analyze_verify_with_the_venv(venv: Path, tmp_path: Path) -> None:
    """`systemd-analyze verify` reports nothing for the unit, /opt/mailcanary being this
    venv (verify fails on an ExecStart= that is not an executable file)."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (Debian: systemd)")
    copy = tmp_path / UNIT.name
    copy.write_text(UNIT.read_text().replace(f"{PREFIX}/", f"{venv}/"))
    result = _run(analyze, "verify", "--man=no", str(copy))
    out = (result.stdout + result.stderr).strip()
    assert result.returncode == 0, out
    assert out == "", out
    broken = tmp_path / "broken" / UNIT.name
    broken.parent.mkdir()
    broken.write_text(UNIT.read_text())  # /opt/mailcanary is not installed here
    if not Path(PREFIX).exists():
        failed = _run(analyze, "verify", "--man=no", str(broken))
        assert "mailcanary" in failed.stdout + failed.stderr  # verify does check ExecStart=
    assert os.access(venv / "bin" / "mailcanary", os.X_OK)
