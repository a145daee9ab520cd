"""The configuration: models of the contract's TOML keys, loading with key-path errors."""

from mailcanary.config.alerts import AlertConfig
from mailcanary.config.domains import DomainConfig
from mailcanary.config.inbound import InboundConfig, InboundMatch, InboundTrigger
from mailcanary.config.includes import Sources
from mailcanary.config.lint import warnings_for
from mailcanary.config.loading import (
    ConfigError,
    config_from_dict,
    format_loc,
    load_config,
    load_config_sources,
)
from mailcanary.config.models import (
    AccountConfig,
    Config,
    DaemonConfig,
    Defaults,
    Endpoint,
    ImapEndpoint,
    OAuth2Config,
    Pop3Endpoint,
    RouteConfig,
    SmtpEndpoint,
    is_loopback_host,
)
from mailcanary.config.types import Duration, Name, parse_duration

__all__ = [
    "AccountConfig", "AlertConfig", "Config", "ConfigError", "DaemonConfig", "Defaults",
    "DomainConfig", "Duration", "Endpoint", "ImapEndpoint", "InboundConfig", "InboundMatch",
    "InboundTrigger",
    "Name", "OAuth2Config", "Pop3Endpoint", "RouteConfig",
    "SmtpEndpoint", "Sources", "config_from_dict", "format_loc", "is_loopback_host",
    "load_config", "load_config_sources", "parse_duration", "warnings_for",
]
