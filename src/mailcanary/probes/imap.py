"""IMAP login probe: connect, TLS, greeting, CAPABILITY, authenticate, SELECT INBOX, LOGOUT."""

from __future__ import annotations

from mailcanary.config import Config
from mailcanary.diagnosis import Where
from mailcanary.probes.login import LOGIN_PHASES, login_kind
from mailcanary.protocols.imap import ImapClient
from mailcanary.protocols.signin import imap_login
from mailcanary.protocols.transport import tls_context
from mailcanary.result import ProbeContext


async def probe(ctx: ProbeContext, config: Config, target: str) -> None:
    account = config.account(target)
    assert account.imap is not None
    endpoint = account.imap
    ctx.where = Where(endpoint.host, endpoint.effective_port, "imap", account.provider)
    ctx.extra["server"] = ctx.where.server
    tls = tls_context(account.ca_file) if endpoint.security != "none" else None
    client = ImapClient(ctx, endpoint, tls)
    try:
        await client.connect()
        await imap_login(client, account)
        with ctx.phase("select"):
            await client.select("INBOX", readonly=True)
        await client.logout()
    finally:
        client.close()


KIND = login_kind("imap", probe, (*LOGIN_PHASES, "select"))
