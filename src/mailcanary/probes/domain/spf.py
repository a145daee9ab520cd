"""The `spf` check: one v=spf1 record, valid, within 10 lookups, passing every sending IP.

Evaluation is pyspf's (the RFC 7208 reference implementation, strict mode: more than 10
DNS-querying terms or 2 void lookups is a permerror, as receivers count them). pyspf looks
up synchronously, so it runs in a worker thread, and its one DNS hook (`spf.DNSLookup`)
is pointed at dnspython with the run's nameservers (a context variable carries them into
the thread). Without sending IPs the record is still evaluated, for an address from the
documentation range that matches no term, so every include is walked and counted.
"""

from __future__ import annotations

import asyncio
import contextvars
import socket
from typing import Any

import dns.exception
import dns.resolver
import spf

from mailcanary.probes.domain.run import DomainRun, Outcome, failed, passed
from mailcanary.protocols.dns import sync_resolver

PROBE_IP = "192.0.2.255"  # RFC 5737 TEST-NET-1: no real record authorizes it
_RESOLVER: contextvars.ContextVar[dns.resolver.Resolver] = contextvars.ContextVar("spf_dns")


def _lookup(name: str, qtype: str, strict: object = True, timeout: float = 20.0) -> list[Any]:
    """pyspf's DNSLookup contract: [((name, type), value), ...]; TempError on trouble."""
    try:
        answer = _RESOLVER.get().resolve(name, qtype, lifetime=timeout, search=False,
                                         raise_on_no_answer=False)
    except dns.resolver.NXDOMAIN:
        return []
    except (dns.exception.DNSException, OSError) as exc:
        raise spf.TempError(f"DNS {exc}") from None
    out: list[Any] = []
    for rdata in answer:
        if qtype in ("A", "AAAA"):
            out.append(((name, qtype), rdata.address))
        elif qtype == "MX":
            out.append(((name, qtype), (rdata.preference, rdata.exchange)))
        elif qtype == "PTR":
            out.append(((name, qtype), rdata.target.to_text(True)))
        elif qtype in ("TXT", "SPF"):
            out.append(((name, qtype), rdata.strings))
    return out


spf.DNSLookup = _lookup


def _evaluate(resolver: dns.resolver.Resolver, domain: str, record: str, ips: list[str],
              seconds: float) -> list[tuple[str, str, str]]:
    """(ip, result, explanation) for each IP; runs in a worker thread."""
    _RESOLVER.set(resolver)
    out = []
    for ip in ips:
        query = spf.query(i=ip, s=f"postmaster@{domain}", h=domain, strict=True,
                          timeout=seconds, querytime=seconds)
        result, _code, explanation = query.check(spf=record)
        out.append((ip, str(result), str(explanation)))
    return out


async def check_spf(run: DomainRun) -> Outcome:
    try:
        records = await run.dns.txt_or_none(run.domain)
    except socket.gaierror as exc:
        return failed("dns_error", exc.strerror or str(exc))
    spf_records = [r for r in records if r.lower() == "v=spf1" or r.lower().startswith("v=spf1 ")]
    if not spf_records:
        return failed("spf_missing", f"{run.domain} has no TXT record starting with v=spf1")
    if len(spf_records) > 1:
        return failed("spf_invalid", f"{len(spf_records)} SPF records (RFC 7208 4.5: a "
                      f"permerror): {' | '.join(spf_records)}")
    record = spf_records[0]
    run.note(f"SPF of {run.domain}: {record}")
    ips = list(run.entry.sending_ips)
    resolver = sync_resolver(run.dns.nameservers, run.dns.lifetime)
    results = await asyncio.to_thread(_evaluate, resolver, run.domain, record,
                                      [PROBE_IP, *ips], run.budget)
    for ip, result, explanation in results:
        run.note(f"SPF for {ip}: {result} ({explanation})")
        if result == "permerror":
            return failed("spf_invalid", f"{explanation} in {record!r}")
        if result == "temperror":
            return failed("dns_error", f"SPF evaluation of {run.domain}: {explanation}")
    bad = [(ip, result) for ip, result, _ in results[1:] if result in ("fail", "softfail")]
    if bad:
        words = ", ".join(f"{ip} gets {result}" for ip, result in bad)
        return failed("spf_not_authorized", f"{words} from {record!r}")
    verdicts = ", ".join(f"{ip}: {result}" for ip, result, _ in results[1:])
    return passed(record + (f" ({verdicts})" if verdicts else ""))
