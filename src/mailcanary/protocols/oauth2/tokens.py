"""Access tokens: fetched from the token endpoint, cached, shared by an account's probes.

One `TokenSource` per account (and OAuth2 settings) lives as long as its runtime (the
daemon's or a `check` run's, protocols/runtime.py), so the imap, smtp and round-trip
probes of an account share one token, and one asyncio lock keeps
a single fetch in flight. A token is reused until shortly before it expires; a token the
mail server refuses is dropped (`invalidate`) and fetched anew once, by the caller.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import structlog

from mailcanary.config import AccountConfig, OAuth2Config
from mailcanary.credentials import (
    CredentialError,
    Secret,
    read_secret_env,
    read_secret_file,
    resolve_secret_path,
)
from mailcanary.diagnosis import OAuthTokenError, TokenEndpointTimeout
from mailcanary.protocols.httpbody import capped_request
from mailcanary.protocols.oauth2 import rotated as kept_tokens
from mailcanary.protocols.oauth2.secretfile import writable, write_secret_file
from mailcanary.protocols.tls import tls_context
from mailcanary.result import ProbeContext

log = structlog.get_logger("mailcanary.protocols.oauth2")

DEFAULT_LIFETIME = 3600.0  # when the endpoint leaves out expires_in (RFC 6749 5.1)
MAX_EARLY_REFRESH = 60.0  # renew this long before expiry at most ...
EARLY_FRACTION = 0.1  # ... and at most this part of a short lifetime
DEFAULT_HTTP_TIMEOUT = 30.0


@dataclass
class _Token:
    value: Secret
    renew_at: float  # time.monotonic()


def client_secret(cfg: OAuth2Config) -> Secret | None:
    if cfg.client_secret_file is not None:
        return read_secret_file(cfg.client_secret_file, "oauth2.client_secret_file")
    if cfg.client_secret_env is not None:
        return read_secret_env(cfg.client_secret_env, "oauth2.client_secret_env")
    return None


def token_request_form(
    cfg: OAuth2Config, secret: Secret | None, refresh: Secret | None
) -> dict[str, str]:
    form = {"grant_type": cfg.grant, "client_id": cfg.client_id or ""}
    if secret is not None:
        form["client_secret"] = secret.reveal()
    if refresh is not None:
        form["refresh_token"] = refresh.reveal()
    scope = cfg.effective_scope
    if scope:
        form["scope"] = scope
    return form


def http_client(ca_file: Any, timeout: float) -> httpx.AsyncClient:
    """The system trust store plus the account's ca_file, as for the mail servers."""
    return httpx.AsyncClient(verify=tls_context(ca_file), timeout=httpx.Timeout(timeout))


async def post_token_request(
    account: str, url: str, form: dict[str, str], ca_file: Any, http_timeout: float
) -> dict[str, Any]:
    """POST to the token endpoint; the JSON reply, or OAuthTokenError / TokenEndpointTimeout.
    Shared with `authorize`, which polls the same endpoint."""
    try:
        async with http_client(ca_file, http_timeout) as client:
            response = await capped_request(client, "POST", url, data=form, total=http_timeout,
                                            headers={"Accept": "application/json"})
    except httpx.TimeoutException:
        raise TokenEndpointTimeout(f"the token endpoint {url} did not answer in time") from None
    except httpx.HTTPError as exc:
        raise OAuthTokenError(
            account, "network", f"cannot reach the token endpoint {url}: "
            f"{exc or type(exc).__name__}"
        ) from None
    try:
        data = response.json()
    except ValueError:  # not JSON, not text, nested too deeply
        data = None
    if not isinstance(data, dict):
        kind = response.headers.get("content-type", "no content type")
        raise OAuthTokenError(
            account, "bad_reply", f"the token endpoint {url} answered HTTP "
            f"{response.status_code} ({kind}) with no JSON object: {response.text[:200]!r}"
        )
    if "error" in data:
        error = str(data["error"])
        description = str(data.get("error_description") or "")
        raise OAuthTokenError(
            account, error,
            f"{error}: {description or '(no description)'} (HTTP {response.status_code} "
            f"from {url})",
            description,
        )
    return data


@dataclass
class TokenSource:
    account: str
    cfg: OAuth2Config
    ca_file: Any = None
    token: _Token | None = None
    rotated: Secret | None = None  # a rotated refresh token we could not write back
    _lock: asyncio.Lock | None = field(default=None, repr=False)
    _loop: asyncio.AbstractEventLoop | None = field(default=None, repr=False)

    @property
    def lock(self) -> asyncio.Lock:
        # A lock belongs to one event loop; tests (and a restarted daemon) bring new ones.
        loop = asyncio.get_running_loop()
        if self._lock is None or self._loop is not loop:
            self._lock, self._loop = asyncio.Lock(), loop
        return self._lock

    def cached(self) -> Secret | None:
        if self.token is not None and time.monotonic() < self.token.renew_at:
            return self.token.value
        return None

    def invalidate(self, value: Secret) -> None:
        """Forget `value` (refused by a server), unless another probe already replaced it."""
        if self.token is not None and self.token.value == value:
            self.token = None

    def _configured_refresh_token(self) -> Secret:
        cfg = self.cfg
        if cfg.refresh_token_file is not None:
            return read_secret_file(cfg.refresh_token_file, "oauth2.refresh_token_file")
        assert cfg.refresh_token_env is not None
        return read_secret_env(cfg.refresh_token_env, "oauth2.refresh_token_env")

    def _refresh_token(self, state_dir: Path | None) -> Secret | None:
        """A rotated token first (memory, then state_dir), else the configured one."""
        if self.cfg.grant != "refresh_token":
            return None
        if self.rotated is not None:
            return self.rotated
        configured = self._configured_refresh_token()
        return kept_tokens.kept(state_dir, self.account, configured) or configured

    async def fetch(
        self, ctx: ProbeContext, http_timeout: float, state_dir: Path | None = None
    ) -> Secret:
        """Ask the token endpoint for a new access token (the caller holds the lock)."""
        refresh: Secret | None = None
        if self.cfg.grant == "jwt_bearer":
            url, form = self._assertion_form(ctx)
        else:
            secret = client_secret(self.cfg)
            refresh = self._refresh_token(state_dir)
            for value in (secret, refresh):
                if value is not None:
                    ctx.redact.add(value.reveal())
            url = self.cfg.effective_token_url
            form = token_request_form(self.cfg, secret, refresh)
        ctx.transcript.note("*", f"POST {url} grant_type={self.cfg.grant}")
        data = await post_token_request(self.account, url, form, self.ca_file, http_timeout)
        access = data.get("access_token")
        if not isinstance(access, str) or not access:
            raise OAuthTokenError(
                self.account, "bad_reply",
                f"the token endpoint {url} answered without an access_token "
                f"(keys: {', '.join(sorted(map(str, data))) or 'none'})",
            )
        ctx.redact.add(access)
        lifetime = _lifetime(data.get("expires_in"))
        early = min(MAX_EARLY_REFRESH, lifetime * EARLY_FRACTION)
        self.token = _Token(Secret(access), time.monotonic() + lifetime - early)
        ctx.transcript.note("*", f"access token received, valid for {lifetime:g} s")
        new_refresh = data.get("refresh_token")
        if self.cfg.grant == "jwt_bearer":  # a new assertion each time: nothing to keep
            new_refresh = None
        if isinstance(new_refresh, str) and new_refresh and (
            refresh is None or new_refresh != refresh.reveal()
        ):
            ctx.redact.add(new_refresh)
            self._keep_rotated(Secret(new_refresh), state_dir)
        return self.token.value

    def _assertion_form(self, ctx: ProbeContext) -> tuple[str, dict[str, str]]:
        """RFC 7523: the service account's signed assertion (its key never leaves)."""
        from mailcanary.protocols.oauth2 import serviceaccount  # noqa: PLC0415  (cryptography)

        cfg = self.cfg
        assert cfg.service_account_file is not None and cfg.subject is not None
        url, form, signed = serviceaccount.token_form(
            cfg.service_account_file, cfg.subject, cfg.effective_scope or "")
        ctx.redact.add(signed.reveal())
        return url, form

    def _keep_rotated(self, new: Secret, state_dir: Path | None) -> None:
        """The endpoint rotated the refresh token: the old one may stop working soon."""
        path = self.cfg.refresh_token_file
        if path is not None:
            path = resolve_secret_path(path)  # where it was read ($CREDENTIALS_DIRECTORY)
        if path is not None and writable(path):
            try:
                write_secret_file(path, new.reveal())
            except OSError as exc:
                log.warning("refresh_token_not_saved", account=self.account, file=str(path),
                            error=exc.strerror or type(exc).__name__)
            else:
                self.rotated = None
                log.info("refresh_token_rotated", account=self.account, file=str(path))
                return
        self.rotated = new
        try:
            configured = self._configured_refresh_token()
        except CredentialError:
            configured = None
        try:
            kept_in = kept_tokens.keep(state_dir, self.account, new, configured)
        except OSError as exc:
            kept_in = None
            log.warning("refresh_token_not_saved", account=self.account,
                        error=exc.strerror or type(exc).__name__)
        if kept_in is not None:
            log.info("refresh_token_rotated", account=self.account, file=str(kept_in),
                     note=f"{path or 'the configured token'} is read-only: the new token is "
                     "kept in state_dir and read from there first")
            return
        log.warning(
            "refresh_token_not_saved", account=self.account,
            file=str(path) if path else None,
            advice="the token endpoint rotated the refresh token; it is kept in memory only, "
            "so after a restart run `mailcanary oauth2 authorize` if the old one stops working",
        )


def _lifetime(value: object) -> float:
    try:
        seconds = float(value)  # type: ignore[arg-type]  # str or number from JSON
    except (TypeError, ValueError):
        return DEFAULT_LIFETIME
    return seconds if seconds > 0 else DEFAULT_LIFETIME


async def access_token(
    ctx: ProbeContext, account: AccountConfig, source: TokenSource, state_dir: Path | None
) -> tuple[Secret, bool]:
    """(token, fetched_now) from the account's `source` (its runtime's). Only the probe
    that fetches gets a `token` phase."""
    cached = source.cached()
    if cached is not None:
        ctx.redact.add(cached.reveal())
        return cached, False
    # Waiting for another probe's fetch: a timeout here is still the token's fault.
    ctx.current_phase = "token"
    async with source.lock:
        cached = source.cached()
        if cached is not None:
            ctx.current_phase = None
            ctx.redact.add(cached.reveal())
            return cached, False
        with ctx.phase("token"):
            token = await source.fetch(ctx, account.timeout or DEFAULT_HTTP_TIMEOUT, state_dir)
    return token, True
