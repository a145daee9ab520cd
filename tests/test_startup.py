"""Start-up stays light (issue 15: `--version` and `check` within 0.3 s; bench/startup.py
measures the time). Timing would fail on a busy CI machine, so these tests check what makes
the time instead, in a fresh interpreter: which modules `mailcanary ARGV` loaded, and whether
it loaded a TLS trust store (~20 ms of CPU) for connections that were never made."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

SRC = Path(__file__).resolve().parents[1] / "src"

# Runs `main(ARGV)`, then reports the modules loaded and each call that loaded trust anchors.
# The control at the end builds a default context (as protocols/tls.py does) on purpose:
# a hook that counts nothing fails.
_RUN = """\
import json, ssl, sys
calls = []

def counting(name):
    original = getattr(ssl.SSLContext, name)
    def wrapper(self, *args, **kwargs):
        calls.append(name)
        return original(self, *args, **kwargs)
    return wrapper

for name in ("load_default_certs", "set_default_verify_paths", "load_verify_locations"):
    setattr(ssl.SSLContext, name, counting(name))
import gc, os
from mailcanary.cli import main
sys.argv = ["mailcanary", *ARGV]  # as the console script calls it
try:
    code = main()
except SystemExit as exc:
    code = exc.code
modules = sorted(sys.modules)
loads = list(calls)
ssl.create_default_context()
print(json.dumps({"code": code, "modules": modules, "trust": loads,
                  "control": calls[len(loads):], "frozen": gc.get_freeze_count(),
                  "gc": gc.isenabled(), "plugins": os.environ.get("PYDANTIC_DISABLE_PLUGINS")}),
      file=sys.stderr)
"""

# Never needed by `--version` nor by `check` of a login account.
HEAVY = {
    "mailcanary.daemon", "apscheduler", "prometheus_client", "httpx", "sqlite3", "yaml",
    "bcrypt", "lxml", "cryptography", "watchfiles", "jinja2", "apprise", "babel", "dns",
    "spf", "dkim", "mailcanary.cli.oauth2", "mailcanary.probes.inbound.probe",
    "mailcanary.probes.roundtrip.probe", "mailcanary.probes.domain.probe",
    # light, but loaded only when asked: their import was ~1 % of `check` each
    "mailcanary.probes.domain.run", "difflib",
}


def run_main(argv: list[str]) -> dict[str, Any]:
    """What a fresh interpreter loaded while `mailcanary ARGV` ran (see `_RUN`)."""
    code = _RUN.replace("ARGV", repr(argv))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, env={"PYTHONPATH": str(SRC)}, check=False)
    report: dict[str, Any] = json.loads(done.stderr.strip().splitlines()[-1])
    assert report["control"], "the trust-store hook counted nothing"
    return report


def modules_after(argv: list[str]) -> set[str]:
    """The modules a fresh interpreter has loaded after `mailcanary ARGV` ran, without the
    hook (which imports ssl)."""
    code = (
        "import json, sys\nfrom mailcanary.cli import main\n"
        f"try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
        "print(json.dumps(sorted(sys.modules)), file=sys.stderr)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, env={"PYTHONPATH": str(SRC)}, check=False)
    names: list[str] = json.loads(done.stderr.strip().splitlines()[-1])
    return set(names)


def test_version_loads_no_config_nor_event_loop() -> None:
    loaded = modules_after(["--version"])
    assert not loaded & {"pydantic", "asyncio", "structlog", "ssl", "mailcanary.config",
                         "mailcanary.probes"}
    assert not loaded & HEAVY


def refused_account(tmp_path: Path) -> Path:
    config = tmp_path / "check.toml"
    config.write_text(
        f'[daemon]\nstate_dir = "{tmp_path}"\n[[accounts]]\nname = "a"\n'
        'address = "a@example.test"\npassword = "pw"\nimap = { host = "127.0.0.1", '
        'port = 1, security = "none", allow_insecure_auth = true }\n')
    return config


def test_check_of_an_account_loads_no_daemon_nor_other_kinds(tmp_path: Path) -> None:
    report = run_main(["check", "--config", str(refused_account(tmp_path))])
    loaded = set(report["modules"])
    assert report["code"] == 1  # connection refused
    assert "mailcanary.probes.runner" in loaded  # it did run the probe
    assert not loaded & HEAVY


def test_a_refused_check_loads_no_trust_store(tmp_path: Path) -> None:
    """Port 1 refuses; the settings doctor then tries the usual ports (993, 143), which
    refuse too: no TLS handshake happens, so no trust store may be loaded."""
    report = run_main(["check", "--json", "--config", str(refused_account(tmp_path))])
    assert "mailcanary.protocols.candidates" in report["modules"]  # the doctor did search
    assert report["trust"] == []


def test_start_up_objects_are_frozen_out_of_the_collector(tmp_path: Path) -> None:
    """The objects start-up makes (modules, models, schemas) live until exit: frozen, the
    collections during the run and the one at exit skip them. A user's own
    PYDANTIC_DISABLE_PLUGINS would win; unset, pydantic's plugin search is skipped."""
    report = run_main(["check", "--config", str(refused_account(tmp_path))])
    assert report["gc"] is True
    assert report["frozen"] > 20_000
    assert report["plugins"] == "__all__"


def test_main_called_in_process_freezes_nothing(tmp_path: Path) -> None:
    code = (
        "import gc, os, sys\nfrom mailcanary.cli import main\n"
        f"main(['check', '--config', {str(refused_account(tmp_path))!r}])\n"
        "print(gc.isenabled(), gc.get_freeze_count(), "
        "os.environ.get('PYDANTIC_DISABLE_PLUGINS'), file=sys.stderr)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, env={"PYTHONPATH": str(SRC)}, check=False)
    assert done.stderr.strip().splitlines()[-1] == "True 0 None"
