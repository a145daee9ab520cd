"""DNS record lookups (TXT, MX, A/AAAA) with dnspython, sent where `[daemon] nameservers` says.

Connections resolve host names through `resolver.py` (the system's getaddrinfo, as mail
clients do); the domain checks need records getaddrinfo cannot ask for, so they use
dnspython's asyncio resolver. With `nameservers` set every query goes to those servers,
without it to the servers of /etc/resolv.conf. Answers are not cached across runs: a
repaired record must be seen on the next run.

Errors come out as `socket.gaierror`, the type the classifier already maps: EAI_NONAME for
NXDOMAIN (`nxdomain`), EAI_AGAIN for a timeout, SERVFAIL or no answering server (`dns_error`).
An existing name without records of the type is no error: an empty list.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Sequence

import dns.asyncresolver
import dns.exception
import dns.name
import dns.nameserver
import dns.rdatatype
import dns.resolver
import dns.reversename

from mailcanary.config.domains import parse_nameserver

DEFAULT_LIFETIME = 5.0  # seconds for one lookup, retries across servers included


def _configure(resolver: dns.resolver.BaseResolver, nameservers: tuple[str, ...],
               lifetime: float) -> None:
    if nameservers:
        resolver.nameservers = [
            dns.nameserver.Do53Nameserver(*parse_nameserver(ns)) for ns in nameservers
        ]
    resolver.lifetime = lifetime
    resolver.timeout = min(lifetime, 2.0)  # per server try: a dead one is left soon


def async_resolver(nameservers: tuple[str, ...], lifetime: float) -> dns.asyncresolver.Resolver:
    """A new one per run (~0.1 ms, /etc/resolv.conf read): nothing is shared or cached."""
    resolver = dns.asyncresolver.Resolver(configure=not nameservers)
    _configure(resolver, nameservers, lifetime)
    return resolver


def sync_resolver(nameservers: tuple[str, ...], lifetime: float) -> dns.resolver.Resolver:
    """For libraries that look up synchronously in a worker thread (pyspf)."""
    resolver = dns.resolver.Resolver(configure=not nameservers)
    _configure(resolver, nameservers, lifetime)
    return resolver


def as_gaierror(name: str, exc: Exception) -> socket.gaierror:
    """A dnspython error in the classifier's terms, naming the name that was asked."""
    if isinstance(exc, dns.resolver.NXDOMAIN):
        return socket.gaierror(socket.EAI_NONAME, f"{name} does not exist (NXDOMAIN)")
    if isinstance(exc, dns.exception.Timeout):
        return socket.gaierror(socket.EAI_AGAIN, f"no DNS answer for {name} in time")
    if isinstance(exc, dns.resolver.NoNameservers):
        return socket.gaierror(socket.EAI_AGAIN,
                               f"no DNS server answered for {name} (SERVFAIL or refused)")
    return socket.gaierror(socket.EAI_AGAIN, f"DNS lookup of {name} failed: {exc}")


class Dns:
    """Lookups for one probe run: the configured servers, one lifetime per lookup."""

    def __init__(self, nameservers: Sequence[str] | None = None,
                 lifetime: float = DEFAULT_LIFETIME) -> None:
        self.nameservers = tuple(nameservers or ())
        self.lifetime = lifetime
        self.resolver = async_resolver(self.nameservers, lifetime)
        self.queries = 0

    async def query(self, name: str, rdtype: str) -> list[object]:
        """The answer's records; [] when the name exists without records of this type."""
        self.queries += 1
        try:
            answer = await self.resolver.resolve(name, rdtype, search=False)
        except dns.resolver.NoAnswer:
            return []
        except (dns.exception.DNSException, OSError) as exc:
            raise as_gaierror(name, exc) from None
        return list(answer)

    async def txt(self, name: str) -> list[str]:
        """Each TXT record as one string (its character-strings joined, RFC 7208 3.3)."""
        records = await self.query(name, "TXT")
        return [b"".join(r.strings).decode("utf-8", "replace")  # type: ignore[attr-defined]
                for r in records]

    async def txt_or_none(self, name: str) -> list[str]:
        """TXT records, with NXDOMAIN meaning none (policy names need not exist)."""
        try:
            return await self.txt(name)
        except socket.gaierror as exc:
            if exc.errno == socket.EAI_NONAME:
                return []
            raise

    async def mx(self, name: str) -> list[tuple[int, str]]:
        """(preference, host) sorted by preference; host "" for a null MX (RFC 7505)."""
        records = await self.query(name, "MX")
        out = []
        for record in records:
            host = record.exchange.to_text(omit_final_dot=True)  # type: ignore[attr-defined]
            out.append((int(record.preference), "" if host in ("", ".") else host.lower()))  # type: ignore[attr-defined]
        return sorted(out)

    async def addresses(self, name: str) -> list[str]:
        """A and AAAA records (asked at once); NXDOMAIN raises, no records is []."""
        results = await asyncio.gather(self.query(name, "A"), self.query(name, "AAAA"),
                                       return_exceptions=True)
        out: list[str] = []
        for result in results:
            if isinstance(result, BaseException):
                raise result
            out += [r.address for r in result]  # type: ignore[attr-defined]
        return out


def reverse_query_name(address: str, zone: str) -> str:
    """The DNSBL name of an address (RFC 5782): reversed octets or nibbles under `zone`."""
    reverse = dns.reversename.from_address(address)
    labels = reverse.relativize(dns.name.from_text(
        "ip6.arpa." if ":" in address else "in-addr.arpa.")).to_text()
    return f"{labels}.{zone}"
