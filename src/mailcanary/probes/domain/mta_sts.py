"""The `mta_sts` check (RFC 8461): the TXT record, then the HTTPS policy, covering every MX.

No v=STSv1 record means the domain does not use MTA-STS: that passes (it is optional).
With one, the policy must be fetchable over verified HTTPS without redirects, valid, and
(unless its mode is none) list a pattern for every MX, or enforcing senders stop delivering.
The host mta-sts.<domain> is looked up with the domain checks' resolver, and the request
goes to that address with the name as SNI and Host. The body is read to at most 1 MiB
(after decompression, protocols/httpbody.py).
"""

from __future__ import annotations

import socket

import httpx

from mailcanary.probes.domain.records import parse_sts_policy, sts_record_problem, uncovered_mx
from mailcanary.probes.domain.run import DomainRun, Outcome, failed, passed
from mailcanary.protocols.httpbody import capped_request
from mailcanary.protocols.tls import tls_context

POLICY_PATH = "/.well-known/mta-sts.txt"


class PolicyFetchError(Exception):
    """The policy could not be fetched; the message says why."""


async def check_mta_sts(run: DomainRun) -> Outcome:
    name = f"_mta-sts.{run.domain}"
    try:
        records = [r for r in await run.dns.txt_or_none(name)
                   if r.replace(" ", "").lower().startswith("v=stsv1")]
    except socket.gaierror as exc:
        return failed("dns_error", exc.strerror or str(exc))
    if not records:
        return passed(f"no MTA-STS record at {name} (MTA-STS is optional)")
    if len(records) > 1:
        return failed("mta_sts_invalid", f"{len(records)} v=STSv1 records at {name} (RFC "
                      "8461 3.1: senders then assume no policy)")
    problem = sts_record_problem(records[0])
    if problem:
        return failed("mta_sts_invalid", f"{name}: {problem}")
    host = f"mta-sts.{run.domain}"
    try:
        text = await fetch_policy(run, host)
    except PolicyFetchError as exc:
        return failed("mta_sts_invalid", f"https://{host}{POLICY_PATH}: {exc}")
    policy, problem = parse_sts_policy(text)
    if problem:
        return failed("mta_sts_invalid", f"https://{host}{POLICY_PATH}: {problem}")
    if policy.mode != "none":
        missing = uncovered_mx(policy, run.mx_hosts)
        if missing:
            return failed("mta_sts_invalid", f"no mx: pattern of the policy ("
                          f"{', '.join(policy.mx)}) matches MX {', '.join(missing)}")
    return passed(f"mode {policy.mode}, max_age {policy.max_age}, mx "
                  f"{', '.join(policy.mx) or '-'}")


async def fetch_policy(run: DomainRun, host: str) -> str:
    try:
        addresses = await run.dns.addresses(host)
    except socket.gaierror as exc:
        raise PolicyFetchError(exc.strerror or str(exc)) from None
    if not addresses:
        raise PolicyFetchError(f"{host} has no address")
    address = addresses[0]
    literal = f"[{address}]" if ":" in address else address
    run.note(f"GET https://{host}{POLICY_PATH} from {address}")
    try:
        async with httpx.AsyncClient(verify=tls_context(run.entry.ca_file), trust_env=False,
                                     follow_redirects=False, timeout=run.budget) as client:
            response = await capped_request(
                client, "GET", f"https://{literal}{POLICY_PATH}", total=run.budget,
                headers={"Host": host}, extensions={"sni_hostname": host})
    except httpx.HTTPError as exc:
        raise PolicyFetchError(f"{type(exc).__name__}: {exc}") from None
    if response.status_code != 200:
        where = response.headers.get("location")
        raise PolicyFetchError(f"HTTP {response.status_code}"
                               + (f" (redirects are not allowed: to {where})" if where else ""))
    media = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "text/plain":
        raise PolicyFetchError(f"Content-Type {media or 'missing'}, not text/plain")
    return response.text
