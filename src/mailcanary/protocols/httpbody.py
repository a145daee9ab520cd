"""HTTP answers read to at most MAX_BODY bytes after decompression, in bounded memory.

httpx reads and decompresses a whole body (a 299 KiB gzip answer from a trigger cost
621 MiB), and even its streaming decoder inflates each network chunk without a limit
(64 KiB of deflate can become 64 MiB). Here the raw bytes are streamed and inflated with
zlib's ``max_length``, so memory stays near MAX_BODY whatever the server sends. A larger
answer, an encoding we cannot bound (br, zstd) or one that does not decode raise
`BodyTooLarge`/`httpx.DecodingError`, both `httpx.HTTPError`: the caller's existing
network-error path turns them into its own failure (trigger_failed, oauth_token_error,
a failed alert send).
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import json
import re
import zlib
from dataclasses import dataclass
from typing import Any

import httpx

MAX_BODY = 1024 * 1024
ACCEPTED = "gzip, deflate"  # what we can inflate with a limit
_CHARSET = re.compile(r"charset\s*=\s*\"?([\w.:-]{1,40})", re.IGNORECASE)


class BodyTooLarge(httpx.HTTPError):
    """The answer (after decompression) is over the limit."""


@dataclass(frozen=True)
class CappedResponse:
    """What the callers read of an answer: status, headers, the (decoded) body."""

    status_code: int
    reason_phrase: str
    headers: httpx.Headers
    content: bytes

    @property
    def text(self) -> str:
        match = _CHARSET.search(self.headers.get("content-type", ""))
        charset = "utf-8"
        if match:
            with contextlib.suppress(LookupError):
                charset = codecs.lookup(match.group(1)).name
        try:
            return self.content.decode(charset, "replace")
        except LookupError:  # a codec that is not for text
            return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        """The JSON document; ValueError (never RecursionError) for anything else."""
        try:
            return json.loads(self.content)
        except RecursionError:
            raise ValueError("JSON nested too deeply") from None


def _inflater(encoding: str) -> Any:
    """A zlib decompressor for the Content-Encoding, None for identity."""
    name = encoding.strip().lower()
    if name in ("", "identity"):
        return None
    if name in ("gzip", "x-gzip"):
        return zlib.decompressobj(zlib.MAX_WBITS | 16)
    if name == "deflate":
        return zlib.decompressobj(zlib.MAX_WBITS | 32)  # zlib-wrapped (or gzip)
    raise httpx.DecodingError(f"unsupported Content-Encoding {encoding!r}")


def _too_large(limit: int) -> BodyTooLarge:
    return BodyTooLarge(f"the answer is larger than {limit} bytes (after decompression)")


async def _read(response: httpx.Response, limit: int) -> bytes:
    declared = response.headers.get("content-length", "")
    encoding = response.headers.get("content-encoding", "")
    if not encoding and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    inflater = _inflater(encoding)
    body = bytearray()
    async for chunk in response.aiter_raw():
        if inflater is None:
            body += chunk
        else:
            try:
                data = chunk
                while data:  # at most the room left (+1 to notice), then the rest
                    body += inflater.decompress(data, limit + 1 - len(body))
                    if len(body) > limit:
                        break
                    data = inflater.unconsumed_tail
            except zlib.error as exc:
                raise httpx.DecodingError(f"cannot decode the {encoding} answer: {exc}") from None
        if len(body) > limit:
            raise _too_large(limit)
    return bytes(body)


async def capped_request(
    client: httpx.AsyncClient, method: str, url: str, *, limit: int = MAX_BODY,
    total: float | None = None, **kwargs: Any,
) -> CappedResponse:
    """One request through `client`; the whole answer within `total` seconds if given
    (httpx's own timeouts are per read: a server dripping a byte at a time never ends)."""
    headers = httpx.Headers(kwargs.pop("headers", None))
    headers.setdefault("Accept-Encoding", ACCEPTED)
    try:
        async with asyncio.timeout(total):
            async with client.stream(method, url, headers=headers, **kwargs) as response:
                content = await _read(response, limit)
    except TimeoutError:
        if total is None:
            raise
        raise httpx.ReadTimeout(f"no complete answer within {total:g} s") from None
    return CappedResponse(response.status_code, response.reason_phrase, response.headers,
                          content)
