"""What a probe kind is, in one object: everything the rest of mailcanary asks about it.

The scheduler, `check`'s selection, the metrics, the auth backoff, the settings doctor and
the daemon's periodic upkeep know no kind by name: each asks the kind's `ProbeKind`. A new
kind is one folder that builds its `ProbeKind` plus one line in `probes.PROBES`
(tests/test_probe_kinds.py checks that every registered kind provides all of it).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from mailcanary.config import AccountConfig, Config, ImapEndpoint, Pop3Endpoint, SmtpEndpoint
from mailcanary.protocols.limits import server_key
from mailcanary.protocols.runtime import Runtime
from mailcanary.result import ProbeContext, ProbeResult

ProbeFn = Callable[[ProbeContext, Config, str], Awaitable[None]]
TimeoutFn = Callable[[Config, str], float]
TargetFn = Callable[[Config, str], Any]
AnyEndpoint = ImapEndpoint | SmtpEndpoint | Pop3Endpoint


@dataclass(frozen=True)
class Selection:
    """How `check` names a kind's targets: `--FLAG NAME` (repeatable). Several kinds may
    share one (`--account` selects an account's imap, smtp and pop3)."""

    flag: str  # "account" -> --account
    noun: str  # "account", for "no account named ..."
    plural: str  # "accounts"
    names: Callable[[Config], Iterable[str]]  # every name the flag accepts, in config order
    help: str


@dataclass
class Upkeep:
    """What a kind's periodic clean-up did: results to count like any probe's (a verdict
    nobody gave), late finds per target, and when it wants to run again at the latest."""

    removed: int = 0
    results: list[ProbeResult] = field(default_factory=list)
    late: dict[str, int] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)  # where -> what went wrong
    pending_until: float | None = None  # wall-clock time; None: the usual period
    log: dict[str, Any] = field(default_factory=dict)  # extra fields of its log line


BackedOff = Callable[[str, str], bool]  # (kind, target) -> in auth backoff now
Owns = Callable[[str], bool]  # target -> this shard's
Sweeper = Callable[[Config, Runtime, BackedOff, Owns | None], Awaitable[Upkeep]]


def _no_phases(config: Config, target: str) -> tuple[str, ...]:
    return ()


Home = tuple[AccountConfig, AnyEndpoint]


def _no_home(config: Config, target: str) -> Home | None:
    return None


@dataclass(frozen=True)
class Whereabouts:
    """Where a target lives, for the fleet view: `server` host:port ("" if none),
    `provider` the account's preset ("" if none), the account's own `labels`."""

    server: str = ""
    provider: str = ""
    labels: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class ProbeKind:
    """One kind of probe. `run` does the protocol work and raises on trouble (the runner
    owns the timeout, timing and classification)."""

    name: str
    run: ProbeFn
    timeout: TimeoutFn
    reasons: tuple[str, ...]  # every reason it can report
    selection: Selection
    has: Callable[[Config, str], bool]  # does this selection name give a target of this kind
    entry: TargetFn  # the config object a target names (KeyError if none)
    accounts: Callable[[Config, str], list[AccountConfig]]  # whose credentials it logs in with
    endpoints: Callable[[Config, str], list[AnyEndpoint]]  # the servers it talks to
    phases: tuple[str, ...]  # every phase it can report
    preset_phases: Callable[[Config, str], tuple[str, ...]] = _no_phases  # series at 0 first
    delivery: bool = False  # a delivery histogram and placement counter (label route=target)
    doctor: bool = False  # the settings doctor may suggest another port/security
    sweep: Sweeper | None = None  # periodic clean-up (the daemon runs it)
    watched_accounts: bool = False  # its fingerprint includes its accounts' config
    # The mailbox a target is about (login: its endpoint; round trip: the receiver's IMAP,
    # else POP3): its server, provider and labels group alerts and dashboards.
    home: Callable[[Config, str], Home | None] = _no_home

    def targets(self, config: Config) -> list[str]:
        return [n for n in self.selection.names(config) if self.has(config, n)]

    def interval(self, config: Config, target: str) -> float:
        entry = self.entry(config, target)  # a kind's own default (routes: 15 min) wins
        interval: float | None = getattr(entry, "effective_interval", None) or getattr(
            entry, "interval", None)
        return interval or config.defaults.interval

    def fingerprint(self, config: Config, target: str) -> str:
        """The target's config: a change reschedules its job."""
        part: str = self.entry(config, target).model_dump_json()
        if self.watched_accounts:
            part += "".join(a.model_dump_json() for a in self.accounts(config, target))
        return part

    def servers(self, config: Config, target: str) -> list[str]:
        """host:port of each server it talks to."""
        return [server_key(e.host, e.effective_port) for e in self.endpoints(config, target)]

    def whereabouts(self, config: Config, target: str) -> Whereabouts:
        try:
            home = self.home(config, target)
        except LookupError:  # the target left the config
            home = None
        if home is None:
            return Whereabouts()
        account, endpoint = home
        return Whereabouts(
            server_key(endpoint.host, endpoint.effective_port), account.provider or "",
            tuple(sorted(account.labels.items())),
        )
