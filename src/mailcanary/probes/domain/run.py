"""What the domain checks share within one run: the entry, the DNS client, the MX hosts,
and each check's verdict (`Outcome`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mailcanary.config import Config, DomainConfig
from mailcanary.result import ProbeContext

if TYPE_CHECKING:  # dnspython loads with the first run, not with the registry
    from mailcanary.protocols.dns import Dns


def timeout(config: Config, target: str) -> float:
    """The whole run's limit: the entry's timeout, else [defaults].timeout."""
    return config.domain(target).timeout or config.defaults.timeout


@dataclass(frozen=True)
class Outcome:
    """One check's verdict. `reason` is a taxonomy reason when not ok; `phase` where it
    failed (DNS record checks: "dns"; mx_tls: the SMTP session's phase); `hint` replaces
    the reason's general hint when the check knows better."""

    ok: bool
    detail: str
    reason: str = "ok"
    phase: str | None = None
    hint: str | None = None

    def as_json(self) -> dict[str, object]:
        return {"ok": self.ok, "detail": self.detail}


def passed(detail: str) -> Outcome:
    return Outcome(True, detail)


def failed(reason: str, detail: str, phase: str = "dns", hint: str | None = None) -> Outcome:
    return Outcome(False, detail, reason, phase, hint)


@dataclass
class DomainRun:
    ctx: ProbeContext
    entry: DomainConfig
    dns: Dns
    budget: float  # seconds one check may take (the probe's timeout, less a margin)
    mx_hosts: list[str] = field(default_factory=list)  # by preference; [] when none usable
    mx_failure: Outcome | None = None  # why there are none

    @property
    def domain(self) -> str:
        return self.entry.domain

    def note(self, text: str) -> None:
        self.ctx.transcript.note("*", text)
