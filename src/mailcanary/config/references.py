"""What the schema cannot see: duplicate names and references that point nowhere.

Works on the raw dict so it can run even when other keys fail validation, and every
problem is reported alongside the schema's own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mailcanary.config.domains import domain_problems
from mailcanary.config.inbound import inbound_problems
from mailcanary.config.presets import endpoints_of

Accounts = dict[str, Mapping[str, Any]]


def cross_reference_problems(raw: Mapping[str, Any]) -> list[str]:
    accounts = raw.get("accounts", [])
    if not isinstance(accounts, list):
        return []
    problems: list[str] = []
    by_name = _accounts_by_name(accounts, problems)
    routes = raw.get("routes", [])
    if not isinstance(routes, list):
        return problems
    problems += _route_problems(routes, by_name)
    inbound = raw.get("inbound", [])
    if isinstance(inbound, list):
        route_names = {
            r.get("name") or f"{r.get('from')}-to-{r.get('to')}"
            for r in routes if isinstance(r, Mapping)
        }
        problems += inbound_problems(inbound, by_name, route_names)
    alerts = raw.get("alerts", [])
    if isinstance(alerts, list):
        problems += _alert_problems(alerts, by_name)
    domains = raw.get("domains", [])
    if isinstance(domains, list):
        problems += domain_problems(domains, _target_names(by_name, routes, raw))
    return problems


def _target_names(by_name: Accounts, routes: list[Any], raw: Mapping[str, Any]) -> dict[str, str]:
    """Every account, route and inbound watch name, with what it names (for messages)."""
    names = {name: f"account {name!r}" for name in by_name}
    for route in routes:
        if isinstance(route, Mapping):
            name = route.get("name") or f"{route.get('from')}-to-{route.get('to')}"
            names[name] = f"route {name!r}"
    inbound = raw.get("inbound", [])
    for watch in inbound if isinstance(inbound, list) else []:
        if isinstance(watch, Mapping) and isinstance(watch.get("name"), str):
            names[watch["name"]] = f"inbound watch {watch['name']!r}"
    return names


def _accounts_by_name(accounts: list[Any], problems: list[str]) -> Accounts:
    by_name: Accounts = {}
    for i, acc in enumerate(accounts):
        if not isinstance(acc, Mapping) or not isinstance(acc.get("name"), str):
            continue
        if acc["name"] in by_name:
            problems.append(f"accounts[{i}].name: duplicate account name {acc['name']!r}")
        by_name[acc["name"]] = acc
        for proto in ("imap", "smtp", "pop3"):
            ep = acc.get(proto)
            if (
                isinstance(ep, Mapping)
                and ep.get("security") == "none"
                and ep.get("allow_insecure_auth") is not True
            ):
                problems.append(
                    f"accounts[{i}].{proto}.security: \"none\" would send the credentials in "
                    "clear text; use \"tls\" or \"starttls\", or set allow_insecure_auth = true"
                )
    return by_name


def account_reference(
    path: str, name: object, by_name: Accounts, needs: str, purpose: str
) -> list[str]:
    """Problems of a key that names an account which must have endpoint `needs` (one of
    several when written "imap|pop3")."""
    if not isinstance(name, str):
        return []
    if name not in by_name:
        return [f"{path}: no account named {name!r}"]
    if not set(needs.split("|")) & endpoints_of(by_name[name]):
        wanted = " or ".join(needs.split("|"))
        return [f"{path}: account {name!r} has no {wanted} to {purpose}"]
    return []


def _route_problems(routes: list[Any], by_name: Accounts) -> list[str]:
    problems: list[str] = []
    seen: set[str] = set()
    for i, route in enumerate(routes):
        if not isinstance(route, Mapping):
            continue
        src, dst = route.get("from"), route.get("to")
        name = route.get("name") or f"{src}-to-{dst}"
        if name in seen:
            problems.append(f"routes[{i}].name: duplicate route name {name!r}")
        seen.add(name)
        problems += account_reference(f"routes[{i}].from", src, by_name, "smtp", "send with")
        problems += account_reference(f"routes[{i}].to", dst, by_name, "imap|pop3",
                                      "watch with")
    return problems


def _alert_problems(alerts: list[Any], by_name: Accounts) -> list[str]:
    problems: list[str] = []
    for i, sink in enumerate(alerts):
        if isinstance(sink, Mapping) and sink.get("kind") == "email":
            problems += account_reference(
                f"alerts[{i}].account", sink.get("account"), by_name, "smtp", "send with"
            )
    return problems
