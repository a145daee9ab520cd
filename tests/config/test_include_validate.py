"""include = [...], what `validate` catches before `check` trips (errors, warnings,
--strict), "did you mean", and the route default interval."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailcanary.config import ConfigError, config_from_dict, load_config, warnings_for
from mailcanary.config.includes import expand
from mailcanary.probes import PROBES
from tests.helpers.support import cli

MAIN = """include = ["conf.d/*.toml", "extra.toml"]
[daemon]
state_dir = "{state}"

[[accounts]]
name = "main"
address = "main@example.test"
password_env = "MC_TEST_PW"
imap = {{ host = "imap.example.test" }}
"""


def _account(name: str, **extra: str) -> str:
    keys = {"name": f'"{name}"', "address": f'"{name}@example.test"',
            "password_env": '"MC_TEST_PW"', "imap": '{ host = "imap.example.test" }',
            "smtp": '{ host = "smtp.example.test" }', **extra}
    if "password_file" in extra:
        del keys["password_env"]
    return "[[accounts]]\n" + "".join(f"{k} = {v}\n" for k, v in keys.items())


def _tree(tmp: Path, files: dict[str, str]) -> Path:
    (tmp / "conf.d").mkdir()
    (tmp / "state").mkdir()
    main = tmp / "mailcanary.toml"
    main.write_text(MAIN.format(state=tmp / "state"))
    for name, text in files.items():
        (tmp / name).write_text(text)
    return main


def test_include_merges_sorted_and_names_files(tmp_path: Path) -> None:
    main = _tree(tmp_path, {
        "conf.d/20-b.toml": _account("b") + '[[routes]]\nfrom = "a"\nto = "b"\n',
        "conf.d/10-a.toml": _account("a"),
        "extra.toml": _account("c"),
        "conf.d/notes.txt": "not toml at all [",
    })
    config = load_config(main)
    assert [a.name for a in config.accounts] == ["main", "a", "b", "c"]
    assert config.routes[0].route_name == "a-to-b"
    _, sources = expand(main)
    assert sources.files == [main, tmp_path / "conf.d/10-a.toml",
                             tmp_path / "conf.d/20-b.toml", tmp_path / "extra.toml"]
    assert tmp_path / "conf.d" in sources.watched_dirs()


def test_include_errors_name_the_file_and_key_path(tmp_path: Path) -> None:
    main = _tree(tmp_path, {
        "conf.d/10-a.toml": _account("a") + _account("b", imap='{ host = "h", port = "x" }'),
        "conf.d/20-b.toml": _account("a"),
        "extra.toml": "[daemon]\nlisten = \"127.0.0.1:1\"\n",
    })
    with pytest.raises(ConfigError) as info:
        load_config(main)
    assert info.value.problems == [
        f"{tmp_path}/extra.toml: daemon: not allowed in an included file (only accounts, "
        "routes, inbound, domains, alerts; include is read from the main file only)"]
    (tmp_path / "extra.toml").write_text("")
    with pytest.raises(ConfigError) as info:
        load_config(main)
    problems = info.value.problems
    assert f"{tmp_path}/conf.d/10-a.toml: accounts[1].imap.port: Input should be a valid " \
        "integer, unable to parse string as an integer" in problems
    assert f"{tmp_path}/conf.d/20-b.toml: accounts[0].name: duplicate account name 'a'" \
        in problems
    (tmp_path / "conf.d/20-b.toml").write_text("[[accounts]\n")
    with pytest.raises(ConfigError) as info:
        load_config(main)
    assert info.value.problems[0].startswith(f"{tmp_path}/conf.d/20-b.toml: not valid TOML")


@pytest.mark.parametrize(("raw", "problem"), [
    ({"account": [{}]}, "account: unknown key (did you mean 'accounts'?)"),
    ({"accounts": [{"name": "a", "address": "a@x", "password": "p",
                    "imap": {"host": "h", "prot": 993}}]},
     "accounts[0].imap.prot: unknown key (did you mean 'port'?)"),
    ({"accounts": [{"name": "a", "address": "a@x", "password": "p", "provider": "gmali"}]},
     "(did you mean 'gmail'?)"),
    ({"accounts": [{"name": "a", "address": "a@x", "password": "p",
                    "imap": {"host": "h", "security": "ssl"}}]},
     "accounts[0].imap.security: Input should be 'tls', 'starttls' or 'none' "
     "(did you mean 'tls'?)"),
    ({"accounts": [{"name": "a b", "address": "a@x", "password": "p", "imap": {"host": "h"}}]},
     "accounts[0].name: 'a b': a name may use only the letters A to Z and a to z, the digits"),
])
def test_did_you_mean_and_rules_in_words(raw: dict[str, object], problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        config_from_dict(raw)
    assert any(problem in p for p in info.value.problems), info.value.problems
    assert not any("^[" in p for p in info.value.problems)


def _warnings(**parts: object) -> list[str]:
    raw = {"accounts": [{"name": "a", "address": "a@x", "password_env": "P",
                         "imap": {"host": "h"}, "smtp": {"host": "s"}}], **parts}
    return warnings_for(config_from_dict(raw))


def test_warnings_name_the_key_path() -> None:
    assert _warnings() == []
    acc = {"address": "x@x", "password_env": "P"}
    found = _warnings(
        defaults={"interval": "30s", "timeout": "30s"},
        routes=[{"from": "a", "to": "a", "interval": "1m", "slo": "10m", "deadline": "5m"}],
    )
    assert [w.split(":")[0] for w in found] == [
        "defaults.timeout", "routes[0].slo", "routes[0].interval"]
    found = warnings_for(config_from_dict({"accounts": [
        {**acc, "name": "p1", "imap": {"host": "h", "port": 993, "security": "starttls"}},
        {**acc, "name": "p2", "smtp": {"host": "h", "port": 587, "security": "tls"}},
        {**acc, "name": "p3", "pop3": {"host": "h", "port": 995, "security": "tls"}},
        {**acc, "name": "m", "provider": "microsoft365"},
        {**acc, "name": "t", "timeout": "2m", "imap": {"host": "h"}},
    ]}))
    assert [w.split(":")[0] for w in found] == [
        "accounts[0].imap.security", "accounts[1].smtp.security",
        "accounts[3].provider", "accounts[4].timeout"]


def test_email_sink_warning_only_when_its_server_is_monitored_for_others() -> None:
    sink = {"kind": "email", "account": "a", "to": ["ops@x"]}
    assert _warnings(alerts=[sink]) == []  # the sink account's own server alone: no warning
    other = {"name": "b", "address": "b@x", "password_env": "P", "smtp": {"host": "s"}}
    raw = {"accounts": [{"name": "a", "address": "a@x", "password_env": "P",
                         "smtp": {"host": "s"}}, other], "alerts": [sink]}
    assert [w.split(":")[0] for w in warnings_for(config_from_dict(raw))] == [
        "alerts[0].account"]
    raw["alerts"] = [sink, {"kind": "webhook", "url": "https://hooks.example/x"}]
    assert warnings_for(config_from_dict(raw)) == []  # another sink covers that outage


def test_route_interval_defaults_to_15_minutes() -> None:
    raw = {"defaults": {"interval": "60s"},
           "accounts": [{"name": "a", "address": "a@x", "password_env": "P",
                         "imap": {"host": "h"}, "smtp": {"host": "s"}}],
           "routes": [{"from": "a", "to": "a"}, {"name": "r2", "from": "a", "to": "a",
                                                  "interval": "20m"}]}
    config = config_from_dict(raw)
    kind = PROBES["roundtrip"]
    assert kind.interval(config, "a-to-a") == 900
    assert kind.interval(config, "r2") == 1200
    assert PROBES["imap"].interval(config, "a") == 60


async def test_validate_fails_on_what_check_would_fail(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MC_TEST_PW", raising=False)
    main = _tree(tmp_path, {"conf.d/a.toml": _account(
        "a", password_file='"/nonexistent/pw"', ca_file='"/nonexistent/ca.pem"')})
    text = main.read_text().replace('password_env = "MC_TEST_PW"', 'password_env = "MC_T2"')
    main.write_text(text)
    code, out, err = await cli("validate", "--config", str(main))
    assert code == 2, out + err
    assert "accounts[0].password_env: password_env: environment variable MC_T2 is not set" \
        in err
    assert f"{tmp_path}/conf.d/a.toml: accounts[0].password_file: cannot read password_file" \
        " /nonexistent/pw: no such file" in err
    assert f"{tmp_path}/conf.d/a.toml: accounts[0].ca_file: /nonexistent/ca.pem: no such " \
        "file" in err
    assert "Traceback" not in out + err
    sa = tmp_path / "sa.toml"
    sa.write_text('[[accounts]]\nname = "w"\naddress = "w@example.com"\nimap = { host = "h" }\n'
                  'oauth2 = { provider = "google", grant = "jwt_bearer", '
                  'service_account_file = "/nonexistent/key.json", subject = "w@example.com" }\n')
    code, out, err = await cli("validate", "--config", str(sa))
    assert code == 2 and "accounts[0].oauth2.service_account_file: /nonexistent/key.json: " \
        "no such file" in err, out + err
    empty = tmp_path / "empty.toml"
    empty.write_text("[defaults]\ninterval = 60\n")
    code, out, err = await cli("validate", "--config", str(empty))
    assert code == 2 and "nothing to probe" in err


async def test_validate_warnings_and_strict(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MC_TEST_PW", "pw")
    main = _tree(tmp_path, {"extra.toml": _account(
        "w", imap='{ host = "h", port = 143, security = "tls" }')})
    code, out, err = await cli("validate", "--config", str(main))
    assert code == 0 and "valid (2 account(s)" in out, err
    assert f"warning: {tmp_path}/extra.toml: accounts[0].imap.security: port 143" in err
    code, out, err = await cli("validate", "--strict", "--config", str(main))
    assert code == 2 and "--strict" in err
    (tmp_path / "extra.toml").write_text(_account("w"))
    code, out, err = await cli("validate", "--strict", "--config", str(main))
    assert code == 0 and "warning" not in err, err
