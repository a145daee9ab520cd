"""Warnings: settings that load but will hurt (`validate` prints them; `--strict` fails).

Each is ``<key path>: <why>``. They are the mistakes that pass the schema and then cost
an outage or an account: a timeout that outlasts the interval, an SLO the deadline makes
meaningless, a round trip that burns a provider's daily sending limit, a port that speaks
the other TLS mode, a password for a provider that has turned passwords off.
"""

from __future__ import annotations

from mailcanary.config.models import AccountConfig, Config, Endpoint

MIN_ROUTE_INTERVAL = 300.0
# The well-known ports and the security they speak (the other one fails every time).
IMPLICIT_TLS_PORTS = {993: "IMAP", 995: "POP3", 465: "SMTP"}
STARTTLS_PORTS = {143: "IMAP", 110: "POP3", 587: "SMTP submission", 25: "SMTP"}
PASSWORDLESS_PROVIDERS = ("microsoft365", "outlook")


def warnings_for(config: Config) -> list[str]:
    """Things that work but that a careful admin wants to hear about."""
    out: list[str] = []
    defaults = config.defaults
    if defaults.timeout >= defaults.interval:
        out.append(_overlap("defaults.timeout", defaults.timeout, defaults.interval))
    for i, acc in enumerate(config.accounts):
        out += _account_warnings(config, i, acc)
    out += _timing_warnings(config)
    out += _sink_warnings(config)
    return out


def _account_warnings(config: Config, i: int, acc: AccountConfig) -> list[str]:
    out = []
    where = f"accounts[{i}]"
    if acc.password is not None:
        out.append(
            f"{where}.password: an inline password is readable by anyone who can read "
            "this file; prefer password_file (with systemd LoadCredential=) or password_env"
        )
    if acc.provider in PASSWORDLESS_PROVIDERS and acc.uses_password:
        out.append(
            f"{where}.provider: {acc.provider} accounts no longer accept a password for IMAP, "
            "POP3 or SMTP (Microsoft turned basic authentication off); use oauth2 = "
            "{ provider = \"microsoft\", ... }"
        )
    timeout, interval = config.timeout_of(acc), config.interval_of(acc)
    if timeout >= interval and (acc.timeout, acc.interval) != (None, None):
        key = "timeout" if acc.timeout is not None else "interval"
        out.append(_overlap(f"{where}.{key}", timeout, interval))
    for proto in ("imap", "smtp", "pop3"):
        endpoint: Endpoint | None = getattr(acc, proto)
        if endpoint is not None:
            out += _port_warning(f"{where}.{proto}", endpoint)
    return out


def _overlap(where: str, timeout: float, interval: float) -> str:
    return (f"{where}: the timeout ({timeout:g}s) is not shorter than the interval "
            f"({interval:g}s): a slow server makes runs overlap and be skipped")


def _port_warning(where: str, endpoint: Endpoint) -> list[str]:
    port = getattr(endpoint, "effective_port", endpoint.port)
    if endpoint.security == "starttls" and port in IMPLICIT_TLS_PORTS:
        return [f"{where}.security: port {port} is {IMPLICIT_TLS_PORTS[port]} over TLS from "
                "the first byte; starttls on it fails: use security = \"tls\" (or the "
                "protocol's STARTTLS port)"]
    if endpoint.security == "tls" and port in STARTTLS_PORTS:
        return [f"{where}.security: port {port} is {STARTTLS_PORTS[port]} with STARTTLS; tls "
                "on it fails: use security = \"starttls\" (or the protocol's TLS port)"]
    return []


def _timing_warnings(config: Config) -> list[str]:
    out = []
    for i, route in enumerate(config.routes):
        if route.slo >= route.deadline:
            out.append(f"routes[{i}].slo: the slo ({route.slo:g}s) is not shorter than the "
                       f"deadline ({route.deadline:g}s): a late canary is always lost, never "
                       "delayed")
        if route.interval is not None and route.interval < MIN_ROUTE_INTERVAL:
            out.append(f"routes[{i}].interval: every {route.interval:g}s sends "
                       f"{86400 / route.interval:,.0f} canaries a day; providers cap sending "
                       "(a consumer Gmail account within hours): use 5m or more")
    for i, watch in enumerate(config.inbound):
        if watch.trigger is not None and watch.slo >= watch.deadline:
            out.append(f"inbound[{i}].slo: the slo ({watch.slo:g}s) is not shorter than "
                       f"the deadline ({watch.deadline:g}s): a late message is always lost, "
                       "never delayed")
    return out


def _sink_warnings(config: Config) -> list[str]:
    """An e-mail sink that goes through a server that is itself monitored cannot tell
    about that server's outage; fine when another sink does not depend on it."""
    out = []
    for i, sink in enumerate(config.alerts):
        if sink.kind != "email" or sink.account is None:
            continue
        acc = config.accounts_by_name.get(sink.account)
        if acc is None or acc.smtp is None:
            continue
        host = acc.smtp.host
        monitored = any(other.name != acc.name and other.smtp is not None
                        and other.smtp.host == host for other in config.accounts)
        covered = any(other.kind != "email" or (
            other.account is not None and other.account in config.accounts_by_name
            and (config.account(other.account).smtp or acc.smtp).host != host)
            for other in config.alerts)
        if monitored and not covered:
            out.append(
                f"alerts[{i}].account: {acc.name!r} sends alerts through {host}, which is "
                "itself monitored: when that server breaks, this alert cannot be sent; add "
                "a sink that does not depend on it"
            )
    return out
