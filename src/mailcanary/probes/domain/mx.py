"""The `mx` and `mx_tls` checks: who receives the domain's mail, and over verified TLS.

`mx_tls` speaks to every MX as a sending server does: port 25, EHLO, STARTTLS, a handshake
verified for the MX *name* (the address was looked up with the domain checks' resolver),
then QUIT. Each MX gets its own context, so its phases and failure are its own; the run's
phases add them up, and the run's `tls` is the certificate that expires first.
"""

from __future__ import annotations

import asyncio
import socket
import ssl

from mailcanary.config import SmtpEndpoint
from mailcanary.diagnosis import Where, classify
from mailcanary.diagnosis.hints import MX_STARTTLS_HINT
from mailcanary.i18n import Text
from mailcanary.probes.domain.run import DomainRun, Outcome, failed, passed
from mailcanary.protocols.smtp import SmtpClient
from mailcanary.protocols.tls import tls_context
from mailcanary.result import ProbeContext, TLSInfo

SMTP_PORT = 25


async def lookup_mx(run: DomainRun) -> Outcome:
    """The `mx` check; fills run.mx_hosts. No MX falls back to the domain's own address
    (RFC 5321 5.1); a null MX (RFC 7505) or neither is mx_missing."""
    try:
        records = await run.dns.mx(run.domain)
        run.note(f"MX of {run.domain}: "
                 + (", ".join(f"{p} {h or '.'}" for p, h in records) or "none"))
        if records == [(0, "")] or (records and not any(h for _, h in records)):
            return failed("mx_missing", f"{run.domain} has a null MX (RFC 7505): it accepts "
                          "no mail")
        if not records:
            if await run.dns.addresses(run.domain):
                run.mx_hosts = [run.domain]
                return passed(f"no MX record; mail goes to {run.domain}'s own address "
                              "(implicit MX)")
            return failed("mx_missing", f"{run.domain} has no MX record and no address")
        hosts = list(dict.fromkeys(h for _, h in records if h))
        missing = [h for h in hosts if not await _resolves(run, h)]
        run.mx_hosts = [h for h in hosts if h not in missing]
        if missing:
            return failed("nxdomain", f"MX host(s) without an address: {', '.join(missing)}")
        return passed(", ".join(f"{p} {h}" for p, h in records))
    except socket.gaierror as exc:
        reason = "nxdomain" if exc.errno == socket.EAI_NONAME else "dns_error"
        return failed(reason, exc.strerror or str(exc))


async def _resolves(run: DomainRun, host: str) -> bool:
    try:
        return bool(await run.dns.addresses(host))
    except socket.gaierror as exc:
        if exc.errno == socket.EAI_NONAME:
            return False
        raise


class MxClient(SmtpClient):
    """SMTP to an address already looked up, verifying the certificate for the MX name."""

    def __init__(self, ctx: ProbeContext, mx: str, address: str, tls: ssl.SSLContext) -> None:
        endpoint = SmtpEndpoint(host=address, port=SMTP_PORT, security="starttls")
        super().__init__(ctx, endpoint, tls)
        self.mx = mx

    async def upgrade(self) -> None:
        self.host = self.mx  # server_hostname: the MX name, as RFC 7672/8461 senders check
        await super().upgrade()


async def check_mx_tls(run: DomainRun) -> Outcome:
    if not run.mx_hosts:
        return run.mx_failure or failed("mx_missing", f"{run.domain} has no usable MX")
    tls = tls_context(run.entry.ca_file)
    results = await asyncio.gather(*(_one_mx(run, host, tls) for host in run.mx_hosts))
    infos = [(host, info) for host, (info, _) in zip(run.mx_hosts, results, strict=True)
             if info is not None]
    expiring = [i for _, i in infos if i.not_after_timestamp is not None]
    if expiring:
        run.ctx.tls = min(expiring, key=lambda i: i.not_after_timestamp or 0.0)
    for _, outcome in results:
        if outcome is not None:
            return outcome
    return passed("; ".join(f"{host}: {info.version}, certificate valid until {info.not_after}"
                            for host, info in infos))


async def _one_mx(
    run: DomainRun, mx: str, tls: ssl.SSLContext
) -> tuple[TLSInfo | None, Outcome | None]:
    """(TLS info, None) when the MX passed, (info or None, the failure) otherwise."""
    addresses = sorted(await run.dns.addresses(mx), key=lambda a: ":" in a)  # IPv4 first
    outcome: Outcome | None = None
    limit = run.budget * 0.9  # within the check's own budget: the MX is named on a timeout
    for address in addresses:
        sub = ProbeContext(probe=run.ctx.probe, target=run.ctx.target, redact=run.ctx.redact,
                          keep_transcript=run.ctx.keep_transcript, runtime=run.ctx.runtime)
        client = MxClient(sub, mx, address, tls)
        try:
            async with asyncio.timeout(limit):
                await client.connect()
                await client.quit()
            outcome = None
        except Exception as exc:
            phase = sub.current_phase
            fail = classify(exc, phase, Where(mx, SMTP_PORT, "smtp"))
            if fail.reason == "internal_error":
                raise
            detail = fail.detail
            if fail.reason == "timeout":
                detail = f"no answer within {limit:.3g} s (phase {phase})"
            hint = Text(MX_STARTTLS_HINT, host=mx) if fail.reason == "starttls_unavailable" \
                else fail.hint
            outcome = failed(fail.reason, f"{mx} ({address}): {detail}", phase or "connect",
                             hint)
        finally:
            client.close()
            _merge(run.ctx, sub, mx)
        if outcome is None or outcome.phase not in ("dns", "connect"):
            return sub.tls, outcome  # reached this MX: its verdict stands
    return None, outcome or failed("nxdomain", f"{mx} has no address")


def _merge(ctx: ProbeContext, sub: ProbeContext, mx: str) -> None:
    for name, seconds in sub.phases.items():
        ctx.phases[name] = ctx.phases.get(name, 0.0) + seconds
    if ctx.keep_transcript:
        ctx.transcript.note("*", f"--- MX {mx} ---")
        ctx.transcript.lines.extend(sub.transcript.lines)
