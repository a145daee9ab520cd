"""`GET /sd`: Prometheus HTTP service discovery for `/probe`.

A Prometheus job with ``http_sd_configs: [{url: http://HOST:9782/sd}]`` and
``metrics_path: /probe`` then scrapes every target of this daemon, and only of this
daemon (its shard), without a target list kept by hand. Each group is one target::

    {"targets": ["<this daemon's address>"],
     "labels": {"__param_probe": "imap", "__param_target": "alice",
                "server": "imap.example.test:993", "provider": "gmail"}}

The address is `[daemon] listen`; when that is a wildcard (``0.0.0.0``, ``::``), as in a
container, it is the ``Host`` header the discovery request came with: the name
Prometheus itself used to reach this daemon.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

from mailcanary.config import Config
from mailcanary.probes.kind import ProbeKind

WILDCARDS = frozenset({"0.0.0.0", "::", ""})  # noqa: S104  (a listen value, compared only)


def server_and_provider(kind: ProbeKind, config: Config, target: str) -> tuple[str, str]:
    """As on ``mailcanary_target_info``: the endpoint of a login probe; for a roundtrip or
    inbound target the receiving mailbox's (the last endpoint the kind names), and the
    provider preset of the account it logs in to last (the route's ``to``)."""
    try:
        servers = kind.servers(config, target)
        accounts = kind.accounts(config, target)
    except (KeyError, LookupError):
        return "", ""
    server = servers[-1] if servers else ""
    provider = (accounts[-1].provider or "") if accounts else ""
    return server, provider


def address(listen_host: str, port: int, headers: Mapping[str, str]) -> str:
    """Where Prometheus reaches this daemon: the listen address, or for a wildcard the
    Host header of the request (else the loopback address)."""
    if listen_host not in WILDCARDS:
        host = f"[{listen_host}]" if ":" in listen_host else listen_host
        return f"{host}:{port}"
    given = headers.get("host", "").strip()
    if given and all(c.isalnum() or c in ".-:[]_" for c in given):
        return given if given.rpartition(":")[2].isdigit() else f"{given}:{port}"
    return f"127.0.0.1:{port}"


def groups(config: Config, registry: Mapping[str, ProbeKind],
           jobs: Iterable[tuple[str, str]], here: str) -> list[dict[str, object]]:
    """One target group per (kind, target) this daemon runs, sorted."""
    out: list[dict[str, object]] = []
    for kind_name, target in sorted(jobs):
        kind = registry.get(kind_name)
        if kind is None:
            continue
        server, provider = server_and_provider(kind, config, target)
        out.append({"targets": [here], "labels": {
            "__param_probe": kind_name, "__param_target": target,
            "server": server, "provider": provider,
        }})
    return out


def render(config: Config, registry: Mapping[str, ProbeKind],
           jobs: Iterable[tuple[str, str]], here: str) -> bytes:
    return json.dumps(groups(config, registry, jobs, here), indent=1).encode() + b"\n"
