"""Loading a config file: every problem at once, each with its key path.

`load_config` collects schema errors from pydantic plus the cross-references pydantic cannot
see, and raises one `ConfigError` that lists them as ``accounts[2].imap.port: ...`` lines.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_settings import EnvSettingsSource, SettingsError

from mailcanary.config.includes import IncludeError, Sources, expand
from mailcanary.config.models import Config
from mailcanary.config.presets import PROTOCOLS
from mailcanary.config.references import cross_reference_problems
from mailcanary.config.suggest import friendlier
from mailcanary.config.types import sharing_values

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
        better = friendlier(dict(err), loc, Config)
        if better is not None:
            msg = better
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


def config_from_dict(raw: Mapping[str, Any], source: str = "config",
                     sources: Sources | None = None) -> Config:
    problems: list[str] = []
    config: Config | None = None
    try:
        with sharing_values():
            config = Config(**raw)
    except ValidationError as exc:
        problems += _pydantic_problems(exc)
    except SettingsError as exc:
        problems.append(f"environment: {exc}")
    problems += cross_reference_problems(effective(raw))
    if problems or config is None:
        if sources is not None:
            problems = [sources.where(p) for p in problems]
        raise ConfigError(source, problems)
    return config


def load_config_sources(path: Path | str) -> tuple[Config, Sources]:
    """The config and the files it came from (the main file and its includes)."""
    path = Path(path)
    try:
        raw, sources = expand(path)
    except IncludeError as exc:
        main = f"{path}: "
        raise ConfigError(str(path), [p.removeprefix(main) for p in exc.problems]) from None
    return config_from_dict(raw, str(path), sources), sources


def load_config(path: Path | str) -> Config:
    return load_config_sources(path)[0]
