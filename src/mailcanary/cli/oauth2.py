"""`mailcanary oauth2 authorize`: a person signs in once, mailcanary keeps the refresh token.

A command-line flow (its arguments: cli/parser.py), not protocol code: it prints, prompts
and opens a browser; the token requests themselves are protocols/oauth2/tokens.py's.

Two flows, both without a web server of our own on the internet:
- device code (RFC 8628, Microsoft's default): print a URL and a short code, poll the
  token endpoint until the person has signed in on any device;
- installed app with a loopback redirect (RFC 8252, Google's): a one-shot HTTP listener on
  127.0.0.1 and a random port receives the code; PKCE (S256) binds it to this process.
The refresh token is written to the account's refresh_token_file (0600, atomic) and never
printed.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import secrets
import sys
import webbrowser
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import parse_qs, urlencode, urlsplit

from mailcanary.config import AccountConfig, ConfigError, OAuth2Config, load_config
from mailcanary.credentials import CredentialError, Secret, resolve_secret_path
from mailcanary.diagnosis import OAuthTokenError, TokenEndpointTimeout, oauth_failure
from mailcanary.protocols.oauth2.secretfile import write_secret_file
from mailcanary.protocols.oauth2.tokens import client_secret, post_token_request

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
HTTP_TIMEOUT = 30.0
_DONE_PAGE = (b"<!doctype html><title>mailcanary</title><p>mailcanary is signed in. "
              b"You can close this window.</p>")


class AuthorizeError(Exception):
    """The sign-in cannot go on; the message says why and what to do."""


def cmd_oauth2(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(exc.report(), file=sys.stderr)
        return 2
    try:
        account = config.account(args.account)
    except KeyError:
        print(f"mailcanary: no account named {args.account!r}", file=sys.stderr)
        return 2
    path: Path | None = None
    try:
        cfg, path = _target(account)
        flow = args.flow or _default_flow(cfg)
        runner = _device_flow if flow == "device" else _browser_flow
        refresh = asyncio.run(asyncio.wait_for(
            runner(account, cfg, sys.stdout, open_browser=not args.no_browser), args.wait
        ))
        write_secret_file(path, refresh.reveal(), mode=0o600)
    except (AuthorizeError, CredentialError) as exc:
        print(f"mailcanary: {exc}", file=sys.stderr)
        return 1
    except OAuthTokenError as exc:
        fail = oauth_failure(exc)
        print(f"mailcanary: {fail.detail}\n{fail.hint}", file=sys.stderr)
        return 1
    except (TimeoutError, TokenEndpointTimeout):
        print(f"mailcanary: no sign-in within {args.wait:g} s", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"mailcanary: cannot write {path}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(f"Stored the refresh token in {path} (mode 0600). Check the account with:\n"
          f"  mailcanary check --config {args.config} --account {account.name}")
    return 0


def _target(account: AccountConfig) -> tuple[OAuth2Config, Path]:
    cfg = account.oauth2
    if cfg is None:
        raise AuthorizeError(f"account {account.name!r} has no oauth2 settings")
    if cfg.grant != "refresh_token":
        raise AuthorizeError(
            f"account {account.name!r} uses the {cfg.grant} grant, which needs no sign-in"
        )
    if cfg.refresh_token_file is None:
        raise AuthorizeError(
            f"account {account.name!r} reads its refresh token from the environment "
            f"({cfg.refresh_token_env}); set oauth2.refresh_token_file so that authorize "
            "can store it"
        )
    return cfg, resolve_secret_path(cfg.refresh_token_file)


def _default_flow(cfg: OAuth2Config) -> str:
    if cfg.effective_device_authorization_url is not None:
        return "device"
    if cfg.effective_authorization_url is not None:
        return "browser"
    raise AuthorizeError(
        "set oauth2.authorization_url (browser sign-in) or oauth2.device_authorization_url "
        "(device code) for this provider"
    )


def _base_form(cfg: OAuth2Config) -> dict[str, str]:
    form = {"client_id": cfg.client_id or ""}
    secret = client_secret(cfg)
    if secret is not None:
        form["client_secret"] = secret.reveal()
    return form


def _refresh_from(account: AccountConfig, data: dict[str, Any]) -> Secret:
    token = data.get("refresh_token")
    if not isinstance(token, str) or not token:
        raise AuthorizeError(
            f"the token endpoint gave no refresh token for {account.name!r}; for Microsoft "
            "include offline_access in the scope, for Google the consent must be new "
            "(remove mailcanary's access at myaccount.google.com/permissions and retry)"
        )
    return Secret(token)


# --------------------------------------------------------------------------- device code


async def _device_flow(
    account: AccountConfig, cfg: OAuth2Config, out: TextIO, *, open_browser: bool
) -> Secret:
    url = cfg.effective_device_authorization_url
    if url is None:
        raise AuthorizeError("set oauth2.device_authorization_url for the device code flow")
    form = _base_form(cfg)
    start = {"client_id": form["client_id"]}
    if cfg.effective_scope:
        start["scope"] = cfg.effective_scope
    grant = await post_token_request(account.name, url, start, account.ca_file, HTTP_TIMEOUT)
    try:
        device_code = str(grant["device_code"])
        user_code = str(grant["user_code"])
        verify = str(grant.get("verification_uri") or grant["verification_url"])
    except KeyError as exc:
        raise AuthorizeError(f"the device authorization endpoint {url} sent no {exc}") from None
    interval = float(grant.get("interval") or 5)
    print(f"To sign in {account.address}, open {verify} in a browser on any device\n"
          f"and enter the code: {user_code}", file=out, flush=True)
    poll = {**form, "grant_type": DEVICE_GRANT, "device_code": device_code}
    while True:
        await asyncio.sleep(interval)
        try:
            data = await post_token_request(
                account.name, cfg.effective_token_url, poll, account.ca_file, HTTP_TIMEOUT
            )
        except OAuthTokenError as exc:
            if exc.error == "authorization_pending":
                continue
            if exc.error == "slow_down":
                interval += 5
                continue
            raise
        return _refresh_from(account, data)


# --------------------------------------------------------------------------- browser


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(64)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _redirect_handler(
    state: str, received: asyncio.Future[dict[str, str]]
) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
    """The loopback redirect's one request: take the query if its state is ours."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
            target = request.split(b" ", 2)[1].decode("ascii", "replace")
            query = {k: v[0] for k, v in parse_qs(urlsplit(target).query).items()}
            ours = query.get("state") == state
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n"
                         b"Content-Length: " + str(len(_DONE_PAGE)).encode() + b"\r\n\r\n"
                         + (_DONE_PAGE if ours else b""))
            await writer.drain()
            if ours and not received.done():
                received.set_result(query)
        except (OSError, ValueError, IndexError, asyncio.IncompleteReadError, TimeoutError):
            pass
        finally:
            writer.close()

    return handle


async def _browser_flow(
    account: AccountConfig, cfg: OAuth2Config, out: TextIO, *, open_browser: bool
) -> Secret:
    auth_url = cfg.effective_authorization_url
    if auth_url is None:
        raise AuthorizeError("set oauth2.authorization_url for the browser flow")
    verifier, challenge = _pkce()
    state = secrets.token_urlsafe(16)
    received: asyncio.Future[dict[str, str]] = asyncio.get_running_loop().create_future()
    handle = _redirect_handler(state, received)
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    redirect_uri = f"http://127.0.0.1:{port}/"
    params = {
        "response_type": "code", "client_id": cfg.client_id or "",
        "redirect_uri": redirect_uri, "state": state, "code_challenge": challenge,
        "code_challenge_method": "S256", "access_type": "offline", "prompt": "consent",
        "login_hint": account.address,
    }
    if cfg.effective_scope:
        params["scope"] = cfg.effective_scope
    consent = auth_url + ("&" if "?" in auth_url else "?") + urlencode(params)
    print(f"To sign in {account.address}, open this URL in a browser on this machine:\n"
          f"{consent}\nWaiting for the browser to come back to {redirect_uri} ...",
          file=out, flush=True)
    if open_browser:
        webbrowser.open(consent)
    try:
        async with server:
            query = await received
    finally:
        server.close()
    if "error" in query:
        raise OAuthTokenError(account.name, query["error"],
                              f"{query['error']}: {query.get('error_description', '')}",
                              query.get("error_description", ""))
    if "code" not in query:
        raise AuthorizeError("the browser came back without an authorization code")
    exchange = {**_base_form(cfg), "grant_type": "authorization_code", "code": query["code"],
                "redirect_uri": redirect_uri, "code_verifier": verifier}
    data = await post_token_request(account.name, cfg.effective_token_url, exchange,
                                    account.ca_file, HTTP_TIMEOUT)
    return _refresh_from(account, data)
