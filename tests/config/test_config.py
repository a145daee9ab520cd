"""Config loading, validation messages with key paths, and secret handling."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import structlog

from mailcanary import __version__
from mailcanary.config import ConfigError, config_from_dict, load_config, parse_duration
from mailcanary.credentials import CredentialError, Secret, account_password
from tests.helpers.support import cli

GOOD = """
[daemon]
listen = "127.0.0.1:9782"
state_dir = "/tmp/mc-state"

[defaults]
interval = "60s"
timeout = 30

[[accounts]]
name = "alice"
address = "alice@example.test"
password_file = "alice"
imap = { host = "imap.example.test", port = 993, security = "tls" }
smtp = { host = "smtp.example.test", port = 587, security = "starttls" }

[[accounts]]
name = "bob"
address = "bob@example.test"
password_env = "BOB_PW"
interval = "2m"
imap = { host = "imap.example.test" }

[[routes]]
from = "alice"
to = "bob"
deadline = "10m"
slo = "1m30s"
"""


def test_good_config_and_defaults(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(GOOD)
    cfg = load_config(path)
    alice, bob = cfg.accounts
    assert alice.login == "alice@example.test"
    assert cfg.interval_of(alice) == 60 and cfg.interval_of(bob) == 120
    assert cfg.timeout_of(bob) == 30
    assert bob.imap is not None and bob.imap.effective_port == 993
    route = cfg.routes[0]
    assert route.route_name == "alice-to-bob" and route.slo == 90 and route.deadline == 600


@pytest.mark.parametrize(
    ("text", "seconds"),
    [(30, 30.0), ("30s", 30.0), ("5m", 300.0), ("1h", 3600.0), ("1h30m", 5400.0),
     ("500ms", 0.5), ("2.5", 2.5), (" 2m ", 120.0)],
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["", "5x", "m5", "-1s", 0, True, "1h-1m", [1]])
def test_bad_durations(bad: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(bad)


def problems(raw: dict[str, object]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        config_from_dict(raw)
    return info.value.problems


def acc(**kw: object) -> dict[str, object]:
    base: dict[str, object] = {
        "name": "alice",
        "address": "alice@example.test",
        "password_env": "X",
        "imap": {"host": "h"},
    }
    base.update(kw)
    return {k: v for k, v in base.items() if v is not None}


def test_every_problem_reported_with_its_path() -> None:
    found = problems(
        {
            "daemon": {"listen": "nope", "colour": "blue"},
            "accounts": [
                acc(),
                acc(name="bad name!", imap={"host": "h", "port": 70000}),
                acc(name="alice", password_file="/x"),
                acc(name="nocred", password_env=None, imap={"host": "h", "security": "none"}),
            ],
            "routes": [{"from": "alice", "to": "ghost"}],
        }
    )
    text = "\n".join(found)
    assert "daemon.listen: expected HOST:PORT" in text
    assert "daemon.colour: unknown key" in text
    assert "accounts[1].name:" in text
    assert "accounts[1].imap.port:" in text
    assert "accounts[2]: set exactly one of password_file, password_env, password, oauth2" in text
    assert "accounts[2].name: duplicate account name 'alice'" in text
    assert "accounts[3].imap.security: \"none\" would send the credentials" in text
    assert "routes[0].to: no account named 'ghost'" in text


def test_route_needs_smtp_sender_and_imap_receiver() -> None:
    found = problems(
        {
            "accounts": [acc(name="a"), acc(name="b", imap=None, smtp={"host": "h"})],
            "routes": [{"from": "a", "to": "b"}],
        }
    )
    assert "routes[0].from: account 'a' has no smtp to send with" in found
    assert "routes[0].to: account 'b' has no imap or pop3 to watch with" in found


def test_insecure_auth_allowed_when_explicit() -> None:
    cfg = config_from_dict(
        {"accounts": [acc(imap={"host": "h", "security": "none", "allow_insecure_auth": True})]}
    )
    assert cfg.accounts[0].imap is not None and cfg.accounts[0].imap.effective_port == 143


def test_oauth2_token_url_must_be_https_unless_loopback() -> None:
    base = {"client_id": "c", "refresh_token_env": "R"}
    found = problems(
        {"accounts": [acc(password_env=None, oauth2={**base, "token_url": "http://idp.test/t"})]}
    )
    assert any(p.startswith("accounts[0].oauth2.token_url: must use https") for p in found)
    cfg = config_from_dict(
        {"accounts": [acc(password_env=None,
                          oauth2={**base, "token_url": "http://127.0.0.1:8080/t"})]}
    )
    assert cfg.accounts[0].oauth2 is not None


async def test_validate_cli_exit_codes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "alice").write_text("pw\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    monkeypatch.setenv("BOB_PW", "pw")
    good = tmp_path / "good.toml"
    good.write_text(GOOD)
    code, out, _ = await cli("validate", "--config", str(good))
    assert code == 0 and "valid" in out
    bad = tmp_path / "bad.toml"
    bad.write_text(GOOD.replace('port = 993', 'port = "x"').replace("[defaults]", "[defaultz]"))
    code, out, err = await cli("validate", "--config", str(bad))
    assert code == 2
    assert "accounts[0].imap.port" in err and "defaultz: unknown key" in err
    assert "Traceback" not in out + err
    broken = tmp_path / "broken.toml"
    broken.write_text("[daemon\nlisten=")
    code, _, err = await cli("validate", "--config", str(broken))
    assert code == 2 and "not valid TOML" in err and "Traceback" not in err
    code, _, err = await cli("check", "--config", str(tmp_path / "missing.toml"))
    assert code == 2 and "cannot read the file" in err
    code, _, err = await cli("check", "--config", str(good), "--account", "zed")
    assert code == 2 and "no account named 'zed'" in err


async def test_version() -> None:
    code, out, _ = await cli("--version")
    assert code == 0 and __version__ in out


def test_secret_never_prints(capsys: pytest.CaptureFixture[str]) -> None:
    secret = Secret("hunter2-xyz")
    assert "hunter2" not in repr(secret) + str(secret) + f"{secret}" + f"{secret!r}"
    logging.getLogger("t").warning("value %s %r", secret, secret)
    structlog.get_logger().warning("value", secret=secret, nested={"s": secret})
    captured = capsys.readouterr()
    assert "hunter2" not in captured.out + captured.err
    assert secret.reveal() == "hunter2-xyz"


def test_password_file_newline_and_credentials_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "alice").write_text("pa ss\r\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    path = tmp_path / "c.toml"
    path.write_text(GOOD)
    cfg = load_config(path)
    assert account_password(cfg.accounts[0]).reveal() == "pa ss"
    (tmp_path / "alice").write_text("two\n\n")
    with pytest.raises(CredentialError, match="control character"):  # only one newline goes
        account_password(cfg.accounts[0])
    monkeypatch.setenv("BOB_PW", "from-env\n")
    assert account_password(cfg.accounts[1]).reveal() == "from-env"


def test_secret_from_the_units_credentials_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`LoadCredential=mailcanary:/etc/mailcanary/secrets` (one line for every account)
    gives each file as `mailcanary_<name>`; `password_file = "alice"` finds it. A file
    named as is (one LoadCredential per secret, a Kubernetes secret volume) wins."""
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "mailcanary_alice").write_text("from-the-directory\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    path = tmp_path / "c.toml"
    path.write_text(GOOD)
    cfg = load_config(path)
    assert account_password(cfg.accounts[0]).reveal() == "from-the-directory"
    (creds / "alice").write_text("its-own-credential\n")
    assert account_password(cfg.accounts[0]).reveal() == "its-own-credential"


def test_unreadable_secret_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path / "creds"))
    path = tmp_path / "c.toml"
    path.write_text(GOOD)
    cfg = load_config(path)
    with pytest.raises(CredentialError, match=str(tmp_path / "creds" / "alice")):
        account_password(cfg.accounts[0])
    monkeypatch.delenv("BOB_PW", raising=False)
    with pytest.raises(CredentialError, match="BOB_PW is not set"):
        account_password(cfg.accounts[1])


def test_env_overrides_daemon_listen(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "c.toml"
    path.write_text(GOOD)
    monkeypatch.setenv("MAILCANARY_DAEMON__LISTEN", "127.0.0.1:9999")
    assert load_config(path).daemon.listen_port == 9999


def test_example_config_is_valid() -> None:
    example = Path(__file__).resolve().parents[2] / "config" / "example.toml"
    cfg = load_config(example)
    assert cfg.accounts and cfg.routes and cfg.alerts
