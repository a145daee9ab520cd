"""Friendlier schema errors: "did you mean" for unknown keys and values, rules in words.

A typo (`[[account]]`, `prot = 993`, `provider = "gmali"`, `security = "ssl"`) should be
fixed from the message alone, without the docs: difflib proposes the nearest known key or
value, and a few words people use for another one (`ssl` for `tls`) are mapped outright.
"""

from __future__ import annotations

import re
import types
from collections.abc import Sequence
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel

# Words people write for one of our values.
SYNONYMS = {
    "ssl": "tls", "ssl/tls": "tls", "tls/ssl": "tls", "implicit": "tls", "smtps": "tls",
    "imaps": "tls", "pop3s": "tls", "explicit": "starttls", "stls": "starttls",
    "plain": "none", "plaintext": "none", "off": "none", "false": "none",
    "office365": "microsoft365", "o365": "microsoft365", "hotmail": "outlook",
    "google": "gmail", "googlemail": "gmail", "apple": "icloud",
}

# Patterns of the schema, said in words.
PATTERN_WORDS = {
    r"^[A-Za-z0-9_.-]+$": "a name may use only the letters A to Z and a to z, the digits 0 "
    "to 9, the underscore, the dot and the hyphen (no spaces, no @), 1 to 64 characters",
    r"^[^@\s]+@[^@\s]+$": "expected an e-mail address such as alice@example.com "
    "(one @, no spaces)",
}


def did_you_mean(word: object, choices: Sequence[str]) -> str:
    """`` (did you mean 'accounts'?)`` or the empty string."""
    if not isinstance(word, str) or not choices:
        return ""
    lowered = word.strip().lower()
    if SYNONYMS.get(lowered) in choices:
        return f" (did you mean {SYNONYMS[lowered]!r}?)"
    import difflib  # noqa: PLC0415  (only a bad config needs it; `check` starts without)

    close = difflib.get_close_matches(lowered, choices, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    origin = get_origin(annotation)
    if origin is None:
        return []
    if origin in (Union, types.UnionType, list) or str(origin).endswith("Annotated"):
        return [m for arg in get_args(annotation) for m in _models_in(arg)]
    return []


def known_keys(root: type[BaseModel], loc: Sequence[int | str]) -> list[str]:
    """The keys allowed in the table at `loc` (list indexes skipped), or [] when unsure."""
    models = [root]
    for part in loc:
        if isinstance(part, int):
            continue
        found = []
        for model in models:
            for name, info in model.model_fields.items():
                if part in (name, info.alias):
                    found += _models_in(info.annotation)
        models = found
        if not models:
            return []
    keys: list[str] = []
    for model in models:
        keys += [info.alias or name for name, info in model.model_fields.items()]
    return keys


def expected_values(err: dict[str, Any]) -> list[str]:
    """The allowed values of a `literal_error` ("'tls', 'starttls' or 'none'")."""
    expected = str(err.get("ctx", {}).get("expected", ""))
    return re.findall(r"'([^']*)'", expected)


def friendlier(err: dict[str, Any], loc: list[int | str], root: type[BaseModel]) -> str | None:
    """A better message for this pydantic error, or None to keep pydantic's."""
    kind = err["type"]
    if kind == "extra_forbidden" and loc:
        return "unknown key" + did_you_mean(loc[-1], known_keys(root, loc[:-1]))
    if kind == "literal_error":
        return str(err["msg"]) + did_you_mean(err["input"], expected_values(err))
    if kind == "string_pattern_mismatch":
        words = PATTERN_WORDS.get(str(err.get("ctx", {}).get("pattern")))
        if words is not None:
            return f"{err['input']!r}: {words}"
    return None
