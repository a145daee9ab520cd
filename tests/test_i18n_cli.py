"""`check` in Japanese, through the public command line: --lang, [daemon] language and the
locale variables choose the language; codes and JSON keys stay English; a language we do not
have, or a wrong one in the config, never ends in a traceback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mailcanary import i18n
from mailcanary.diagnosis.hints import HINTS
from mailcanary.i18n.width import columns
from mailcanary.testbed import MailTestBed
from tests.helpers.daemon_support import free_port
from tests.helpers.support import account, cli, endpoint, password_file, write_config

# No locale variable unless a test sets one: the environment's own LANG must not decide.
NO_LOCALE: dict[str, str | None] = {"LC_ALL": None, "LC_MESSAGES": None, "LANG": None}


def refused_config(tmp: Path, extra_daemon: str = "") -> tuple[Path, int]:
    """An account whose IMAP port has nothing listening: a real connection_refused."""
    port = free_port()
    cfg = write_config(tmp, account("alice", imap=endpoint("127.0.0.1", port),
                                    password_file=password_file(tmp)))
    if extra_daemon:
        cfg.write_text(cfg.read_text().replace("[daemon]\n", f"[daemon]\n{extra_daemon}\n", 1))
    return cfg, port


async def check_rows(
    cfg: Path, *args: str, env: dict[str, str | None] | None = None
) -> tuple[int, list[dict[str, Any]], str]:
    code, out, err = await cli("check", "--config", str(cfg), "--json", *args,
                               env_update={**NO_LOCALE, **(env or {})})
    return code, [json.loads(line) for line in out.splitlines() if line.strip()], err


def refused_hint(language: str, port: int) -> str:
    return i18n.translator(language).gettext(HINTS["connection_refused"]).format(
        host="127.0.0.1", port=port)


async def test_json_in_japanese_keeps_codes_and_keys(tmp_path: Path) -> None:
    cfg, port = refused_config(tmp_path)
    code_en, [en], _ = await check_rows(cfg)
    code_ja, [ja], err = await check_rows(cfg, "--lang", "ja")
    assert code_en == code_ja == 1 and "Traceback" not in err
    assert list(ja) == list(en)  # the same keys, in the same order
    for key in ("probe", "target", "ok", "class", "reason", "phase", "detail"):
        assert ja[key] == en[key]
    assert (ja["class"], ja["reason"], ja["phase"]) == ("network", "connection_refused",
                                                         "connect")
    assert en["hint"] == refused_hint("en", port)
    assert ja["hint"] == refused_hint("ja", port)
    assert f"127.0.0.1:{port} では接続を受け付けていません。" in ja["hint"]


async def test_table_in_japanese(tmp_path: Path) -> None:
    cfg, port = refused_config(tmp_path)
    code, out, err = await cli("check", "--config", str(cfg), "--lang", "ja",
                               env_update={**NO_LOCALE, "COLUMNS": "60"})
    assert code == 1 and "Traceback" not in err
    lines = out.splitlines()
    assert lines[0].split() == ["種類", "対象", "サーバー", "結果", "段階", "所要時間", "証明書"]
    row = lines[1].split()
    assert row[:5] == ["imap", "alice", f"127.0.0.1:{port}", "network/connection_refused",
                       "connect"]
    # Wide characters take two columns: the row's cells start under their headings.
    for heading, cell in (("対象", "alice"), ("サーバー", "127.0.0.1:"), ("結果", "network/")):
        assert columns(lines[0][:lines[0].index(heading)]) == lines[1].index(cell)
    assert any(line.startswith("    詳細: ") for line in lines)
    hint_lines = [line for line in lines if line.startswith("    対処方法: ")]
    assert len(hint_lines) == 1 and f"127.0.0.1:{port}" in hint_lines[0]
    assert lines[-1] == "正常 0 件、失敗 1 件"
    notes = [line for line in lines if line.startswith("    ")]  # wrapped to the terminal
    assert notes and all(columns(line) <= 60 for line in notes), "\n".join(lines)
    # The wrapped hint, joined again, is the whole Japanese hint.
    start = lines.index(hint_lines[0])
    body = hint_lines[0].removeprefix("    対処方法: ")
    for line in lines[start + 1:]:
        if not line.startswith("      "):
            break
        body += line.strip()
    assert body.replace(" ", "") == refused_hint("ja", port).replace(" ", "")


@pytest.mark.parametrize(
    ("env", "language"),
    [
        ({"LANG": "ja_JP.UTF-8"}, "ja"),
        ({"LC_MESSAGES": "ja_JP.UTF-8", "LANG": "C.UTF-8"}, "ja"),
        ({"LC_ALL": "C.UTF-8", "LANG": "ja_JP.UTF-8"}, "en"),
        ({"LANG": "fr_FR.UTF-8"}, "en"),
        ({}, "en"),
    ],
)
async def test_language_from_the_locale(
    tmp_path: Path, env: dict[str, str | None], language: str
) -> None:
    cfg, port = refused_config(tmp_path)
    _, [row], err = await check_rows(cfg, env=env)
    assert row["hint"] == refused_hint(language, port)
    assert "Traceback" not in err and err.strip() == ""


async def test_config_language_and_the_flag_over_it(tmp_path: Path) -> None:
    cfg, port = refused_config(tmp_path, 'language = "ja"')
    _, [row], _ = await check_rows(cfg, env={"LANG": "C.UTF-8"})
    assert row["hint"] == refused_hint("ja", port)
    _, [row], _ = await check_rows(cfg, "--lang", "en", env={"LANG": "ja_JP.UTF-8"})
    assert row["hint"] == refused_hint("en", port)


async def test_unknown_language_flag_is_english_with_a_warning(tmp_path: Path) -> None:
    cfg, port = refused_config(tmp_path)
    code, [row], err = await check_rows(cfg, "--lang", "fr")
    assert code == 1 and row["hint"] == refused_hint("en", port)
    assert "no translation for --lang 'fr'" in err and "Traceback" not in err


async def test_wrong_language_in_the_config_is_a_config_error(tmp_path: Path) -> None:
    cfg, _ = refused_config(tmp_path, 'language = "fr"')
    code, out, err = await cli("check", "--config", str(cfg), env_update=NO_LOCALE)
    assert code == 2 and out == ""
    assert "daemon.language" in err and "Traceback" not in err


@pytest.mark.testbed
async def test_wrong_password_in_japanese(testbed: MailTestBed, tmp_path: Path) -> None:
    user = testbed.user("alice")
    cfg = write_config(tmp_path, account(
        "alice", username=user.name, password_file=password_file(tmp_path, "Wr0ng-Pass-ja-77"),
        ca_file=testbed.ca_pem, imap=endpoint(testbed.host, testbed.imaps_port, "tls")))
    code, [row], err = await check_rows(cfg, "--lang", "ja")
    assert code == 1 and "Traceback" not in err
    assert (row["class"], row["reason"], row["phase"]) == ("auth", "invalid_credentials", "auth")
    assert row["hint"].startswith("サーバーがユーザー名またはパスワードを受け付けませんでした。"
                                  "パスワードが変更された可能性があります。")
    assert "AUTHENTICATIONFAILED" in row["detail"]  # the server's own words, untranslated
