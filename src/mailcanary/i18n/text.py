"""A sentence for people that stays language-neutral until it is shown.

`Text` is a `str` (its English value), so code that only passes a hint along, logs it or
compares it needs no change. It also keeps what it was made of: the English template (the
catalog's msgid) and the values put into it, so any output can render it in another
language through `Translator.text`. A `Text` whose parts are lost (a string operation, a
JSON round trip) is an ordinary string again: it shows in English, never breaks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def N_(msgid: str) -> str:
    """Marks a constant for extraction into the catalog (`pybabel extract` finds it);
    translation happens later, when a `Text` made from it is rendered."""
    return msgid


class Text(str):
    """``Text("Nothing listens on {host}.", host="mx")``: English value, translatable parts.

    ``Text.sentences([a, b])`` is several sentences shown as one hint ("" between sentences in
    Japanese, a space in English).
    """

    __slots__ = ("parts",)
    parts: tuple[tuple[str, tuple[tuple[str, Any], ...]], ...]

    def __new__(cls, msgid: str, /, **params: str | int | float | Text) -> Text:
        value = msgid.format(**params)  # always: "{{" means "{" in every msgid
        self = super().__new__(cls, value)
        self.parts = ((msgid, tuple(sorted(params.items()))),)
        return self

    @classmethod
    def sentences(cls, texts: list[str]) -> Text:
        """Sentences (each a Text or a plain string) shown together."""
        out = super().__new__(cls, " ".join(texts))
        parts: list[tuple[str, tuple[tuple[str, Any], ...]]] = []
        for text in texts:
            if isinstance(text, Text):
                parts.extend(text.parts)
            else:
                parts.append((_VERBATIM, (("text", str(text)),)))
        out.parts = tuple(parts)
        return out

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (str(self), self.parts))

    def params(self) -> Mapping[str, Any]:
        """The values of a one-part Text (tests and renderers read them)."""
        return dict(self.parts[0][1]) if len(self.parts) == 1 else {}


# A plain string inside a joined Text: shown as it is in every language.
_VERBATIM = "{text}"


def _rebuild(value: str, parts: tuple[tuple[str, tuple[tuple[str, Any], ...]], ...]) -> Text:
    out = str.__new__(Text, value)
    out.parts = parts
    return out


def to_json(value: str) -> list[Any] | None:
    """A Text's parts as JSON (for state files), so it is still translatable after a
    restart; None for a plain string."""
    if not isinstance(value, Text):
        return None
    return [[msgid, {k: _param_json(v) for k, v in params}] for msgid, params in value.parts]


def _param_json(value: Any) -> Any:
    return {"text": to_json(value), "value": str(value)} if isinstance(value, Text) else value


def from_json(data: Any, english: str) -> str:
    """The Text `to_json` saved, with its English value; `english` alone when `data` is
    missing or not of that shape (an older or edited state file)."""
    try:
        parts = tuple(
            (str(msgid), tuple(sorted((str(k), _param_from(v)) for k, v in params.items())))
            for msgid, params in data
        )
    except (TypeError, ValueError, AttributeError):
        return english
    return _rebuild(english, parts) if parts else english


def _param_from(value: Any) -> Any:
    if isinstance(value, dict):
        return from_json(value["text"], str(value["value"]))
    if isinstance(value, str | int | float):
        return value
    raise ValueError(value)
