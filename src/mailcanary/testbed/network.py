"""Loopback ports and greetings: when is a test-bed service really ready."""

from __future__ import annotations

import socket
import ssl
import time

from mailcanary.testbed.errors import TestBedError

READY_TIMEOUT = 10.0  # seconds for a service to greet


def free_port(host: str) -> int:
    """A currently free TCP port on ``host`` (bind port 0, read it, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def _read_greeting(
    host: str, port: int, prefix: bytes, tls: ssl.SSLContext | None, timeout: float
) -> bytes:
    with socket.create_connection((host, port), timeout=timeout) as raw:
        sock: socket.socket = raw
        if tls is not None:
            sock = tls.wrap_socket(raw, server_hostname=host)
        try:
            data = b""
            while b"\n" not in data:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
        finally:
            if sock is not raw:
                sock.close()
    if not data.startswith(prefix):
        raise ConnectionError(f"unexpected greeting {data!r}")
    return data


def wait_for_greeting(
    host: str,
    port: int,
    prefix: bytes,
    *,
    tls: ssl.SSLContext | None = None,
    timeout: float = READY_TIMEOUT,
) -> bytes:
    """Poll until a connection to host:port gets a greeting starting with ``prefix``."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    delay = 0.005
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TestBedError(
                f"{host}:{port} did not greet with {prefix!r} within {timeout} s: {last}"
            )
        try:
            return _read_greeting(host, port, prefix, tls, min(remaining, 2.0))
        except (OSError, ssl.SSLError) as exc:
            last = exc
        time.sleep(delay)
        delay = min(delay * 2, 0.1)
