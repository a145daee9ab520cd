"""The `dnsbl` check (RFC 5782): each sending IP against each blocklist zone.

An A record in 127.0.0.0/8 under the reversed address means listed, and the TXT record of
the same name is the reason. 127.255.255.0/24 is how zones such as Spamhaus's say they
refused the query (.252 a typo in the zone, .254 a query through a public resolver, .255 too
many queries): never a listing, but the check could not run, so it fails as `dns_error`
with a hint that names the cure. An answer outside 127/8 is a resolver that rewrites
NXDOMAIN: not a listing either, and said so.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket

from mailcanary.diagnosis.hints import DNSBL_REFUSED_HINT
from mailcanary.i18n import Text
from mailcanary.probes.domain.run import DomainRun, Outcome, failed, passed
from mailcanary.protocols.dns import reverse_query_name

_LOOPBACK = ipaddress.ip_network("127.0.0.0/8")
_REFUSED = ipaddress.ip_network("127.255.255.0/24")
_REFUSALS = {"127.255.255.252": "typo in the zone name",
             "127.255.255.254": "query through a public or open resolver",
             "127.255.255.255": "too many queries"}


async def _one(run: DomainRun, ip: str, zone: str) -> Outcome:
    name = reverse_query_name(ip, zone)
    try:
        answers = [r.address for r in await run.dns.query(name, "A")]  # type: ignore[attr-defined]
    except socket.gaierror as exc:
        if exc.errno == socket.EAI_NONAME:
            return passed(f"{ip} not listed on {zone}")
        return failed("dns_error", f"{zone}: {exc.strerror or exc}")
    if not answers:
        return passed(f"{ip} not listed on {zone}")
    refused = [a for a in answers if ipaddress.ip_address(a) in _REFUSED]
    if refused:
        why = _REFUSALS.get(refused[0], "query refused")
        return failed("dns_error", f"{zone} refused to answer for {ip}: {refused[0]} ({why}); "
                      "not a listing", hint=Text(DNSBL_REFUSED_HINT))
    listed = [a for a in answers if ipaddress.ip_address(a) in _LOOPBACK]
    if not listed:
        return failed("dns_error", f"{zone} answered {', '.join(answers)} for {ip}, outside "
                      "127.0.0.0/8: a resolver that rewrites NXDOMAIN? Not a listing")
    try:
        reasons = await run.dns.txt_or_none(name)
    except socket.gaierror:
        reasons = []
    reason = " ".join(reasons) or "(the zone gives no TXT reason)"
    return failed("blocklisted", f"{ip} is listed on {zone} ({', '.join(listed)}): {reason}")


async def check_dnsbl(run: DomainRun) -> Outcome:
    ips, zones = run.entry.sending_ips, run.entry.dnsbl
    if not ips or not zones:
        return passed("no sending_ips configured: nothing to check" if not ips
                      else "no dnsbl zones configured: nothing to check")
    outcomes = await asyncio.gather(*(_one(run, ip, zone) for ip in ips for zone in zones))
    for outcome in outcomes:
        run.note(f"DNSBL: {outcome.detail}")
    # A listing matters more than a zone that could not answer.
    for wanted in ("blocklisted", "dns_error"):
        for outcome in outcomes:
            if outcome.reason == wanted:
                return outcome
    return passed(f"{len(ips)} IP(s) not listed on {', '.join(zones)}")
