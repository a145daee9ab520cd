"""The configuration file's models: they mirror the contract's TOML keys.

Every model forbids unknown keys, so a typo is reported with its path instead of being
silently ignored.
"""

from __future__ import annotations

import ipaddress
import re
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from mailcanary.config.alerts import AlertConfig
from mailcanary.config.domains import DomainConfig, valid_nameservers
from mailcanary.config.inbound import InboundConfig
from mailcanary.config.presets import ProviderName, apply_preset
from mailcanary.config.types import Duration, Name, StrictModel


class DaemonConfig(StrictModel):
    listen: str = "127.0.0.1:9782"
    state_dir: Path = Path("/var/lib/mailcanary")
    max_concurrent_probes: int = Field(default=64, ge=1, le=100000)
    max_connections_per_server: int = Field(default=4, ge=1, le=10000)
    helo_name: str | None = Field(default=None, min_length=1, pattern=r"^[A-Za-z0-9.\[\]:_-]+$")
    max_web_connections: int = Field(default=64, ge=1, le=10000)
    web_config_file: Path | None = None  # exporter-toolkit web.yml: TLS, basic auth
    probe_endpoint: bool = True
    history_days: int = Field(default=30, ge=1, le=3660)  # the status page's history
    # What people read (hints, notifications, /status): None = LC_ALL / LC_MESSAGES / LANG.
    language: Literal["ja", "en"] | None = None
    # Every DNS query mailcanary makes goes to these ("IP" or "IP:PORT"); None: the system's.
    nameservers: Annotated[list[str] | None, AfterValidator(valid_nameservers)] = None

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


class Defaults(StrictModel):
    interval: Duration = 60.0
    timeout: Duration = 30.0
    # Consecutive auth failures after which an account's logins stop until its secret or
    # its config changes (daemon/backoff.py); 0 = never. Providers lock accounts after a few.
    auth_pause_after: int = Field(default=6, ge=0, le=1000)


Security = Literal["tls", "starttls", "none"]

_DEFAULT_PORTS: dict[str, dict[str, int]] = {
    "imap": {"tls": 993, "starttls": 143, "none": 143},
    "smtp": {"tls": 465, "starttls": 587, "none": 25},
    "pop3": {"tls": 995, "starttls": 110, "none": 110},
}


class Endpoint(StrictModel):
    host: str = Field(min_length=1)
    port: int | None = Field(default=None, ge=1, le=65535)
    security: Security | None = None
    allow_insecure_auth: bool = False
    max_connections: int | None = Field(default=None, ge=1, le=10000)


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


class Pop3Endpoint(Endpoint):
    security: Security | None = "tls"  # starttls = STLS (RFC 2595)

    @property
    def effective_port(self) -> int:
        return self.port or _DEFAULT_PORTS["pop3"][self.security or "tls"]


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


def _check_jwt_bearer(cfg: OAuth2Config) -> None:
    """A service account signs its own assertion: no client secret, no refresh token."""
    if cfg.grant != "jwt_bearer":
        raise ValueError("service_account_file and subject go with grant = \"jwt_bearer\"")
    if cfg.provider == "microsoft":
        raise ValueError("grant = \"jwt_bearer\" is for Google Workspace service accounts "
                         "(provider = \"google\")")
    if cfg.service_account_file is None or cfg.subject is None:
        raise ValueError("grant = \"jwt_bearer\" needs service_account_file (the service "
                         "account's key JSON) and subject (the mailbox's address)")
    given = [k for k in ("client_id", "client_secret_file", "client_secret_env",
                         "refresh_token_file", "refresh_token_env") if getattr(cfg, k)]
    if given:
        raise ValueError(f"grant = \"jwt_bearer\" takes no {', '.join(given)}: the key in "
                         "service_account_file identifies the client")


class OAuth2Config(StrictModel):
    """OAuth2 sign-in; `provider` fills token_url, scope and mechanism (see OAUTH2_PRESETS)."""

    provider: Literal["google", "microsoft"] | None = None
    token_url: HttpsUrl = None
    client_id: str | None = Field(default=None, min_length=1)
    client_secret_file: Path | None = None
    client_secret_env: str | None = None
    refresh_token_file: Path | None = None
    refresh_token_env: str | None = None
    grant: Literal["refresh_token", "client_credentials", "jwt_bearer"] = "refresh_token"
    # jwt_bearer (RFC 7523, a Google Workspace service account with domain-wide delegation):
    service_account_file: Path | None = None  # the key JSON; relative: $CREDENTIALS_DIRECTORY
    subject: str | None = Field(default=None, pattern=r"^[^@\s]+@[^@\s]+$")  # whose mailbox
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
        if self.grant == "jwt_bearer" or self.service_account_file or self.subject:
            _check_jwt_bearer(self)
            return self
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


# The labels every series or alert already has: an account's `labels` may not reuse them.
RESERVED_LABELS = frozenset(
    {"probe", "target", "server", "provider", "class", "reason", "phase", "instance", "job"}
)
MAX_LABELS = 8
_LABEL_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


def check_labels(labels: dict[str, str]) -> dict[str, str]:
    """Prometheus label names of our own choosing, few enough to keep the info metric small."""
    if len(labels) > MAX_LABELS:
        raise ValueError(f"at most {MAX_LABELS} labels (found {len(labels)})")
    for name, value in labels.items():
        if not _LABEL_NAME.match(name) or name.startswith("__"):
            raise ValueError(f"label name {name!r}: use [a-z_][a-z0-9_]* (not starting __)")
        if name in RESERVED_LABELS:
            raise ValueError(f"label name {name!r} is reserved (mailcanary sets it)")
        if any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise ValueError(f"label {name!r}: control characters are not allowed")
    return labels


class AccountConfig(StrictModel):
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
    pop3: Pop3Endpoint | None = None
    provider: ProviderName | None = None  # a preset (config/presets.py); also picks provider hints
    labels: dict[str, str] = Field(default_factory=dict)  # only on mailcanary_target_info

    @field_validator("labels")
    @classmethod
    def _label_names(cls, value: dict[str, str]) -> dict[str, str]:
        return check_labels(value)

    @model_validator(mode="before")
    @classmethod
    def _preset(cls, data: object) -> object:
        return apply_preset(data)

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
        if self.imap is None and self.smtp is None and self.pop3 is None:
            raise ValueError("an account needs imap, smtp or pop3 (or a provider preset)")
        return self

    @property
    def login(self) -> str:
        return self.username or self.address

    @property
    def uses_password(self) -> bool:
        return self.oauth2 is None


ROUTE_INTERVAL = 900.0  # 96 canaries a day, not 1,440 at a 60 s [defaults].interval


class RouteConfig(StrictModel):
    name: Name | None = None
    from_: Name = Field(alias="from")
    to: Name
    interval: Duration | None = None  # None: ROUTE_INTERVAL, never [defaults].interval
    deadline: Duration = 600.0
    slo: Duration = 60.0

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True,
                              defer_build=True)

    @property
    def effective_interval(self) -> float:
        """Each run sends a real message and providers cap sends per day (contract v3)."""
        return self.interval or ROUTE_INTERVAL

    @property
    def route_name(self) -> str:
        return self.name or f"{self.from_}-to-{self.to}"


class Config(BaseSettings):
    """The whole file. Environment variables ``MAILCANARY_DAEMON__LISTEN`` etc. override it."""

    model_config = SettingsConfigDict(
        extra="forbid",
        frozen=True,
        env_prefix="MAILCANARY_",
        env_nested_delimiter="__",
        nested_model_default_partial_update=True,
    )

    # Factories, not instances: an instance would build its model's validator at import.
    daemon: DaemonConfig = Field(default_factory=DaemonConfig)
    defaults: Defaults = Field(default_factory=Defaults)
    accounts: list[AccountConfig] = Field(default_factory=list)
    routes: list[RouteConfig] = Field(default_factory=list)
    alerts: list[AlertConfig] = Field(default_factory=list)
    inbound: list[InboundConfig] = Field(default_factory=list)
    domains: list[DomainConfig] = Field(default_factory=list)

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

    @cached_property
    def accounts_by_name(self) -> dict[str, AccountConfig]:
        """Looked up per probe: a dict, not a scan of 10,000 accounts (frozen: safe)."""
        return {account.name: account for account in self.accounts}

    @cached_property
    def routes_by_name(self) -> dict[str, RouteConfig]:
        return {route.route_name: route for route in self.routes}

    def account(self, name: str) -> AccountConfig:
        return self.accounts_by_name[name]

    def route(self, name: str) -> RouteConfig:
        return self.routes_by_name[name]

    def inbound_watch(self, name: str) -> InboundConfig:
        for watch in self.inbound:
            if watch.name == name:
                return watch
        raise KeyError(name)

    def domain(self, name: str) -> DomainConfig:
        for entry in self.domains:
            if entry.name == name:
                return entry
        raise KeyError(name)

    def interval_of(self, account: AccountConfig) -> float:
        return account.interval or self.defaults.interval

    def timeout_of(self, account: AccountConfig) -> float:
        return account.timeout or self.defaults.timeout

