"""Signing in to IMAP and SMTP with the account's credential, whatever kind it is.

Probes call these two functions and never look at how the account authenticates, so
adding a credential kind (OAuth2) touches this module only.
"""

from __future__ import annotations

from .config import AccountConfig
from .credentials import CredentialError, account_password
from .imapclient import ImapClient
from .smtpclient import SmtpClient


def _no_oauth2(account: AccountConfig) -> CredentialError:
    return CredentialError(
        f"account {account.name!r} uses oauth2, which this version of mailcanary cannot "
        "sign in with yet; use an app password (password_file) meanwhile"
    )


async def imap_login(client: ImapClient, account: AccountConfig) -> None:
    if account.oauth2 is not None:
        raise _no_oauth2(account)
    with client.ctx.phase("auth"):
        password = account_password(account)
    await client.login(account.login, password)


async def smtp_login(client: SmtpClient, account: AccountConfig) -> None:
    if account.oauth2 is not None:
        raise _no_oauth2(account)
    with client.ctx.phase("auth"):
        password = account_password(account)
    await client.auth_password(account.login, password)
