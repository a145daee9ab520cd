"""The configuration file: pydantic models that mirror the contract's TOML keys.

Every model forbids unknown keys, so a typo is reported with its path instead of being
silently ignored. `load_config` collects every problem at once (schema errors from pydantic
plus the cross-references pydantic cannot see) and raises one `ConfigError` that lists them
as ``accounts[2].imap.port: ...`` lines.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

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


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DaemonConfig(_Model):
    listen: str = "127.0.0.1:9782"
    state_dir: Path = Path("/var/lib/mailcanary")

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError("expected HOST:PORT, e.g. \"127.0.0.1:9782\" or \"[::]:9782\"")
        if not host:
            raise ValueError("the host part is empty; use \"0.0.0.0:PORT\" to listen everywhere")
        return value

    @property
    def listen_host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def listen_port(self) -> int:
        return int(self.listen.rpartition(":")[2])


class Defaults(_Model):
    interval: Duration = 60.0
    timeout: Duration = 30.0


Security = Literal["tls", "starttls", "none"]

_DEFAULT_PORTS: dict[str, dict[str, int]] = {
    "imap": {"tls": 993, "starttls": 143, "none": 143},
    "smtp": {"tls": 465, "starttls": 587, "none": 25},
}


class Endpoint(_Model):
    host: str = Field(min_length=1)
    port: int | None = Field(default=None, ge=1, le=65535)
    security: Security | None = None
    allow_insecure_auth: bool = False


class ImapEndpoint(Endpoint):
    security: Security | None = "tls"

    @property
    def effective_port(self) -> int:
        return self.port or _DEFAULT_PORTS["imap"][self.security or "tls"]


class SmtpEndpoint(Endpoint):
    security: Security | None = "starttls"

    @property
    def effective_port(self) -> int:
        return self.port or _DEFAULT_PORTS["smtp"][self.security or "starttls"]


_LOOPBACK_NAMES = {"localhost", "localhost.localdomain"}


def is_loopback_host(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _https_unless_loopback(value: str | None) -> str | None:
    if value is None:
        return value
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError("must be an absolute https:// URL")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise ValueError("must use https (plain http is allowed only for a loopback host)")
    return value


HttpsUrl = Annotated[str | None, AfterValidator(_https_unless_loopback)]

# What `provider` fills in; every value can still be set explicitly.
OAUTH2_PRESETS: dict[str, dict[str, str]] = {
    "google": {
        "token_url": "https://oauth2.googleapis.com/token",
        "authorization_url": "https://accounts.google.com/o/oauth2/v2/auth",
        "scope": "https://mail.google.com/",
        "mechanism": "xoauth2",
    },
    "microsoft": {
        "token_url": "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token",
        "device_authorization_url":
            "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/devicecode",
        "scope": "https://outlook.office.com/IMAP.AccessAsUser.All "
        "https://outlook.office.com/SMTP.Send offline_access",
        "scope_client_credentials": "https://outlook.office365.com/.default",
        "mechanism": "xoauth2",
    },
}


class OAuth2Config(_Model):
    """OAuth2 sign-in; `provider` fills token_url, scope and mechanism (see OAUTH2_PRESETS)."""

    provider: Literal["google", "microsoft"] | None = None
    token_url: HttpsUrl = None
    client_id: str | None = Field(default=None, min_length=1)
    client_secret_file: Path | None = None
    client_secret_env: str | None = None
    refresh_token_file: Path | None = None
    refresh_token_env: str | None = None
    grant: Literal["refresh_token", "client_credentials"] = "refresh_token"
    scope: str | None = None
    mechanism: Literal["xoauth2", "oauthbearer"] | None = None
    tenant: str | None = Field(default=None, pattern=r"^[A-Za-z0-9.-]+$")
    # Only `mailcanary oauth2 authorize` uses these two (browser and device-code sign-in).
    authorization_url: HttpsUrl = None
    device_authorization_url: HttpsUrl = None

    @model_validator(mode="after")
    def _complete(self) -> OAuth2Config:
        if self.provider is None and self.token_url is None:
            raise ValueError("set provider (\"google\" or \"microsoft\") or token_url")
        if self.client_id is None:
            raise ValueError("client_id is required")
        if self.tenant is not None and self.provider != "microsoft":
            raise ValueError("tenant is only used with provider = \"microsoft\"")
        if self.client_secret_file is not None and self.client_secret_env is not None:
            raise ValueError("set at most one of client_secret_file, client_secret_env")
        refresh = [self.refresh_token_file, self.refresh_token_env]
        if self.grant == "refresh_token" and sum(x is not None for x in refresh) != 1:
            raise ValueError(
                "the refresh_token grant needs exactly one of refresh_token_file, "
                "refresh_token_env"
            )
        if self.grant == "client_credentials":
            if self.provider == "google":
                raise ValueError(
                    "Google offers no client_credentials grant for Gmail; use the "
                    "refresh_token grant (mailcanary oauth2 authorize)"
                )
            if self.client_secret_file is None and self.client_secret_env is None:
                raise ValueError(
                    "the client_credentials grant needs client_secret_file or client_secret_env"
                )
            if any(x is not None for x in refresh):
                raise ValueError("the client_credentials grant takes no refresh token")
            if self.provider == "microsoft" and self.tenant is None and self.token_url is None:
                raise ValueError(
                    "Microsoft's client_credentials grant needs tenant (your tenant id or "
                    "domain): the \"common\" endpoint issues no app-only tokens"
                )
        return self

    def _preset(self, key: str) -> str | None:
        if self.provider is None:
            return None
        value = OAUTH2_PRESETS[self.provider].get(key)
        return value.format(tenant=self.tenant or "common") if value is not None else None

    @property
    def effective_token_url(self) -> str:
        url = self.token_url or self._preset("token_url")
        assert url is not None  # the validator requires provider or token_url
        return url

    @property
    def effective_scope(self) -> str | None:
        if self.scope is not None:
            return self.scope
        if self.grant == "client_credentials":
            return self._preset("scope_client_credentials")
        return self._preset("scope")

    @property
    def effective_mechanism(self) -> str:
        return self.mechanism or self._preset("mechanism") or "xoauth2"

    @property
    def effective_authorization_url(self) -> str | None:
        return self.authorization_url or self._preset("authorization_url")

    @property
    def effective_device_authorization_url(self) -> str | None:
        return self.device_authorization_url or self._preset("device_authorization_url")


class AccountConfig(_Model):
    name: Name
    address: str = Field(pattern=r"^[^@\s]+@[^@\s]+$")
    username: str | None = None
    password_file: Path | None = None
    password_env: str | None = None
    password: str | None = Field(default=None, repr=False)
    oauth2: OAuth2Config | None = None
    ca_file: Path | None = None
    interval: Duration | None = None
    timeout: Duration | None = None
    imap: ImapEndpoint | None = None
    smtp: SmtpEndpoint | None = None

    @model_validator(mode="after")
    def _one_credential(self) -> AccountConfig:
        given = [
            key
            for key in ("password_file", "password_env", "password", "oauth2")
            if getattr(self, key) is not None
        ]
        if len(given) != 1:
            raise ValueError(
                "set exactly one of password_file, password_env, password, oauth2"
                + (f" (found {', '.join(given)})" if given else "")
            )
        if self.imap is None and self.smtp is None:
            raise ValueError("an account needs imap, smtp or both")
        return self

    @property
    def login(self) -> str:
        return self.username or self.address

    @property
    def uses_password(self) -> bool:
        return self.oauth2 is None


class RouteConfig(_Model):
    name: Name | None = None
    from_: Name = Field(alias="from")
    to: Name
    interval: Duration | None = None
    deadline: Duration = 600.0
    slo: Duration = 60.0

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @property
    def route_name(self) -> str:
        return self.name or f"{self.from_}-to-{self.to}"


class AlertConfig(_Model):
    kind: Literal["webhook", "slack", "email", "alertmanager"]
    url: str | None = None
    account: Name | None = None
    to: list[str] = Field(default_factory=list)
    after: int = Field(default=2, ge=1)
    repeat: Duration = 4 * 3600.0

    @model_validator(mode="after")
    def _fields_for_kind(self) -> AlertConfig:
        if self.kind == "email":
            if self.account is None or not self.to:
                raise ValueError("an email sink needs account and to")
        elif self.url is None:
            raise ValueError(f"a {self.kind} sink needs url")
        if self.url is not None:
            parts = urlsplit(self.url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError("url must be an absolute http(s):// URL")
        return self


class Config(BaseSettings):
    """The whole file. Environment variables ``MAILCANARY_DAEMON__LISTEN`` etc. override it."""

    model_config = SettingsConfigDict(
        extra="forbid",
        frozen=True,
        env_prefix="MAILCANARY_",
        env_nested_delimiter="__",
        nested_model_default_partial_update=True,
    )

    daemon: DaemonConfig = DaemonConfig()
    defaults: Defaults = Defaults()
    accounts: list[AccountConfig] = Field(default_factory=list)
    routes: list[RouteConfig] = Field(default_factory=list)
    alerts: list[AlertConfig] = Field(default_factory=list)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment wins over the file, as systemd's EnvironmentFile= users expect.
        return (env_settings, init_settings)

    def account(self, name: str) -> AccountConfig:
        for account in self.accounts:
            if account.name == name:
                return account
        raise KeyError(name)

    def route(self, name: str) -> RouteConfig:
        for route in self.routes:
            if route.route_name == name:
                return route
        raise KeyError(name)

    def interval_of(self, account: AccountConfig) -> float:
        return account.interval or self.defaults.interval

    def timeout_of(self, account: AccountConfig) -> float:
        return account.timeout or self.defaults.timeout


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
        problems.append(f"{format_loc(loc)}: {msg}")
    return problems


def _cross_reference_problems(raw: Mapping[str, Any]) -> list[str]:
    """What the schema cannot see: duplicate names and routes that point nowhere.

    Works on the raw dict so it can run even when other keys fail validation.
    """
    problems: list[str] = []
    accounts = raw.get("accounts", [])
    if not isinstance(accounts, list):
        return problems
    by_name: dict[str, Mapping[str, Any]] = {}
    for i, acc in enumerate(accounts):
        if not isinstance(acc, Mapping) or not isinstance(acc.get("name"), str):
            continue
        if acc["name"] in by_name:
            problems.append(f"accounts[{i}].name: duplicate account name {acc['name']!r}")
        by_name[acc["name"]] = acc
        endpoint = acc.get("imap"), acc.get("smtp")
        for proto, ep in zip(("imap", "smtp"), endpoint, strict=True):
            if (
                isinstance(ep, Mapping)
                and ep.get("security") == "none"
                and ep.get("allow_insecure_auth") is not True
            ):
                problems.append(
                    f"accounts[{i}].{proto}.security: \"none\" would send the credentials in "
                    "clear text; use \"tls\" or \"starttls\", or set allow_insecure_auth = true"
                )
    routes = raw.get("routes", [])
    if not isinstance(routes, list):
        return problems
    seen_routes: set[str] = set()
    for i, route in enumerate(routes):
        if not isinstance(route, Mapping):
            continue
        src, dst = route.get("from"), route.get("to")
        name = route.get("name") or f"{src}-to-{dst}"
        if name in seen_routes:
            problems.append(f"routes[{i}].name: duplicate route name {name!r}")
        seen_routes.add(name)
        if isinstance(src, str):
            if src not in by_name:
                problems.append(f"routes[{i}].from: no account named {src!r}")
            elif "smtp" not in by_name[src]:
                problems.append(f"routes[{i}].from: account {src!r} has no smtp to send with")
        if isinstance(dst, str):
            if dst not in by_name:
                problems.append(f"routes[{i}].to: no account named {dst!r}")
            elif "imap" not in by_name[dst]:
                problems.append(f"routes[{i}].to: account {dst!r} has no imap to watch with")
    alerts = raw.get("alerts", [])
    if isinstance(alerts, list):
        for i, sink in enumerate(alerts):
            if isinstance(sink, Mapping) and sink.get("kind") == "email":
                acc_name = sink.get("account")
                if isinstance(acc_name, str):
                    if acc_name not in by_name:
                        problems.append(f"alerts[{i}].account: no account named {acc_name!r}")
                    elif "smtp" not in by_name[acc_name]:
                        problems.append(
                            f"alerts[{i}].account: account {acc_name!r} has no smtp to send with"
                        )
    return problems


def config_from_dict(raw: Mapping[str, Any], source: str = "config") -> Config:
    problems: list[str] = []
    config: Config | None = None
    try:
        config = Config(**raw)
    except ValidationError as exc:
        problems += _pydantic_problems(exc)
    problems += _cross_reference_problems(raw)
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
