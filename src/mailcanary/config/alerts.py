"""`[[alerts]]`: where the daemon's own alerts go, and how it groups them by server."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from mailcanary.config.types import Duration, Name, StrictModel

# Apprise URL: scheme://...; what follows the scheme may hold a token, so it is never shown.
_APPRISE_URL = re.compile(r"^[a-z][a-z0-9+.-]*://\S+$", re.IGNORECASE)


def _read_urls(path: Path) -> list[str]:
    """One Apprise URL a line; blank lines and `#` comments skipped."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not UTF-8 text"
        raise ValueError(f"cannot read {path}: {reason}") from None
    urls = [line.strip() for line in text.splitlines()]
    return [u for u in urls if u and not u.startswith("#")]


def _check_urls(urls: list[str], where: str) -> None:
    for number, url in enumerate(urls, 1):
        if not _APPRISE_URL.match(url):  # the URL itself may be a secret: named by position
            raise ValueError(f"{where} URL {number} is not an Apprise URL (scheme://...)")


class AlertConfig(StrictModel):
    kind: Literal["webhook", "slack", "email", "alertmanager", "apprise"]
    url: str | None = None
    account: Name | None = None
    to: list[str] = Field(default_factory=list)
    urls: list[str] = Field(default_factory=list, repr=False)  # apprise: may hold tokens
    urls_file: Path | None = None  # apprise: one URL a line, for URLs that hold secrets
    after: int = Field(default=2, ge=1)
    repeat: Duration = 4 * 3600.0
    # This many targets of one server failing alike make one server event (0: never group).
    server_min_targets: int = Field(default=3, ge=0)

    @field_validator("urls_file")
    @classmethod
    def _readable(cls, value: Path | None) -> Path | None:
        if value is not None:
            _check_urls(_read_urls(value), str(value))
        return value

    @model_validator(mode="after")
    def _fields_for_kind(self) -> AlertConfig:
        if self.kind == "email":
            if self.account is None or not self.to:
                raise ValueError("an email sink needs account and to")
        elif self.kind == "apprise":
            if bool(self.urls) == (self.urls_file is not None):
                raise ValueError("an apprise sink needs exactly one of urls, urls_file")
            _check_urls(self.urls, "urls:")
        elif self.url is None:
            raise ValueError(f"a {self.kind} sink needs url")
        if self.kind != "apprise" and (self.urls or self.urls_file is not None):
            raise ValueError("urls and urls_file are for kind = \"apprise\"")
        if self.url is not None:
            parts = urlsplit(self.url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError("url must be an absolute http(s):// URL")
        return self

    def apprise_urls(self) -> list[str]:
        """The URLs now (a reload re-reads `urls_file`)."""
        return _read_urls(self.urls_file) if self.urls_file is not None else list(self.urls)
