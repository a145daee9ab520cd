"""Settings from ``MAILCANARY_*`` environment variables pass the same checks as the file, and
the clients themselves never send a password in clear text unless the endpoint allows it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mailcanary.config import Config, ConfigError, load_config
from mailcanary.probes.runner import run_probe
from tests.helpers.faults import Script, fake_server
from tests.helpers.support import PASSWORD

CLEAR = {"name": "a", "address": "a@example.test", "password": PASSWORD,
         "imap": {"host": "127.0.0.1", "port": 143, "security": "none"}}


def file_config(tmp_path: Path, body: str = "") -> Path:
    path = tmp_path / "c.toml"
    path.write_text(f'[daemon]\nstate_dir = "{tmp_path / "state"}"\n{body}')
    return path


def test_environment_account_with_clear_text_password_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MAILCANARY_ACCOUNTS", json.dumps([CLEAR]))
    with pytest.raises(ConfigError) as err:
        load_config(file_config(tmp_path))
    assert any(p.startswith("accounts[0].imap.security") and "clear text" in p
               for p in err.value.problems), err.value.problems


def test_environment_overriding_the_file_endpoint_is_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    safe = {**CLEAR, "imap": {"host": "127.0.0.1", "port": 993, "security": "tls"}}
    path = file_config(tmp_path)
    monkeypatch.setenv("MAILCANARY_ACCOUNTS", json.dumps([safe]))
    assert load_config(path).accounts[0].imap is not None
    monkeypatch.setenv("MAILCANARY_ACCOUNTS", json.dumps([CLEAR]))
    with pytest.raises(ConfigError):
        load_config(path)


def test_environment_routes_are_cross_referenced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    safe = {**CLEAR, "imap": {"host": "127.0.0.1", "port": 993, "security": "tls"}}
    monkeypatch.setenv("MAILCANARY_ACCOUNTS", json.dumps([safe]))
    monkeypatch.setenv("MAILCANARY_ROUTES", json.dumps([{"from": "a", "to": "nobody"}]))
    with pytest.raises(ConfigError) as err:
        load_config(file_config(tmp_path))
    assert "routes[0].to: no account named 'nobody'" in err.value.problems


async def test_the_client_never_sends_a_password_in_clear_text(tmp_path: Path) -> None:
    """A config built without the file checks (code, a future loader): the IMAP client
    itself refuses before any login command leaves."""
    script = Script("imap", capabilities="IMAP4rev1 AUTH=PLAIN SASL-IR")
    async with fake_server(script) as port:
        account = {**CLEAR, "imap": {"host": "127.0.0.1", "port": port, "security": "none"}}
        config = Config.model_validate({"daemon": {"state_dir": str(tmp_path)},
                                        "accounts": [account]})
        result = await run_probe("imap", "a", config)
    assert not result.ok and result.reason == "config_error", result
    assert "allow_insecure_auth" in result.detail
    assert not any("LOGIN" in line or "AUTHENTICATE" in line for line in script.received)
    assert PASSWORD not in json.dumps(result.as_json(transcript=True))
