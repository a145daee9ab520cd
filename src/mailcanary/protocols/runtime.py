"""What one daemon, or one `check` run, shares between its probes while it runs.

Nothing in the protocol or probe layers keeps runtime state in a module global (a test
pins that): the resolver cache, the connection slots, the EHLO name, the OAuth2 token
sources, the settings doctor's answers, the round trips in flight and the state_dir all
live here. The daemon and `check` each make one `Runtime` and hand it to every probe in its
`ProbeContext`, so two daemons (or two `check` runs, or tests) in one process share
nothing, and a reload changes what it should in one place.
"""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from mailcanary.config import AccountConfig, Config, OAuth2Config
from mailcanary.diagnosis.doctor import Candidate
from mailcanary.protocols.limits import ConnectionLimits
from mailcanary.protocols.resolver import Resolver
from mailcanary.protocols.shared import SharedAnswers
from mailcanary.result import ProbeContext, TLSInfo

if TYPE_CHECKING:  # the token client (httpx) loads only when an account uses OAuth2
    from mailcanary.protocols.oauth2.tokens import TokenSource

CERT_CACHE_SIZE = 1024  # distinct server certificates decoded once each (then forgotten)
CertCache = dict[tuple[bytes, int, str | None], TLSInfo]  # (DER, verify mode, version)
DOCTOR_TTL = 600.0  # a found (or not found) setting is kept this long per endpoint
FALLBACK_HELO = "mailcanary.localdomain"

# (protocol, host, port, security, ca_file): one candidate search per endpoint at a time.
DoctorKey = tuple[str, str, int, str, str]
TokenKey = tuple[str, OAuth2Config, str]


def _doctor_answers() -> SharedAnswers[DoctorKey, Candidate | None]:
    return SharedAnswers(DOCTOR_TTL)


def _fqdn_answer() -> SharedAnswers[str, str]:
    return SharedAnswers(float("inf"), max_entries=1)


@dataclass
class Runtime:
    limits: ConnectionLimits | None = None  # None: connections take no slots (tests)
    helo_name: str | None = None  # `[daemon] helo_name`; None: this machine's FQDN
    state_dir: Path | None = None  # where a rotated refresh token may be kept
    resolver: Resolver = field(default_factory=Resolver)
    tokens: dict[TokenKey, TokenSource] = field(default_factory=dict)
    doctor: SharedAnswers[DoctorKey, Candidate | None] = field(default_factory=_doctor_answers)
    canaries: set[str] = field(default_factory=set)  # round trips running now: never swept
    fqdn: SharedAnswers[str, str] = field(default_factory=_fqdn_answer)
    certs: CertCache = field(default_factory=dict)  # transport.tls_info's decoded certificates

    @classmethod
    def for_config(cls, config: Config) -> Runtime:
        """The daemon's and `check`'s runtime: the config's connection limits and names."""
        return cls(limits=ConnectionLimits.for_config(config),
                   helo_name=config.daemon.helo_name, state_dir=config.daemon.state_dir,
                   resolver=Resolver(nameservers=config.daemon.nameservers or ()))

    def reconfigure(self, config: Config) -> None:
        """A reload: new names; the doctor asks again (the admin may have fixed the
        server); the resolver cache and token sources stay. The slots' caps are the
        scheduler's to change (`ConnectionLimits.configure`), once none is in use."""
        self.helo_name = config.daemon.helo_name
        self.state_dir = config.daemon.state_dir
        self.resolver.use_nameservers(config.daemon.nameservers or ())
        self.doctor.clear()

    async def helo(self) -> str:
        """`[daemon] helo_name`, else the FQDN: looked up once, in a thread, since
        `getfqdn()` may wait for a slow resolver and must not block the loop."""
        if self.helo_name:
            return self.helo_name
        return await self.fqdn.get("", _lookup_fqdn)

    def token_source(self, account: AccountConfig) -> TokenSource:
        """The account's one token source: its probes share one access token."""
        assert account.oauth2 is not None
        key = (account.name, account.oauth2, str(account.ca_file))
        source = self.tokens.get(key)
        if source is None:
            from mailcanary.protocols.oauth2.tokens import TokenSource  # noqa: PLC0415

            source = self.tokens[key] = TokenSource(account.name, account.oauth2,
                                                    account.ca_file)
        return source

    async def close(self) -> None:
        """Shutdown: no doctor search or lookup goes on for nobody."""
        await self.doctor.close()
        await self.resolver.answers.close()


async def _lookup_fqdn() -> str:
    name = await asyncio.to_thread(socket.getfqdn)
    return name if "." in name else FALLBACK_HELO


def runtime_of(ctx: ProbeContext) -> Runtime:
    """The context's runtime. A context made without one (a test driving a client
    directly) gets its own: no slots, nothing shared with anyone."""
    runtime = ctx.runtime
    if not isinstance(runtime, Runtime):
        runtime = ctx.runtime = Runtime()
    return runtime
