"""The domain kind: a sending domain's DNS, MX TLS and blocklist listings (probe.py), one
target per `[[domains]]` entry, every hour by default. It logs in nowhere (no accounts: no
auth backoff) and learns its servers (the MX hosts) from DNS at each run, so it names no
endpoints up front. The checks (dnspython, pyspf, dkimpy, httpx) load at its first run:
`check` of an account never loads them."""

from __future__ import annotations

from mailcanary.config import AccountConfig, Config
from mailcanary.diagnosis import TAXONOMY
from mailcanary.probes.kind import AnyEndpoint, ProbeKind, Selection
from mailcanary.result import ProbeContext

REASONS: tuple[str, ...] = (
    *TAXONOMY["dns_policy"], *TAXONOMY["reputation"], *TAXONOMY["dns"],
    *TAXONOMY["network"], *TAXONOMY["timeout"], *TAXONOMY["tls"], *TAXONOMY["server"],
    *TAXONOMY["rejected"], *TAXONOMY["rate_limited"], "protocol_error", "config_error",
)
# mx_tls's SMTP sessions (as a login probe's, without auth); the DNS checks report "dns".
PHASES = ("dns", "connect", "tls", "greeting", "starttls")

DOMAIN = Selection(
    "domain", "domain", "domains", lambda config: [d.name for d in config.domains],
    help="only this domain's checks (repeatable)",
)


def _no_accounts(config: Config, target: str) -> list[AccountConfig]:
    return []


def _no_endpoints(config: Config, target: str) -> list[AnyEndpoint]:
    return []


def timeout(config: Config, target: str) -> float:
    """run.py's, loaded when asked: its dataclasses cost `check` of an account ~2 ms."""
    from mailcanary.probes.domain.run import timeout as limit  # noqa: PLC0415

    return limit(config, target)


async def _run(ctx: ProbeContext, config: Config, target: str) -> None:
    from mailcanary.probes.domain import probe  # noqa: PLC0415  (loaded when first needed)

    await probe.probe(ctx, config, target)


KIND = ProbeKind(
    name="domain", run=_run, timeout=timeout, reasons=REASONS, selection=DOMAIN,
    has=lambda config, target: True, entry=lambda config, target: config.domain(target),
    accounts=_no_accounts, endpoints=_no_endpoints, phases=PHASES,
)
