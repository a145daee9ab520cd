"""SMTP login probe: connect, TLS/STARTTLS, EHLO, AUTH, QUIT. It sends no message."""

from __future__ import annotations

from mailcanary.config import Config
from mailcanary.diagnosis import Where
from mailcanary.probes.login import LOGIN_PHASES, login_kind
from mailcanary.protocols.signin import smtp_login
from mailcanary.protocols.smtp import SmtpClient
from mailcanary.protocols.transport import tls_context
from mailcanary.result import ProbeContext


async def probe(ctx: ProbeContext, config: Config, target: str) -> None:
    account = config.account(target)
    assert account.smtp is not None
    endpoint = account.smtp
    ctx.where = Where(endpoint.host, endpoint.effective_port, "smtp", account.provider)
    ctx.extra["server"] = ctx.where.server
    tls = tls_context(account.ca_file) if endpoint.security != "none" else None
    client = SmtpClient(ctx, endpoint, tls)
    try:
        await client.connect()
        await smtp_login(client, account)
        await client.quit()
    finally:
        client.close()


KIND = login_kind("smtp", probe, LOGIN_PHASES)
