"""The HTTP call that makes the app send its mail: templated, authenticated, bounded.

`{address}` and `{token}` are replaced in url, body and header values (no other braces are
touched, so JSON bodies need no escaping). The bearer token is registered with the
redactor before the request is built, and a failure's detail carries the status and the
first few hundred characters of the body, never the token. The answer is read to 1 MiB at
most (after decompression): a larger one fails the trigger (protocols/httpbody.py).
"""

from __future__ import annotations

import functools
import ssl
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import httpx

from mailcanary.config import InboundTrigger
from mailcanary.config.inbound import ADDRESS_PLACEHOLDER, TOKEN_PLACEHOLDER
from mailcanary.credentials import (
    CredentialError,
    Secret,
    read_secret_env,
    read_secret_file,
)
from mailcanary.diagnosis import TriggerFailed
from mailcanary.protocols.httpbody import capped_request
from mailcanary.result import ProbeContext

BODY_EXCERPT = 300


@dataclass(frozen=True)
class TriggerResponse:
    status: int
    responded: float  # time.monotonic() when the response was complete
    responded_wall: float


def _http_tls(ca_file: Path | None) -> ssl.SSLContext:
    """The system trust store (plus ca_file), loaded once per file version: ~20 ms of CPU
    each time otherwise. Not the IMAP clients' cached contexts: httpx sets ALPN
    (http/1.1) on the context it is given."""
    if ca_file is None:
        return _cached_tls(None)
    try:
        st = ca_file.stat()
    except OSError as exc:
        raise CredentialError(f"cannot read trigger.ca_file {ca_file}: {exc.strerror}") from None
    return _cached_tls((str(ca_file), st.st_mtime_ns, st.st_size))


@functools.lru_cache(maxsize=16)
def _cached_tls(key: tuple[str, int, int] | None) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if key is not None:
        try:
            context.load_verify_locations(cafile=key[0])
        except (OSError, ssl.SSLError) as exc:
            raise CredentialError(f"cannot use trigger.ca_file {key[0]}: {exc}") from None
    return context


def fill(template: str, address: str, token: str, *, url: bool = False) -> str:
    value = quote(address, safe="@") if url else address
    return template.replace(ADDRESS_PLACEHOLDER, value).replace(TOKEN_PLACEHOLDER, token)


def bearer_of(trigger: InboundTrigger) -> Secret | None:
    if trigger.bearer_token_file is not None:
        return read_secret_file(trigger.bearer_token_file, "trigger.bearer_token_file")
    if trigger.bearer_token_env is not None:
        return read_secret_env(trigger.bearer_token_env, "trigger.bearer_token_env")
    return None


def _excerpt(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= BODY_EXCERPT else flat[:BODY_EXCERPT] + "..."


async def call_trigger(
    ctx: ProbeContext, trigger: InboundTrigger, *, address: str, token: str, limit: float,
) -> TriggerResponse:
    """One request; raises TriggerFailed on a network error, a timeout or status >= 400."""
    bearer = bearer_of(trigger)
    headers = {name: fill(value, address, token) for name, value in trigger.headers.items()}
    if bearer is not None:
        ctx.redact.add(bearer.reveal())
        headers["Authorization"] = f"Bearer {bearer.reveal()}"
    url = fill(trigger.url, address, token, url=True)
    body = fill(trigger.body, address, token) if trigger.body is not None else None
    ctx.transcript.note("C", f"{trigger.method} {url}")
    try:
        async with httpx.AsyncClient(
            timeout=limit, verify=_http_tls(trigger.ca_file), trust_env=False
        ) as client:
            response = await capped_request(
                client, trigger.method, url, headers=headers, total=limit,
                content=body.encode() if body is not None else None,
            )
            # The body is read: the response is complete. Before the client's close.
            responded, responded_wall = time.monotonic(), time.time()
    except httpx.TimeoutException:
        raise TriggerFailed(
            f"{trigger.method} {url}: no response within {limit:g} s"
        ) from None
    except httpx.HTTPError as exc:
        raise TriggerFailed(
            f"{trigger.method} {url}: {type(exc).__name__}: {exc}"
        ) from None
    text = _excerpt(response.text)
    ctx.transcript.note("S", f"HTTP {response.status_code} {text}")
    if response.status_code >= 400:
        raise TriggerFailed(
            f"{trigger.method} {url}: HTTP {response.status_code} "
            f"{response.reason_phrase}: {text or '(empty body)'}"
        )
    return TriggerResponse(response.status_code, responded, responded_wall)
