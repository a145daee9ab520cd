"""`[[inbound]]`: mail that another system sends (sign-up, password reset, 2FA code).

Kept apart from the account and route models because a watch carries its own small world:
regexes that must compile, an HTTP trigger whose bearer token must never travel in clear
text, and names that share one namespace with the routes (both label the delivery metrics).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import ConfigDict, Field, field_validator, model_validator

from mailcanary.config.presets import endpoints_of
from mailcanary.config.types import Duration, Name, StrictModel

TOKEN_PLACEHOLDER = "{token}"  # noqa: S105  # a template marker, not a secret
ADDRESS_PLACEHOLDER = "{address}"
_SAMPLE_TOKEN = "a1b2c3d4"  # noqa: S105  # letters and digits, as real tokens: safe inside a regex


def compile_pattern(pattern: str, token: str = _SAMPLE_TOKEN) -> re.Pattern[str]:
    """A match regex with this run's token put in; case-insensitive search."""
    return re.compile(pattern.replace(TOKEN_PLACEHOLDER, token), re.IGNORECASE)


def _valid_regex(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        compile_pattern(value)
    except re.error as exc:
        raise ValueError(f"not a valid regular expression: {exc}") from None
    return value


class InboundMatch(StrictModel):
    """Regexes a message must all match (case-insensitive search)."""

    from_: str | None = Field(default=None, alias="from")
    subject: str | None = None
    body: str | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True,
                              defer_build=True)

    @field_validator("from_", "subject", "body")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        return _valid_regex(value)

    @model_validator(mode="after")
    def _at_least_one(self) -> InboundMatch:
        if self.from_ is None and self.subject is None and self.body is None:
            raise ValueError("give at least one of from, subject, body")
        return self

    def patterns(self, token: str) -> dict[str, re.Pattern[str]]:
        given = {"from": self.from_, "subject": self.subject, "body": self.body}
        return {k: compile_pattern(v, token) for k, v in given.items() if v is not None}


def is_loopback_url_host(host: str) -> bool:
    """127.0.0.0/8, ::1 or localhost (models.py has the same test; it imports this module)."""
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class InboundTrigger(StrictModel):
    """The HTTP call that makes the app send its mail."""

    url: str
    method: Literal["GET", "POST", "PUT", "PATCH"] = "POST"
    body: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    bearer_token_file: Path | None = None
    bearer_token_env: str | None = Field(default=None, min_length=1)
    ca_file: Path | None = None  # extra trust anchors for an https url (a private CA)

    @field_validator("method", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value.replace(ADDRESS_PLACEHOLDER, "x").replace(TOKEN_PLACEHOLDER, "x"))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an absolute http:// or https:// URL")
        return value

    @field_validator("headers")
    @classmethod
    def _header_names(cls, value: dict[str, str]) -> dict[str, str]:
        for name, text in value.items():
            if not re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", name):
                raise ValueError(f"{name!r} is not a valid HTTP header name")
            if "\r" in text or "\n" in text:
                raise ValueError(f"the value of {name!r} contains a line break")
            if name.lower() == "authorization":
                raise ValueError(
                    "set the token with bearer_token_file or bearer_token_env, not as a "
                    "header: only those are kept out of every output"
                )
        return value

    @model_validator(mode="after")
    def _bearer(self) -> InboundTrigger:
        if self.bearer_token_file is not None and self.bearer_token_env is not None:
            raise ValueError("set at most one of bearer_token_file, bearer_token_env")
        if self.has_bearer:
            parts = urlsplit(self.url.replace(ADDRESS_PLACEHOLDER, "x"))
            if parts.scheme != "https" and not is_loopback_url_host(parts.hostname or ""):
                raise ValueError(
                    "a bearer token is sent only over https (or to a loopback host); "
                    "use an https:// url"
                )
        return self

    @property
    def has_bearer(self) -> bool:
        return self.bearer_token_file is not None or self.bearer_token_env is not None


class InboundConfig(StrictModel):
    name: Name
    account: Name
    interval: Duration | None = None
    deadline: Duration = 300.0
    slo: Duration = 60.0
    match: InboundMatch
    trigger: InboundTrigger | None = None
    cleanup: Literal["delete", "keep"] = "delete"

    @property
    def triggered(self) -> bool:
        return self.trigger is not None


def inbound_problems(
    inbound: list[Any], accounts: Mapping[str, Mapping[str, Any]], route_names: set[str]
) -> list[str]:
    """References the schema cannot see: the account, and names unique among routes too."""
    problems: list[str] = []
    seen: set[str] = set()
    for i, watch in enumerate(inbound):
        if not isinstance(watch, Mapping):
            continue
        name = watch.get("name")
        if isinstance(name, str):
            if name in seen:
                problems.append(f"inbound[{i}].name: duplicate inbound watch name {name!r}")
            elif name in route_names:
                problems.append(
                    f"inbound[{i}].name: {name!r} is already a route's name; routes and inbound "
                    "watches share the metrics' route label, so give it another name"
                )
            seen.add(name)
        account = watch.get("account")
        if isinstance(account, str):
            if account not in accounts:
                problems.append(f"inbound[{i}].account: no account named {account!r}")
            elif "imap" not in endpoints_of(accounts[account]):  # a preset may bring imap
                problems.append(
                    f"inbound[{i}].account: account {account!r} has no imap to watch with"
                )
    return problems
