"""Loading a config file: every problem at once, each with its key path.

`load_config` collects schema errors from pydantic plus the cross-references pydantic cannot
see, and raises one `ConfigError` that lists them as ``accounts[2].imap.port: ...`` lines.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_settings import EnvSettingsSource, SettingsError

from mailcanary.config.models import Config
from mailcanary.config.presets import PROTOCOLS
from mailcanary.config.references import cross_reference_problems

PRESET_KEYS = tuple(f"{proto}: provider " for proto in PROTOCOLS)


class ConfigError(Exception):
    """Everything wrong with a config file, one ``path: message`` per problem."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(problems))

    def report(self) -> str:
        lines = [f"{self.source}: {len(self.problems)} problem(s):"]
        lines += [f"  {p}" for p in self.problems]
        return "\n".join(lines)


def format_loc(loc: Iterable[int | str]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def _pydantic_problems(exc: ValidationError) -> list[str]:
    problems = []
    for err in exc.errors(include_url=False):
        # Drop pydantic's internal steps (function-after[...], union tags) from the path.
        loc = [p for p in err["loc"] if isinstance(p, int) or not str(p).startswith("function-")]
        loc = ["from" if p == "from_" else p for p in loc]
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif err["type"] == "missing":
            msg = "required key is missing"
        elif msg.startswith(PRESET_KEYS):  # a preset's problem names its endpoint key
            key, msg = msg.split(": ", 1)  # "pop3: provider 'icloud' offers no POP3"
            loc = [*loc, key]
        problems.append(f"{format_loc(loc)}: {msg}")
    return problems


def _merged(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """`over` laid on `base` as pydantic-settings does: tables merge, the rest replaces."""
    out = dict(base)
    for key, value in over.items():
        old = out.get(key)
        if isinstance(old, Mapping) and isinstance(value, Mapping):
            out[key] = _merged(old, value)
        else:
            out[key] = value
    return out


def effective(raw: Mapping[str, Any]) -> Mapping[str, Any]:
    """What the config will be made of: the file with the ``MAILCANARY_*`` environment laid
    over it (the environment wins), so the cross-checks see what actually runs."""
    try:
        env = EnvSettingsSource(Config)()
    except SettingsError:
        return raw  # pydantic reports the unparsable variable itself
    return _merged(raw, env) if env else raw


def config_from_dict(raw: Mapping[str, Any], source: str = "config") -> Config:
    problems: list[str] = []
    config: Config | None = None
    try:
        config = Config(**raw)
    except ValidationError as exc:
        problems += _pydantic_problems(exc)
    except SettingsError as exc:
        problems.append(f"environment: {exc}")
    problems += cross_reference_problems(effective(raw))
    if problems or config is None:
        raise ConfigError(source, problems)
    return config


def load_config(path: Path | str) -> Config:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(path), [f"cannot read the file: {exc.strerror or exc}"]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(str(path), [f"not UTF-8 text: {exc.reason}"]) from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), [f"not valid TOML: {exc}"]) from None
    return config_from_dict(raw, str(path))


def warnings_for(config: Config) -> list[str]:
    """Things that work but that a careful admin wants to hear about."""
    out = []
    for i, acc in enumerate(config.accounts):
        if acc.password is not None:
            out.append(
                f"accounts[{i}].password: an inline password is readable by anyone who can read "
                "this file; prefer password_file (with systemd LoadCredential=) or password_env"
            )
    for i, sink in enumerate(config.alerts):
        if sink.kind == "email" and sink.account is not None:
            acc = config.account(sink.account)
            if acc.smtp is not None and any(
                other.smtp is not None and other.smtp.host == acc.smtp.host
                for other in config.accounts
            ):
                out.append(
                    f"alerts[{i}].account: {acc.name!r} sends alerts through {acc.smtp.host}, "
                    "which is itself monitored: when that server breaks, this alert cannot be "
                    "sent; add a sink that does not depend on it"
                )
    return out
