"""Signing in to IMAP, SMTP and POP3 with the account's credential, whatever kind it is.

Probes call these functions and never look at how the account authenticates, so
adding a credential kind touches this module only. OAuth2: the account's shared access
token goes into an XOAUTH2 or OAUTHBEARER message; when the server refuses a token that
came from the cache (revoked early, say), it is dropped and a new one is tried once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from mailcanary.config import AccountConfig, Endpoint
from mailcanary.credentials import CredentialError, account_password
from mailcanary.diagnosis import BearerRejected, ServerReplyError, classify
from mailcanary.protocols import sasl
from mailcanary.protocols.imap import ImapClient
from mailcanary.protocols.pop3 import Pop3Client
from mailcanary.protocols.runtime import runtime_of
from mailcanary.protocols.smtp import SmtpClient
from mailcanary.result import ProbeContext

SendFn = Callable[[str, str, str], Awaitable[None]]  # (mechanism, initial, error answer)


async def imap_login(client: ImapClient, account: AccountConfig) -> None:
    if account.oauth2 is not None:
        await _bearer_login(client.ctx, account, client.host, client.port,
                            client.authenticate_sasl)
        return
    with client.ctx.phase("auth"):
        _clear_text_allowed(client.endpoint, "imap")
        password = account_password(account)
    await client.login(account.login, password)


async def line_login(client: SmtpClient | Pop3Client, account: AccountConfig) -> None:
    """SMTP AUTH or POP3 AUTH/USER: the same choice between a bearer token and a password."""
    if account.oauth2 is not None:
        await _bearer_login(client.ctx, account, client.host, client.port, client.auth_sasl)
        return
    with client.ctx.phase("auth"):
        _clear_text_allowed(client.endpoint, "smtp" if isinstance(client, SmtpClient) else "pop3")
        password = account_password(account)
    await client.auth_password(account.login, password)


def _clear_text_allowed(endpoint: Endpoint, key: str) -> None:
    """The config checks say so too, but a password never goes out in clear text unless
    the endpoint allows it, whatever built the config (a file, the environment, code)."""
    if endpoint.security == "none" and not endpoint.allow_insecure_auth:
        raise CredentialError(
            f"{key}.security = \"none\" would send the password in clear text; use \"tls\" "
            "or \"starttls\", or set allow_insecure_auth = true"
        )


smtp_login = line_login
pop3_login = line_login


async def _bearer_login(
    ctx: ProbeContext, account: AccountConfig, host: str, port: int, send: SendFn
) -> None:
    # The token client (httpx) only when an account uses OAuth2: a password check starts faster.
    from mailcanary.protocols.oauth2.tokens import access_token  # noqa: PLC0415

    assert account.oauth2 is not None
    mechanism = account.oauth2.effective_mechanism
    runtime = runtime_of(ctx)
    source = runtime.token_source(account)
    token, fetched = await access_token(ctx, account, source, runtime.state_dir)
    for attempt in (1, 2):
        initial = sasl.initial_response(mechanism, account.login, token.reveal(), host, port)
        ctx.redact.add(token.reveal(), initial)
        try:
            await send(mechanism, initial, sasl.error_answer(mechanism))
            return
        except ServerReplyError as exc:
            refused = classify(exc, "auth").reason == "invalid_credentials"
            if attempt == 2 or fetched or not refused:
                raise BearerRejected(exc) from None
            ctx.transcript.note("*", "the server refused the cached access token; fetching "
                                     "a new one")
            source.invalidate(token)
            token, fetched = await access_token(ctx, account, source, runtime.state_dir)
