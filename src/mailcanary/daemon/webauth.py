"""HTTP basic auth against the bcrypt hashes of web.yml's ``basic_auth_users``.

bcrypt is slow by design (~100 ms at cost 10): checked on every scrape it would cost a
core-tenth per Prometheus. So a verdict is cached, keyed by an HMAC of the whole
``Authorization`` value under a random key that lives only in this process's memory: the
cache holds no password and no hash that could be attacked offline. Checks run in a
thread, one at a time, so a flood of wrong passwords costs one core at most and never the
event loop; an unknown user costs a bcrypt check too (no user enumeration by timing).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import secrets
from collections import OrderedDict

import bcrypt

CACHE_SIZE = 1024
# A cost-10 hash of a random password nobody kept: an unknown user is checked against it.
_DUMMY = b"$2b$10$TwKfQbyoMffx5F9hfce4ROBYDTgWKA1Vstam.xRBkvL78oOQwNtmq"


class BasicAuth:
    def __init__(self, users: dict[str, bytes]) -> None:
        self.users = users
        self._key = secrets.token_bytes(32)
        self._verdicts: OrderedDict[bytes, bool] = OrderedDict()
        self._checking = asyncio.Lock()
        self.checks = 0  # bcrypt checks made (a test reads it)

    async def allows(self, authorization: str | None) -> bool:
        if authorization is None:
            return False
        scheme, _, blob = authorization.strip().partition(" ")
        if scheme.lower() != "basic":
            return False
        cache_key = hmac.new(self._key, blob.strip().encode(), hashlib.sha256).digest()
        verdict = self._verdicts.get(cache_key)
        if verdict is None:
            async with self._checking:
                verdict = self._verdicts.get(cache_key)  # another request may have checked it
                if verdict is None:
                    verdict = await asyncio.to_thread(self._check, blob.strip())
                    self._remember(cache_key, verdict)
        else:
            self._verdicts.move_to_end(cache_key)
        return verdict

    def _remember(self, key: bytes, verdict: bool) -> None:
        self._verdicts[key] = verdict
        while len(self._verdicts) > CACHE_SIZE:
            self._verdicts.popitem(last=False)

    def _check(self, blob: str) -> bool:
        self.checks += 1
        try:
            user, sep, password = base64.b64decode(blob, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return False
        hashed = self.users.get(user)
        try:
            ok = bcrypt.checkpw(password.encode(), hashed or _DUMMY)
        except ValueError:  # a hash bcrypt cannot read: no entry
            return False
        return bool(sep) and hashed is not None and ok
