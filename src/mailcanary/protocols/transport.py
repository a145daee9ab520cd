"""Opening connections in separately timed phases: dns, connect, then tls.

Client libraries usually resolve, connect and handshake in one call, which hides *where*
time went and where it failed. We resolve and connect ourselves and hand the connected
socket to asyncio, so each step is its own phase and its own failure.

Who closes what: `open_socket` owns its socket until it returns it; `connect` hands it to
asyncio, and from then on only the transport closes it (asyncio closes the transport
itself when the handshake fails or is cancelled). Closing the socket directly would free
its descriptor under a transport that is still shutting TLS down; the number is reused
at once, and the old transport's clean-up then unregisters whatever holds it now (a
probe's socket, a /metrics connection, the loop's signal wake-up pipe).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from mailcanary.protocols.eyeballs import connect_first
from mailcanary.protocols.limits import acquire_for
from mailcanary.protocols.resolver import Address
from mailcanary.protocols.runtime import CERT_CACHE_SIZE, CertCache, runtime_of
from mailcanary.protocols.tls import TLSSource, context_of, tls_context
from mailcanary.result import ProbeContext, TLSInfo

P = TypeVar("P", bound=asyncio.BaseProtocol)

# How long a closing TLS connection waits for the server's close_notify before it aborts
# (asyncio's default is 30 s: a timed-out probe's descriptor would linger that long).
SSL_SHUTDOWN_TIMEOUT = 2.0

__all__ = ["SSL_SHUTDOWN_TIMEOUT", "connect", "open_socket", "record_tls", "resolve",
           "start_tls", "tls_context", "tls_info"]  # tls_context: moved to protocols/tls.py



async def resolve(ctx: ProbeContext, host: str, port: int) -> list[Address]:
    with ctx.phase("dns"):
        if host.lower().rstrip(".").endswith(".invalid"):
            # RFC 6761: names under .invalid never resolve; answer as a resolver must.
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        addresses = await runtime_of(ctx).resolver.resolve(host.strip("[]"), port)
    if ctx.transcript.enabled:
        ctx.transcript.note("*", f"resolved {host} to "
                            f"{', '.join(str(a[1][0]) for a in addresses)}")
    return addresses


async def open_socket(ctx: ProbeContext, host: str, port: int) -> socket.socket:
    """A connected non-blocking TCP socket to the first address that answers (eyeballs.py).

    In the daemon the connection first takes its server's slot, then a global one
    (`limits`); the wait is timed in phase connect but stops the probe's timeout, and has
    its own bound: a probe stuck behind a dead server's connections reports a connect
    timeout that names the full limit (`limits.SlotTimeout`).
    """
    addresses = await resolve(ctx, host, port)
    with ctx.phase("connect"):
        waited = await acquire_for(host, port)
        if waited >= 0.001:
            ctx.transcript.note("*", f"waited {waited:.3f} s for a connection slot")
        sock, (_, addr) = await connect_first(
            addresses, lambda text: ctx.transcript.note("*", text)
        )
        ctx.transcript.note("*", f"connected to {addr[0]} port {addr[1]}")
        return sock


async def connect(
    ctx: ProbeContext, host: str, port: int, factory: Callable[[], P],
    tls: TLSSource | None,
) -> tuple[asyncio.Transport, P]:
    """A transport on a connected socket (phases dns, connect, and tls when `tls`; a
    context factory is called only here, once the socket is connected)."""
    sock = await open_socket(ctx, host, port)
    loop = asyncio.get_running_loop()
    if tls is None:
        # From here the transport owns `sock`: never close it here, not even when cancelled.
        return await loop.create_connection(factory, sock=sock)
    try:
        context = context_of(tls)
    except BaseException:
        sock.close()  # still ours: no transport has it yet
        raise
    with ctx.phase("tls"):
        return await loop.create_connection(
            factory, sock=sock, ssl=context, server_hostname=host,
            ssl_shutdown_timeout=SSL_SHUTDOWN_TIMEOUT,
        )


async def start_tls(
    ctx: ProbeContext, transport: asyncio.BaseTransport, protocol: asyncio.BaseProtocol,
    tls: ssl.SSLContext, host: str,
) -> asyncio.Transport:
    """The in-band upgrade (phase tls); on failure asyncio closes `transport` itself."""
    loop = asyncio.get_running_loop()
    with ctx.phase("tls"):
        upgraded = await loop.start_tls(
            transport, protocol, tls, server_hostname=host,  # type: ignore[arg-type]
            ssl_shutdown_timeout=SSL_SHUTDOWN_TIMEOUT,
        )
    assert upgraded is not None
    return upgraded


def _name(parts: object) -> str | None:
    """'CN=..., O=...' from getpeercert()'s nested tuples."""
    if not isinstance(parts, tuple):
        return None
    names = []
    short = {
        "commonName": "CN",
        "organizationName": "O",
        "organizationalUnitName": "OU",
        "countryName": "C",
    }
    for rdn in parts:
        for key, value in rdn:
            names.append(f"{short.get(key, key)}={value}")
    return ", ".join(names) or None


def tls_info(ssl_object: ssl.SSLObject | ssl.SSLSocket | None,
             known: CertCache | None = None) -> TLSInfo | None:
    """What the handshake showed. `known` (the runtime's) keeps the decoded certificate
    per DER bytes, verify mode and TLS version: decoding it and parsing its dates was a
    tenth of a healthy probe's CPU, for the same certificate every time, and the one
    (frozen) TLSInfo is shared by every result that saw it (20,000 results at 10,000
    accounts, not 20,000 copies)."""
    if ssl_object is None:
        return None
    version = ssl_object.version()
    key = None
    if known is not None:
        der = ssl_object.getpeercert(binary_form=True)
        key = None if der is None else (der, ssl_object.context.verify_mode, version)
        cached = None if key is None else known.get(key)
        if cached is not None:
            return cached
    info = _decoded(ssl_object.getpeercert(), version)
    if known is not None and key is not None:
        if len(known) >= CERT_CACHE_SIZE:
            known.clear()
        known[key] = info
    return info


def _decoded(cert: Any, version: str | None) -> TLSInfo:
    if not cert:
        return TLSInfo(version=version)
    not_after = cert.get("notAfter")
    ts = ssl.cert_time_to_seconds(not_after) if isinstance(not_after, str) else None
    return TLSInfo(
        version=version,
        not_after=None if ts is None else
        datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        not_after_timestamp=None if ts is None else float(ts),
        issuer=_name(cert.get("issuer")),
        subject=_name(cert.get("subject")),
    )


def record_tls(ctx: ProbeContext, ssl_object: ssl.SSLObject | ssl.SSLSocket | None) -> None:
    ctx.tls = tls_info(ssl_object, runtime_of(ctx).certs)
    if ctx.tls is not None:
        ctx.transcript.note(
            "*",
            f"TLS {ctx.tls.version}, certificate issued by {ctx.tls.issuer}, "
            f"valid until {ctx.tls.not_after}",
        )
