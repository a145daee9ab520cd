"""Translators: one per language, reading the gettext catalog shipped beside the code.

The catalogs are `.po` files in ``mailcanary/locale/<lang>/LC_MESSAGES/mailcanary.po``
(package data), read with Babel once per process and language. English is the source
language: its "catalog" is the msgids themselves. A catalog that is missing or unreadable
means English with one warning, never a traceback; so does a translation whose placeholders
do not fit (tests keep both from shipping).
"""

from __future__ import annotations

import functools
import io
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from mailcanary.i18n.language import DEFAULT, from_environment, normalize
from mailcanary.i18n.text import Text

DOMAIN = "mailcanary"
# The standard library's logger (logsetup renders it like the rest): importing this module
# stays cheap for `mailcanary --version` and `check`.
log = logging.getLogger("mailcanary.i18n")


class Translator:
    """Everything a person reads, in one language: ``tr("Target")``, ``tr.text(hint)``.

    `gettext` and `ngettext` have the standard signatures, so a template engine can use them
    as they are (Jinja2: ``env.install_gettext_callables(tr.gettext, tr.ngettext,
    newstyle=True)``).
    """

    def __init__(
        self, language: str, messages: Mapping[str, str],
        plurals: Mapping[str, Sequence[str]] | None = None, plural_forms: str = "(n != 1)",
    ) -> None:
        self.language = language
        self._messages = dict(messages)
        self._plurals = {k: tuple(v) for k, v in (plurals or {}).items()}
        self._plural_index = _plural_rule(plural_forms)

    def gettext(self, msgid: str) -> str:
        return self._messages.get(msgid) or msgid

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        forms = self._plurals.get(singular)
        if forms:
            index = int(self._plural_index(n))
            if 0 <= index < len(forms) and forms[index]:
                return forms[index]
        return singular if n == 1 else plural

    def __call__(self, msgid: str, /, **params: Any) -> str:
        """The translation of `msgid` with `params` filled in (Text params translated too)."""
        rendered = {k: self.text(v) if isinstance(v, str) else v for k, v in params.items()}
        try:
            return self.gettext(msgid).format(**rendered)
        except (KeyError, IndexError, ValueError):
            log.warning("translation_unusable language=%s msgid=%r", self.language, msgid)
            return msgid.format(**rendered)

    def text(self, value: str) -> str:
        """A `Text` in this language; any other string (server words, a name) as it is."""
        if not isinstance(value, Text) or self.language == DEFAULT:
            return str(value)
        return self.join([self(msgid, **dict(params)) for msgid, params in value.parts])

    def join(self, sentences: Sequence[str]) -> str:
        """Sentences as one paragraph: Japanese puts nothing between them, English a space."""
        return ("" if self.language == "ja" else " ").join(s for s in sentences if s)


@functools.cache
def _plural_rule(expression: str) -> Callable[[int], int]:
    """The catalog's Plural-Forms expression as a function of n (stdlib gettext parses it)."""
    if expression == "(n != 1)":
        return lambda n: int(n != 1)
    import gettext  # noqa: PLC0415 (only for a catalog's own rule)

    rule: Callable[[int], int] = gettext.c2py(expression)
    return rule


def translator(language: str | None = None) -> Translator:
    """The translator for a language code ("ja", "ja_JP.UTF-8", "en"); None means the
    environment's (LC_ALL, LC_MESSAGES, LANG); anything unknown means English."""
    return _translator(normalize(language) if language is not None else from_environment())


@functools.cache
def _translator(code: str) -> Translator:
    if code == DEFAULT:
        return Translator(DEFAULT, {})
    try:
        return Translator(code, *load_messages(code))
    except Exception as exc:  # a broken install must not stop a probe's report
        log.warning("catalog_unreadable language=%s error=%s: %s", code, type(exc).__name__,
                    exc)
        return Translator(DEFAULT, {})


def catalog_bytes(language: str) -> bytes:
    from importlib import resources  # noqa: PLC0415 (only when not English)

    path = resources.files("mailcanary").joinpath(
        "locale", language, "LC_MESSAGES", f"{DOMAIN}.po"
    )
    return path.read_bytes()


def load_messages(language: str) -> tuple[dict[str, str], dict[str, tuple[str, ...]], str]:
    """From the language's .po: msgid -> translation, singular msgid -> plural forms, and
    the plural rule (fuzzy and empty entries skipped: they show in English)."""
    from babel.messages.pofile import read_po  # noqa: PLC0415 (only when not English)

    catalog = read_po(io.BytesIO(catalog_bytes(language)), locale=language, domain=DOMAIN)
    messages: dict[str, str] = {}
    plurals: dict[str, tuple[str, ...]] = {}
    for m in catalog:
        if not m.id or not m.string or m.fuzzy:
            continue
        if isinstance(m.id, str) and isinstance(m.string, str):
            messages[m.id] = m.string
        elif isinstance(m.id, tuple | list) and isinstance(m.string, tuple | list):
            plurals[str(m.id[0])] = tuple(str(form) for form in m.string)
    return messages, plurals, str(catalog.plural_expr)
