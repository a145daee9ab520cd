"""systemd's sd_notify protocol in a few lines, so the daemon needs no libsystemd.

When ``NOTIFY_SOCKET`` is unset (not started by systemd with Type=notify) every call is a
no-op. An address starting with ``@`` is in the abstract namespace (a leading NUL byte).
"""

from __future__ import annotations

import os
import socket
import time

import structlog

log = structlog.get_logger("mailcanary.daemon.sdnotify")


class Notifier:
    def __init__(self, environ: dict[str, str] | None = None) -> None:
        env = dict(os.environ if environ is None else environ)
        self.address: str | bytes | None = None
        raw = env.get("NOTIFY_SOCKET", "")
        if raw.startswith("@"):
            self.address = b"\0" + raw[1:].encode()
        elif raw.startswith("/"):
            self.address = raw
        self.watchdog_seconds: float | None = None
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        if usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            self.watchdog_seconds = int(usec) / 1_000_000

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, *lines: str) -> None:
        """Best effort: a missing or full socket is logged, never fatal."""
        if self.address is None:
            return
        payload = "\n".join(lines).encode()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.sendto(payload, self.address)
        except OSError as exc:
            log.warning("sd_notify_failed", error=str(exc))

    def ready(self, status: str = "") -> None:
        self.send("READY=1", *([f"STATUS={status}"] if status else []))

    def reloading(self) -> None:
        # systemd >= 253 (Type=notify-reload) wants the monotonic time of the reload start.
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self.send("RELOADING=1", f"MONOTONIC_USEC={usec}")

    def stopping(self) -> None:
        self.send("STOPPING=1")

    def watchdog(self) -> None:
        self.send("WATCHDOG=1")

    def status(self, text: str) -> None:
        self.send(f"STATUS={text}")
