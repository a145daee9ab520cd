"""The Japanese catalog: complete for every reason and every sentence marked in the code,
placeholders that fit, the polite style; and the translator's behaviour (fallbacks, Text).

A new reason in the taxonomy (dns_policy/*, reputation/*, ...) fails here until it has an
English hint in diagnosis/hints.py and its Japanese translation in the catalog.
"""

from __future__ import annotations

import pickle
import re
import string
import tomllib
from collections.abc import Iterator
from email.message import Message
from io import BytesIO
from pathlib import Path

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from mailcanary import i18n
from mailcanary.diagnosis import TAXONOMY, Where, failure
from mailcanary.diagnosis.classify import oauth_failure
from mailcanary.diagnosis.doctor import Candidate, suggestion_hint
from mailcanary.diagnosis.errors import OAuthTokenError
from mailcanary.diagnosis.hints import HINTS, OAUTH_HINTS
from mailcanary.diagnosis.providers import PROVIDER_HINTS
from mailcanary.diagnosis.spam import explain_spam
from mailcanary.i18n import catalog
from mailcanary.i18n.text import Text

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "mailcanary"
PO = PACKAGE / "locale" / "ja" / "LC_MESSAGES" / "mailcanary.po"
# The keywords scripts/i18n.sh extracts with (Babel's defaults: _, gettext, ngettext, N_ ...).
KEYWORDS = {**DEFAULT_KEYWORDS, "Text": None, "tr": None}


def ja_entries() -> dict[str, tuple[str, bool]]:
    """msgid -> (Japanese, fuzzy) straight from the .po file in the repository."""
    cat = read_po(BytesIO(PO.read_bytes()))
    out = {}
    for m in cat:
        if not m.id:
            continue
        msgid, string = m.id, m.string
        if isinstance(msgid, tuple | list):  # a plural: checked through its first forms
            msgid = msgid[0]
            string = string[0] if isinstance(string, tuple | list) and string else ""
        out[str(msgid)] = (str(string or ""), m.fuzzy)
    return out


def fields(template: str) -> list[str]:
    return sorted(name for _, name, _, _ in string.Formatter().parse(template) if name)


def marked_in_source() -> Iterator[tuple[str, str]]:
    """(file:line, msgid) of every sentence the code (and any template babel.cfg maps)
    marks for translation; a plural gives its singular."""
    with (ROOT / "babel.cfg").open() as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)  # type: ignore[no-untyped-call]
    for filename, line, message, _, _ in extract_from_dir(
        str(ROOT), method_map=method_map, options_map=options_map, keywords=KEYWORDS
    ):
        msgid = message[0] if isinstance(message, tuple | list) else message
        if isinstance(msgid, str) and msgid:
            yield f"{filename}:{line}", msgid


def test_every_reason_has_a_japanese_hint() -> None:
    entries = ja_entries()
    missing = []
    for cls, reasons in TAXONOMY.items():
        for reason in reasons:
            if reason == "ok":
                continue
            english = HINTS.get(reason)
            if not english:
                missing.append(f"{cls}/{reason}: no English hint in diagnosis/hints.py")
                continue
            japanese, fuzzy = entries.get(english, ("", False))
            if not japanese or fuzzy or japanese == english:
                missing.append(f"{cls}/{reason}: no Japanese hint in {PO.name}")
    assert not missing, "\n".join(missing)


def test_every_marked_sentence_is_translated() -> None:
    entries = ja_entries()
    untranslated = sorted(
        f"{where}: {msgid!r}"
        for where, msgid in marked_in_source()
        if not entries.get(msgid, ("", False))[0] or entries[msgid][1]
    )
    assert not untranslated, "run ./scripts/i18n.sh and translate:\n" + "\n".join(untranslated)
    assert len(entries) >= len(HINTS) + len(OAUTH_HINTS)


def test_placeholders_are_the_same_in_both_languages() -> None:
    wrong = []
    for msgid, (japanese, _) in ja_entries().items():
        if not japanese:
            continue
        if fields(msgid) != fields(japanese):
            wrong.append(f"{msgid!r}: {fields(msgid)} != {fields(japanese)}")
            continue
        values = dict.fromkeys(fields(msgid), "X")
        try:
            japanese.format(**values)
        except (ValueError, KeyError, IndexError) as exc:  # a stray "{" or "}"
            wrong.append(f"{japanese!r}: {exc}")
    assert not wrong, "\n".join(wrong)


_POLITE_END = re.compile(r"(です|ます|ました|ません|でした|ください|\})$")


def test_japanese_sentences_are_polite() -> None:
    """です・ます: every sentence ends politely (a clause in parentheses aside)."""
    plain: list[str] = []
    for msgid, (japanese, _) in ja_entries().items():
        if not msgid.endswith(".") or not japanese:
            continue
        assert japanese.endswith("。"), japanese
        text = japanese
        while (shorter := re.sub(r"（[^（）]*）", "", text)) != text:
            text = shorter  # asides in parentheses may be phrases
        plain.extend(s for s in text.split("。")[:-1] if not _POLITE_END.search(s.strip()))
    assert not plain, "\n".join(plain)


def test_japanese_hints_read_as_a_japanese_user_expects() -> None:
    ja = i18n.translator("ja")
    wrong_password = failure("invalid_credentials", "", Where("imap.example.jp", 993))
    assert "パスワードが変更された可能性があります。" in ja.text(wrong_password.hint)
    login = {name: ja.text(PROVIDER_HINTS[name]["*"]) for name in PROVIDER_HINTS}
    assert "ドコモメール" in login["docomo"] and "My docomo" in login["docomo"]
    assert "ソフトバンク" in login["softbank"] and "My SoftBank" in login["softbank"]
    assert "Yahoo!メール" in login["yahoo_jp"] and "IMAP/POP/SMTPアクセス" in login["yahoo_jp"]
    assert "iCloud メール" in login["icloud"] and "App 用パスワード" in login["icloud"]
    assert "Gmail" in login["gmail"] and "アプリ パスワード" in login["gmail"]
    # The nested parts (the tenant's name, where the switch is) are Japanese too.
    assert "2024 年 9 月 16 日以降" in login["outlook"]
    assert "Microsoft 365 管理センター" in login["microsoft365"]


def test_text_keeps_english_and_renders_japanese_with_its_values() -> None:
    hint = failure("connection_refused", "", Where("mx.example.jp", 2525)).hint
    assert isinstance(hint, Text)
    assert hint.startswith("Nothing accepts connections on mx.example.jp:2525.")
    assert i18n.translator("en").text(hint) == hint
    japanese = i18n.translator("ja").text(hint)
    assert japanese.startswith("mx.example.jp:2525 では接続を受け付けていません。")
    # A Text survives pickling (state handed between processes) with its parts.
    assert i18n.translator("ja").text(pickle.loads(pickle.dumps(hint))) == japanese
    # Any other string (server words, a name) is shown as it is.
    assert i18n.translator("ja").text("535 5.7.8 Error") == "535 5.7.8 Error"


def test_values_inside_a_hint_are_translated_too() -> None:
    ja = i18n.translator("ja")
    nowhere = failure("timeout", "", None, None).hint  # no endpoint, no phase known
    assert ja.text(nowhere) == ja.gettext(HINTS["timeout"]).format(
        phase="確認中", host="サーバー", port="?")
    suggestion = suggestion_hint("imap", "mail.example.jp", Candidate(993, "tls"))
    text = ja.text(suggestion)
    assert "ポート 993 番の SSL/TLS で IMAP に応答しています" in text
    assert 'imap = { host = "mail.example.jp", port = 993, security = "tls" }' in text
    token = oauth_failure(OAuthTokenError("alice", "invalid_grant", "revoked")).hint
    assert "`mailcanary oauth2 authorize --account alice`" in ja.text(token)
    assert "リフレッシュトークン" in ja.text(token)


def test_spam_hint_sentences_join_the_japanese_way() -> None:
    headers = Message()
    headers["Authentication-Results"] = (
        "mx.example.jp; spf=fail smtp.mailfrom=a@shop.example; dkim=none"
    )
    hint = explain_spam(headers).hint
    english, japanese = i18n.translator("en").text(hint), i18n.translator("ja").text(hint)
    assert english == hint and ". The message carries" in english
    assert "shop.example の SPF の判定結果は fail でした。" in japanese
    assert "。メールに DKIM 署名がありません。" in japanese  # no space between sentences


@pytest.mark.parametrize(
    ("value", "code"),
    [("ja", "ja"), ("ja_JP.UTF-8", "ja"), ("ja-JP", "ja"), ("JA_jp.eucJP", "ja"),
     ("en_US.UTF-8", "en"), ("C", "en"), ("C.UTF-8", "en"), ("POSIX", "en"),
     ("fr_FR.UTF-8", "en"), ("", "en"), ("ja_JP@euro", "ja")],
)
def test_language_codes(value: str, code: str) -> None:
    assert i18n.normalize(value) == code


def test_environment_order_is_lc_all_lc_messages_lang() -> None:
    env = {"LANG": "ja_JP.UTF-8"}
    assert i18n.from_environment(env) == "ja"
    assert i18n.from_environment({**env, "LC_MESSAGES": "C"}) == "en"
    assert i18n.from_environment({**env, "LC_ALL": "en_US.UTF-8"}) == "en"
    assert i18n.from_environment({"LANG": "C", "LC_ALL": "ja_JP.UTF-8"}) == "ja"
    assert i18n.from_environment({"LANG": "C", "LC_ALL": ""}) == "en"  # empty means unset
    assert i18n.from_environment({}) == "en"


def test_unknown_language_and_missing_catalog_fall_back_to_english(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hint = failure("invalid_credentials", "").hint
    assert i18n.translator("fr").language == "en"
    assert i18n.translator("fr").text(hint) == hint

    def missing(language: str) -> bytes:
        raise FileNotFoundError(f"locale/{language}/LC_MESSAGES/mailcanary.po")

    catalog._translator.cache_clear()
    monkeypatch.setattr(catalog, "catalog_bytes", missing)
    try:
        broken = i18n.translator("ja")
        assert broken.language == "en" and broken.text(hint) == hint
    finally:
        catalog._translator.cache_clear()


def test_plural_forms_for_templates() -> None:
    """ngettext as a template engine calls it: Japanese has one form, English two."""
    ja = i18n.Translator("ja", {}, {"{n} target": ("対象 {n} 件",)}, "0")
    assert ja.ngettext("{n} target", "{n} targets", 5) == "対象 {n} 件"
    assert ja.ngettext("{n} probe", "{n} probes", 5) == "{n} probes"  # untranslated
    en = i18n.translator("en")
    assert [en.ngettext("{n} target", "{n} targets", n) for n in (1, 2)] == [
        "{n} target", "{n} targets"]


def test_a_translation_whose_placeholders_do_not_fit_shows_english() -> None:
    tr = i18n.Translator("ja", {"On {host}.": "{hots} で。"})
    assert tr.text(Text("On {host}.", host="mx")) == "On mx."


def test_catalog_ships_as_source_not_binary() -> None:
    """The .po is the source, read at run time; no compiled .mo sits in the repository."""
    assert PO.is_file()
    assert not list(PACKAGE.rglob("*.mo"))
    assert catalog.catalog_bytes("ja") == PO.read_bytes()


def test_package_data_ships_every_catalog() -> None:
    """`pip install .` (not only the editable install) must carry every .po file."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["mailcanary"]
    catalogs = [p.relative_to(PACKAGE) for p in (PACKAGE / "locale").rglob("*.po")]
    assert catalogs
    for path in catalogs:
        assert any(path.match(pattern) for pattern in patterns), path
    assert any(dep.lower().startswith("babel") for dep in config["project"]["dependencies"])
