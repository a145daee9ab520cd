"""Which language a person reads: a config key, a flag, or the POSIX locale variables."""

from __future__ import annotations

import os
from collections.abc import Mapping

LANGUAGES = ("en", "ja")
DEFAULT = "en"
# POSIX order: the first of these that is set and not empty decides LC_MESSAGES.
ENV_VARIABLES = ("LC_ALL", "LC_MESSAGES", "LANG")


def normalize(value: str) -> str:
    """"ja", "ja_JP", "ja-JP", "ja_JP.UTF-8", "JA" -> "ja"; "C", "fr_FR", "" -> "en"."""
    code = value.strip().split(".")[0].split("@")[0].replace("-", "_").split("_")[0].lower()
    return code if code in LANGUAGES else DEFAULT


def from_environment(environ: Mapping[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    for name in ENV_VARIABLES:
        value = env.get(name, "")
        if value:
            return normalize(value)
    return DEFAULT


def known(value: str) -> bool:
    """True when `value` names a language we have (not just falls back to English)."""
    code = value.strip().split(".")[0].split("@")[0].replace("-", "_").split("_")[0].lower()
    return code in LANGUAGES
