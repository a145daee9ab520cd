"""Provider presets: what they fill in, that given keys win, and how `validate` and
`check --json` show them (`server` = the probed host:port after the preset)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from mailcanary.config import ConfigError, config_from_dict
from mailcanary.config.presets import PRESETS, PROVIDERS
from tests.helpers.support import check_json, cli, password_file


def acc(**kw: object) -> dict[str, object]:
    return {"name": "a", "address": "a@example.test", "password_env": "PW", **kw}


def test_no_endpoint_declared_takes_imap_and_smtp() -> None:
    account = config_from_dict({"accounts": [acc(provider="gmail")]}).accounts[0]
    assert account.imap is not None and account.smtp is not None and account.pop3 is None
    assert (account.imap.host, account.imap.effective_port, account.imap.security) == (
        "imap.gmail.com", 993, "tls")
    assert (account.smtp.host, account.smtp.effective_port, account.smtp.security) == (
        "smtp.gmail.com", 465, "tls")


@pytest.mark.parametrize("provider", PROVIDERS)
def test_every_preset_fills_declared_endpoints(provider: str) -> None:
    declared: dict[str, dict[str, object]] = {proto: {} for proto in PRESETS[provider]}
    account = config_from_dict({"accounts": [acc(provider=provider, **declared)]}).accounts[0]
    for proto, (host, port, security) in PRESETS[provider].items():
        endpoint = getattr(account, proto)
        assert (endpoint.host, endpoint.effective_port, endpoint.security) == (host, port, security)


def test_explicit_keys_win() -> None:
    account = config_from_dict({"accounts": [acc(
        provider="outlook", pop3={"port": 1995}, imap={"host": "imap.example.test"},
        smtp={"security": "tls"})]}).accounts[0]
    assert account.pop3 is not None and account.imap is not None and account.smtp is not None
    assert (account.pop3.host, account.pop3.effective_port) == ("outlook.office365.com", 1995)
    assert (account.imap.host, account.imap.effective_port) == ("imap.example.test", 993)
    # A security given alone takes that security's standard port, not the preset's 587.
    assert (account.smtp.host, account.smtp.effective_port, account.smtp.security) == (
        "smtp-mail.outlook.com", 465, "tls")


def test_only_declared_endpoints_are_filled() -> None:
    account = config_from_dict({"accounts": [acc(provider="yahoo_jp", pop3={})]}).accounts[0]
    assert account.imap is None and account.smtp is None
    assert account.pop3 is not None and account.pop3.host == "pop.mail.yahoo.co.jp"


@pytest.mark.parametrize(("raw", "problem"), [
    (acc(provider="icloud", pop3={}), "accounts[0].pop3: provider 'icloud' offers no POP3"),
    (acc(provider="docomo", pop3={}), "accounts[0].pop3: provider 'docomo' offers no POP3"),
    (acc(provider="aol"), "accounts[0].provider: Input should be 'gmail'"),
    (acc(provider="gmail", imap={"port": "x"}), "accounts[0].imap.port"),
])
def test_bad_presets_name_the_key(raw: dict[str, object], problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        config_from_dict({"accounts": [raw]})
    assert any(p.startswith(problem) for p in info.value.problems), info.value.problems


def test_preset_only_account_can_send_receive_and_be_watched() -> None:
    """Cross-references see the preset's imap and smtp of an account that declares none."""
    raw = {"accounts": [acc(provider="icloud"), {**acc(provider="gmail"), "name": "b"}],
           "routes": [{"from": "a", "to": "b"}],
           "inbound": [{"name": "w", "account": "a", "match": {"subject": "x"}}]}
    config = config_from_dict(raw)
    assert config.routes[0].route_name == "a-to-b"


async def test_validate_cli_with_presets(tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PW", "secret")
    good = tmp_path / "good.toml"
    good.write_text('[[accounts]]\nname = "a"\naddress = "a@example.test"\n'
                    'password_env = "PW"\nprovider = "docomo"\n')
    code, out, err = await cli("validate", "--config", str(good))
    assert code == 0 and "valid (1 account(s)" in out, err
    bad = tmp_path / "bad.toml"
    bad.write_text(good.read_text() + "pop3 = {}\n")
    code, out, err = await cli("validate", "--config", str(bad))
    assert code == 2 and "accounts[0].pop3: provider 'docomo' offers no POP3" in err
    assert "Traceback" not in out + err


def _netns_works() -> bool:
    if shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "-n", "true"], capture_output=True,
                          check=False).returncode == 0


@pytest.mark.skipif(not _netns_works(), reason="unshare -n is not permitted here")
async def test_check_json_server_shows_preset_and_explicit_keys(tmp_path: Path) -> None:
    """In an empty network namespace (nothing can leave the machine) the probes fail at DNS,
    but `server` says what would have been probed: the preset's host:port, or the key given."""
    pw = password_file(tmp_path)
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        f'[[accounts]]\nname = "g"\naddress = "g@example.test"\npassword_file = "{pw}"\n'
        f'timeout = "2s"\nprovider = "gmail"\npop3 = {{}}\nimap = {{ port = 1993 }}\n'
        f'smtp = {{ host = "smtp.example.test" }}\n')
    code, rows, out = await check_json(cfg, prefix=("unshare", "-n"))
    assert code == 1, out
    servers = {r["probe"]: r["server"] for r in rows}
    assert servers == {"imap": "imap.gmail.com:1993", "smtp": "smtp.example.test:465",
                       "pop3": "pop.gmail.com:995"}
    assert all(r["class"] == "dns" and "suggestion" not in r for r in rows), rows
