"""POP3 login probe: connect, TLS/STLS, greeting, CAPA, AUTH or USER/PASS, STAT, QUIT.

STAT is the `select` phase: Gmail refuses POP for an account without POP switched on only at
the first STAT after a good login, so a login is called good only once STAT answered.
"""

from __future__ import annotations

from mailcanary.config import Config
from mailcanary.diagnosis import Where
from mailcanary.probes.login import LOGIN_PHASES, login_kind
from mailcanary.protocols.pop3 import Pop3Client
from mailcanary.protocols.signin import pop3_login
from mailcanary.protocols.transport import tls_context
from mailcanary.result import ProbeContext


async def probe(ctx: ProbeContext, config: Config, target: str) -> None:
    account = config.account(target)
    assert account.pop3 is not None
    endpoint = account.pop3
    ctx.where = Where(endpoint.host, endpoint.effective_port, "pop3", account.provider)
    ctx.extra["server"] = ctx.where.server
    tls = tls_context(account.ca_file) if endpoint.security != "none" else None
    client = Pop3Client(ctx, endpoint, tls)
    try:
        await client.connect()
        await pop3_login(client, account)
        with ctx.phase("select"):
            messages, octets = await client.stat()
        ctx.transcript.note("*", f"maildrop has {messages} message(s), {octets} octets")
        await client.quit()
    finally:
        client.close()


KIND = login_kind("pop3", probe, (*LOGIN_PHASES, "select"))
