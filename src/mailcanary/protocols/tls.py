"""Trust anchors for every TLS connection: the system store plus an account's ca_file.

Its own module so that what needs only a context (the OAuth2 token client, the probes)
does not import the connection code.
"""

from __future__ import annotations

import functools
import ssl
from collections.abc import Callable
from pathlib import Path

from mailcanary.credentials import CredentialError

TLSSource = ssl.SSLContext | Callable[[], ssl.SSLContext]
"""A context, or how to make one: `connect` calls it once the TCP connection is up, so a
refused or silent port never loads the trust store (the settings doctor's candidates)."""


def context_of(tls: TLSSource) -> ssl.SSLContext:
    return tls if isinstance(tls, ssl.SSLContext) else tls()


def tls_context(ca_file: Path | None) -> ssl.SSLContext:
    """The system trust store, plus the account's extra anchors when it names a ca_file.

    Loading the system store costs ~20 ms of CPU, ten times a whole loopback login, so
    contexts are cached; a changed ca_file (new mtime or size) gets a fresh one.
    """
    key: tuple[str, int, int] | None = None
    if ca_file is not None:
        try:
            st = ca_file.stat()
            key = (str(ca_file), st.st_mtime_ns, st.st_size)
        except OSError:
            key = None  # let _build_context report the problem
    return _cached_context(key) if key is not None or ca_file is None else _build_context(ca_file)


@functools.lru_cache(maxsize=64)
def _cached_context(key: tuple[str, int, int] | None) -> ssl.SSLContext:
    return _build_context(Path(key[0]) if key is not None else None)


def _build_context(ca_file: Path | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if ca_file is not None:
        try:
            ctx.load_verify_locations(cafile=str(ca_file))
        except FileNotFoundError:
            raise CredentialError(f"cannot read ca_file {ca_file}: no such file") from None
        except PermissionError:
            raise CredentialError(f"cannot read ca_file {ca_file}: permission denied") from None
        except (ssl.SSLError, OSError) as exc:
            raise CredentialError(
                f"ca_file {ca_file} holds no usable PEM certificate: {exc}"
            ) from None
    return ctx
