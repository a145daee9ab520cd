"""Does a port speak IMAP, SMTP or POP3 with this security? Without ever logging in.

The settings doctor asks this of each candidate setting. A candidate works when it greets as
the protocol and, for ``tls``, completes a TLS handshake verified against the account's trust
anchors and host name; for ``starttls``, the plaintext greeting, the capability list offering
STARTTLS/STLS, the server's go-ahead and then the verified handshake. Nothing else is sent:
no user name, no password, no AUTH. Every read is bounded in length and count.
"""

from __future__ import annotations

from mailcanary.protocols.limits import holding
from mailcanary.protocols.runtime import Runtime
from mailcanary.protocols.streams import LineClient
from mailcanary.protocols.tls import TLSSource
from mailcanary.result import ProbeContext

_MAX_LINES = 64
GREETINGS: dict[str, tuple[str, ...]] = {
    "imap": ("* OK", "* PREAUTH"),
    "smtp": ("220",),
    "pop3": ("+OK",),
}


async def _smtp_reply(client: LineClient) -> list[str]:
    lines = []
    for _ in range(_MAX_LINES):
        line = await client.readline()  # bounded by streams.MAX_LINE
        lines.append(line)
        if len(line) < 4 or line[3] != "-":
            return lines
    return lines


async def _greeting(protocol: str, client: LineClient) -> str | None:
    """The greeting's text when it is this protocol's, else None."""
    if protocol == "smtp":
        lines = await _smtp_reply(client)
        return "\n".join(lines) if lines[-1].startswith("220") else None
    line = await client.readline()
    return line if line.startswith(GREETINGS[protocol]) else None


async def _starttls_offered(protocol: str, greeting: str, client: LineClient,
                            runtime: Runtime) -> bool:
    """Ask for the capabilities (CAPABILITY, EHLO, CAPA) and look for STARTTLS / STLS."""
    if protocol == "imap":
        if "STARTTLS" in greeting.upper():
            return True
        await client.send("c1 CAPABILITY")
        offered = False
        for _ in range(_MAX_LINES):
            line = await client.readline()
            if line.startswith("c1 "):
                return offered
            offered = offered or (line.startswith("* CAPABILITY") and "STARTTLS" in line.upper())
        return False
    if protocol == "smtp":
        await client.send(f"EHLO {await runtime.helo()}")
        return any(ln[4:].strip().upper() == "STARTTLS" for ln in await _smtp_reply(client))
    await client.send("CAPA")
    if not (await client.readline()).startswith("+OK"):
        return False
    offered = False
    for _ in range(_MAX_LINES):
        line = await client.readline()
        if line == ".":
            return offered
        offered = offered or line.strip().upper() == "STLS"
    return False


async def _go_ahead(protocol: str, client: LineClient) -> bool:
    command, ok = {"imap": ("c2 STARTTLS", "c2 OK"), "smtp": ("STARTTLS", "220"),
                   "pop3": ("STLS", "+OK")}[protocol]
    await client.send(command)
    for _ in range(_MAX_LINES):
        line = await client.readline()
        if not line.startswith("* "):  # IMAP may send untagged lines first
            return line.upper().startswith(ok.upper())
    return False


async def speaks(
    runtime: Runtime, protocol: str, host: str, port: int, security: str, *,
    tls: TLSSource,
) -> bool:
    """True when host:port greets as `protocol` with `security` (tls or starttls) and the
    TLS handshake verifies. Raises OSError / ssl.SSLError / ValueError-like errors on
    trouble (the caller treats any of them as "does not work"). `tls` is best a factory
    (protocols/tls.py): most candidates of a failed probe refuse the connection, and then
    no trust store is loaded.

    The connection goes through `runtime`: its resolver cache, and a slot of its
    connection limits like any probe's connection (the server's, then a global one)."""
    ctx = ProbeContext(protocol, f"doctor:{host}:{port}", keep_transcript=False,
                       runtime=runtime)
    client = LineClient(ctx, host, port, tls)
    with holding(runtime.limits):
        try:
            await client.open(implicit_tls=security == "tls")
            greeting = await _greeting(protocol, client)
            if greeting is None:
                return False
            if security == "tls":
                return True
            if not await _starttls_offered(protocol, greeting, client, runtime):
                return False
            if not await _go_ahead(protocol, client):
                return False
            await client.upgrade()
            return True
        finally:
            client.close()
