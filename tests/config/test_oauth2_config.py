"""OAuth2 config keys: provider presets, overrides and what `validate` says about mistakes."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailcanary.config import ConfigError, config_from_dict, load_config
from tests.helpers.support import cli


def account(oauth2: dict[str, object]) -> dict[str, object]:
    return {"accounts": [{"name": "acc", "address": "a@example.test", "oauth2": oauth2,
                          "imap": {"host": "imap.example.test"}}]}


def problems(oauth2: dict[str, object]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        config_from_dict(account(oauth2))
    return info.value.problems


BASE = {"client_id": "cid", "refresh_token_file": "/run/rt"}


def test_google_preset() -> None:
    cfg = config_from_dict(account({"provider": "google", **BASE})).accounts[0].oauth2
    assert cfg is not None
    assert cfg.effective_token_url == "https://oauth2.googleapis.com/token"
    assert cfg.effective_scope == "https://mail.google.com/"
    assert cfg.effective_mechanism == "xoauth2"
    assert cfg.effective_authorization_url == "https://accounts.google.com/o/oauth2/v2/auth"
    assert cfg.effective_device_authorization_url is None


def test_microsoft_presets_and_overrides() -> None:
    cfg = config_from_dict(account({"provider": "microsoft", **BASE})).accounts[0].oauth2
    assert cfg is not None
    assert cfg.effective_token_url == (
        "https://login.microsoftonline.com/common/oauth2/v2.0/token")
    assert cfg.effective_scope == ("https://outlook.office.com/IMAP.AccessAsUser.All "
                                   "https://outlook.office.com/SMTP.Send offline_access")
    app = config_from_dict(account({
        "provider": "microsoft", "tenant": "contoso.onmicrosoft.com", "client_id": "cid",
        "grant": "client_credentials", "client_secret_env": "SECRET",
        "mechanism": "oauthbearer",
    })).accounts[0].oauth2
    assert app is not None
    assert app.effective_token_url == (
        "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token")
    assert app.effective_scope == "https://outlook.office365.com/.default"
    assert app.effective_mechanism == "oauthbearer"
    custom = config_from_dict(account({
        "provider": "microsoft", "scope": "x", "token_url": "https://idp.example/token",
        **BASE})).accounts[0].oauth2
    assert custom is not None
    assert (custom.effective_scope, custom.effective_token_url) == (
        "x", "https://idp.example/token")


@pytest.mark.parametrize(
    ("oauth2", "expected"),
    [
        ({"client_id": "c", "refresh_token_file": "/r"},
         "accounts[0].oauth2: set provider"),
        ({"token_url": "http://idp.example/token", **BASE},
         "accounts[0].oauth2.token_url: must use https"),
        ({"provider": "google", "client_id": "c"},
         "accounts[0].oauth2: the refresh_token grant needs exactly one"),
        ({"provider": "google", "client_id": "c", "grant": "client_credentials",
          "client_secret_env": "S"}, "Google offers no client_credentials"),
        ({"provider": "microsoft", "client_id": "c", "grant": "client_credentials",
          "client_secret_env": "S"}, "needs tenant"),
        ({"provider": "google", "tenant": "t", **BASE}, "tenant is only used"),
        ({"provider": "google", "mechanism": "plain", **BASE},
         "accounts[0].oauth2.mechanism: Input should be 'xoauth2' or 'oauthbearer'"),
        ({"provider": "google", "client_id": "c", "refresh_token_file": "/r",
          "refresh_token": "x"}, "accounts[0].oauth2.refresh_token: unknown key"),
    ],
)
def test_mistakes_are_named_with_their_key_path(
    oauth2: dict[str, object], expected: str
) -> None:
    found = problems(oauth2)
    assert any(expected in p for p in found), found


def test_loopback_http_token_url_is_allowed() -> None:
    for host in ("127.0.0.1:8080", "localhost", "[::1]:9"):
        config_from_dict(account({"token_url": f"http://{host}/token", **BASE}))


async def test_validate_cli_reports_oauth2_problems(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[[accounts]]\nname = "acc"\naddress = "a@example.test"\n'
                    'imap = { host = "imap.example.test" }\n'
                    'oauth2 = { token_url = "http://idp.example/t", client_id = "c", '
                    'refresh_token_file = "/r" }\n')
    code, _, err = await cli("validate", "--config", str(path))
    assert code == 2 and "accounts[0].oauth2.token_url: must use https" in err
    good = tmp_path / "g.toml"
    good.write_text(path.read_text().replace("http://idp", "https://idp"))
    assert load_config(good).accounts[0].oauth2 is not None
