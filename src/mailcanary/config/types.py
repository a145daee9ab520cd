"""Value types shared by the config models: durations, names, the strict base model."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from contextvars import ContextVar
from pathlib import PosixPath
from typing import Annotated, Any, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: object) -> float:
    """Seconds from a number or a string such as "30s", "5m", "1h30m", "500ms"."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30, \"30s\", \"5m\" or \"1h\"")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().replace(" ", "")
        try:
            seconds = float(text)
        except ValueError:
            pos, seconds = 0, 0.0
            for match in _DURATION_RE.finditer(text):
                if match.start() != pos:
                    break
                seconds += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
                pos = match.end()
            if pos != len(text) or not text:
                raise ValueError(
                    f"{value!r} is not a duration; use seconds or \"30s\", \"5m\", \"1h\""
                ) from None
    else:
        raise ValueError("expected a duration such as 30, \"30s\", \"5m\" or \"1h\"")
    if seconds <= 0:
        raise ValueError("a duration must be greater than zero")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]
Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$", min_length=1, max_length=64)]


# Within one config load (`sharing_values`), equal values share one object: 10,000 accounts
# of one provider repeat its host, CA file and often a password directory, and every model
# keeps the set of fields its file named (a set of 8 names is 728 bytes). Shared, the
# fleet benchmark's 10,000 accounts take 38 MiB of RSS after loading instead of 52. Safe
# because every model is frozen: pydantic never changes a frozen model's fields set, and
# `model_copy` copies it first.
_SHARED: ContextVar[dict[Any, Any] | None] = ContextVar("mailcanary_config_shared",
                                                        default=None)
_SHAREABLE = (str, int, PosixPath)  # exact types: a subclass may carry more than its value


@contextlib.contextmanager
def sharing_values() -> Iterator[None]:
    """Models validated in this block share equal strings, paths and fields sets."""
    token = _SHARED.set({})
    try:
        yield
    finally:
        _SHARED.reset(token)


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    @model_validator(mode="after")
    def _share_equal_values(self) -> Self:
        shared = _SHARED.get()
        if shared is None:
            return self
        fields = self.__pydantic_fields_set__
        object.__setattr__(self, "__pydantic_fields_set__",
                           shared.setdefault(frozenset(fields), fields))
        values = self.__dict__
        for name, value in values.items():
            if type(value) in _SHAREABLE:
                values[name] = shared.setdefault((type(value), value), value)
        return self


