"""`[[domains]]`: the sending domain's DNS (SPF, DKIM, DMARC, MX, MTA-STS, TLS-RPT, DNSBL).

A domain entry names no account: it is checked from DNS and by connecting to its MX hosts,
so it carries its own small world (IP addresses, selectors, blocklist zones) and shares the
target namespace with accounts, routes and inbound watches (all label the same series).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

from mailcanary.config.types import Duration, Name, StrictModel

CheckName = Literal["mx", "mx_tls", "spf", "dmarc", "dkim", "mta_sts", "tls_rpt", "dnsbl"]
CHECKS: tuple[CheckName, ...] = (
    "mx", "mx_tls", "spf", "dmarc", "dkim", "mta_sts", "tls_rpt", "dnsbl",
)
# Public zones that answer anyone's (low-volume) queries; see docs/deliverability.md for why
# they refuse queries that come through big public resolvers.
DEFAULT_DNSBL = ("zen.spamhaus.org", "bl.spamcop.net", "psbl.surriel.com")
DEFAULT_INTERVAL = 3600.0

_LABEL = r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)"
_HOSTNAME_RE = re.compile(rf"^{_LABEL}(\.{_LABEL})*\.?$")
_SELECTOR_RE = re.compile(rf"^{_LABEL}(\.{_LABEL})*$")


def _hostname(value: str) -> str:
    value = value.strip().lower()
    if len(value) > 253 or not _HOSTNAME_RE.match(value):
        raise ValueError(f"{value!r} is not a DNS name")
    return value.rstrip(".")


class DomainConfig(StrictModel):
    name: Name
    domain: str
    sending_ips: list[str] = Field(default_factory=list)
    dkim_selectors: list[str] = Field(default_factory=list)
    dnsbl: list[str] = Field(default_factory=lambda: list(DEFAULT_DNSBL))
    ca_file: Path | None = None
    interval: Duration = DEFAULT_INTERVAL
    timeout: Duration | None = None  # default: [defaults].timeout
    checks: list[CheckName] = Field(default_factory=lambda: list(CHECKS))

    @field_validator("domain")
    @classmethod
    def _domain(cls, value: str) -> str:
        name = _hostname(value)
        if "." not in name:
            raise ValueError(f"{value!r} is not a domain (no dot); write e.g. \"example.com\"")
        return name

    @field_validator("sending_ips")
    @classmethod
    def _ips(cls, values: list[str]) -> list[str]:
        out = []
        for value in values:
            try:
                out.append(str(ipaddress.ip_address(value.strip())))
            except ValueError:
                raise ValueError(f"{value!r} is not an IPv4 or IPv6 address") from None
        return out

    @field_validator("dkim_selectors")
    @classmethod
    def _selectors(cls, values: list[str]) -> list[str]:
        for value in values:
            if not _SELECTOR_RE.match(value):
                raise ValueError(f"{value!r} is not a DKIM selector (DNS labels)")
        return values

    @field_validator("dnsbl")
    @classmethod
    def _zones(cls, values: list[str]) -> list[str]:
        return [_hostname(value) for value in values]

    @field_validator("checks")
    @classmethod
    def _checks(cls, values: list[CheckName]) -> list[CheckName]:
        if not values:
            raise ValueError(f"name at least one check of {', '.join(CHECKS)}")
        # Always in the contract's order: the first failing one decides class and reason.
        return [check for check in CHECKS if check in values]


def parse_nameserver(value: str) -> tuple[str, int]:
    """("127.0.0.1", 5353) from "127.0.0.1:5353", "127.0.0.1", "[::1]:53" or "::1"."""
    text = value.strip()
    host, port = text, 53
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest:
            if not rest.startswith(":") or not rest[1:].isdigit():
                raise ValueError(f"{value!r}: expected [IPv6]:PORT")
            port = int(rest[1:])
    elif text.count(":") == 1:
        host, _, digits = text.partition(":")
        if not digits.isdigit():
            raise ValueError(f"{value!r}: expected IP:PORT")
        port = int(digits)
    try:
        address = str(ipaddress.ip_address(host))
    except ValueError:
        raise ValueError(f"{value!r}: a nameserver is an IP address (with an optional "
                         "port), e.g. \"127.0.0.1:5353\"") from None
    if not 0 < port < 65536:
        raise ValueError(f"{value!r}: port out of range")
    return address, port


def valid_nameservers(values: list[str] | None) -> list[str] | None:
    if values is not None:
        for value in values:
            parse_nameserver(value)
        if not values:
            raise ValueError("give at least one nameserver, or leave the key out")
    return values


def domain_problems(domains: Iterable[Any], other_names: Mapping[str, str]) -> list[str]:
    """Names unique among all targets; `other_names` maps a name to what already has it."""
    problems: list[str] = []
    seen: dict[str, str] = dict(other_names)
    for i, entry in enumerate(domains):
        if not isinstance(entry, Mapping) or not isinstance(entry.get("name"), str):
            continue
        name = entry["name"]
        if name in seen:
            problems.append(f"domains[{i}].name: {name!r} is already the name of "
                            f"{seen[name]}; target names must be unique")
        seen[name] = "another domain"
    return problems
