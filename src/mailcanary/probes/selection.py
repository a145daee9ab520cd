"""Which probes a `check` runs: every account's imap, smtp and pop3, every route and every
inbound watch by default."""

from __future__ import annotations

from collections.abc import Sequence

from mailcanary.config import Config


class SelectionError(ValueError):
    pass


def select_probes(
    config: Config, accounts: Sequence[str] = (), routes: Sequence[str] = (),
    inbound: Sequence[str] = (),
) -> list[tuple[str, str]]:
    """(kind, target) pairs in config order."""
    known_accounts = {a.name for a in config.accounts}
    known_routes = {r.route_name for r in config.routes}
    for name in accounts:
        if name not in known_accounts:
            listed = ", ".join(sorted(known_accounts)) or "none"
            raise SelectionError(f"no account named {name!r} (accounts: {listed})")
    for name in routes:
        if name not in known_routes:
            listed = ", ".join(sorted(known_routes)) or "none"
            raise SelectionError(f"no route named {name!r} (routes: {listed})")
    known_inbound = {w.name for w in config.inbound}
    for name in inbound:
        if name not in known_inbound:
            listed = ", ".join(sorted(known_inbound)) or "none"
            raise SelectionError(f"no inbound watch named {name!r} (inbound watches: {listed})")
    everything = not accounts and not routes and not inbound
    out: list[tuple[str, str]] = []
    for account in config.accounts:
        if everything or account.name in accounts:
            if account.imap is not None:
                out.append(("imap", account.name))
            if account.smtp is not None:
                out.append(("smtp", account.name))
            if account.pop3 is not None:
                out.append(("pop3", account.name))
    for route in config.routes:
        if everything or route.route_name in routes:
            out.append(("roundtrip", route.route_name))
    for watch in config.inbound:
        if everything or watch.name in inbound:
            out.append(("inbound", watch.name))
    return out
