"""The user's documents say what is true: the README's copy-paste configs validate, its two
commands (demo, tests) stay, docs/reference.md is the contract, the OAuth2 guide puts
secrets where the shipped DynamicUser unit can read them, and no process notes remain."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
CONTRACT = ROOT.parent / "shared" / "CONTRACT.md"
HEREDOC = re.compile(r"cat > ~/\.config/mailcanary/mailcanary\.toml <<EOF\n(.*?)\nEOF\n", re.S)


def test_readme_keeps_the_two_commands() -> None:
    text = README.read_text(encoding="utf-8")
    assert "./scripts/demo.sh" in text and "./scripts/test.sh" in text
    assert "DEMO_SECONDS=30 ./scripts/demo.sh" in text


@pytest.mark.parametrize("provider", ["gmail", "docomo", "microsoft365"])
def test_quickstart_configs_validate(provider: str, tmp_path: Path) -> None:
    """Each provider's block, as the shell writes it ($HOME expanded), is a valid config
    once its secret exists (Microsoft 365's refresh token: after `oauth2 authorize`)."""
    blocks = {re.search(r'provider = "(\w+)"', b).group(1): b  # type: ignore[union-attr]
              for b in HEREDOC.findall(README.read_text(encoding="utf-8"))}
    home = tmp_path / "home"
    (home / ".config" / "mailcanary").mkdir(parents=True)
    for name in ("secret", "m365-refresh-token"):
        (home / ".config" / "mailcanary" / name).write_text("x")
    config = home / ".config" / "mailcanary" / "mailcanary.toml"
    config.write_text(blocks[provider].replace("$HOME", str(home)) + "\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "HOME": str(home)}
    proc = subprocess.run([sys.executable, "-m", "mailcanary", "validate", "--config",
                           str(config)], capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "warning" not in proc.stdout + proc.stderr


def test_reference_is_the_contract() -> None:
    if not CONTRACT.exists():
        pytest.skip(f"{CONTRACT} not present")
    contract = CONTRACT.read_text(encoding="utf-8")
    contract = contract[contract.index("## Names"):].replace(
        "## Version 3 additions", "## Additions in version 3")
    reference = (DOCS / "reference.md").read_text(encoding="utf-8")
    assert reference[reference.index("## Names"):] == contract


def test_no_process_notes_in_user_docs() -> None:
    for path in [README, *DOCS.glob("*.md")]:
        text = path.read_text(encoding="utf-8")
        for phrase in ("the issue asks", "issue asks for", "closing note", "CONTRACT.md"):
            assert phrase not in text, f"{path.name}: {phrase!r}"


def test_oauth2_guide_fits_the_shipped_unit() -> None:
    """DynamicUser=yes cannot read /etc/mailcanary/secrets: secrets are named relative
    (LoadCredential=); Gmail's SMTP is 465 as in the preset."""
    text = (DOCS / "oauth2.md").read_text(encoding="utf-8")
    assert not re.search(r'(client_secret|refresh_token)_file = "/', text)
    assert "smtp.gmail.com\", port = 587" not in text
    unit = (ROOT / "systemd" / "mailcanary.service").read_text(encoding="utf-8")
    assert "DynamicUser=yes" in unit and "LoadCredential=mailcanary:/etc/mailcanary/secrets" in unit
    daemon = (DOCS / "daemon.md").read_text(encoding="utf-8")
    assert "fix the password file, send SIGHUP" not in daemon
