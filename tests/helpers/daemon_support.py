"""Running `mailcanary run` as a subprocess and looking at it from outside, as an admin would:
its /metrics, /healthz and log lines."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from mailcanary.testbed import MailTestBed

SRC = str(Path(__file__).resolve().parents[2] / "src")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def bed_account(
    bed: MailTestBed, name: str, user: str, secrets: Path, *, password: str | None = None,
    interval: str | None = None, timeout: str = "5s", imap: bool = True, smtp: bool = True,
) -> str:
    """An account on the test bed (implicit-TLS IMAP, STARTTLS submission)."""
    pw = secrets / name
    pw.write_text((password if password is not None else bed.user(user).password) + "\n")
    pw.chmod(0o600)
    lines = [
        "[[accounts]]",
        f'name = "{name}"',
        f'address = "{user}@example.test"',
        f'username = "{user}"',
        f'password_file = "{pw}"',
        f'ca_file = "{bed.ca_pem}"',
        f'timeout = "{timeout}"',
    ]
    if interval:
        lines.append(f'interval = "{interval}"')
    if imap:
        lines.append(f'imap = {{ host = "127.0.0.1", port = {bed.imaps_port}, security = "tls" }}')
    if smtp:
        lines.append(
            f'smtp = {{ host = "127.0.0.1", port = {bed.submission_port}, '
            'security = "starttls" }'
        )
    return "\n".join(lines) + "\n"


def daemon_config(tmp: Path, port: int, *parts: str, interval: str = "1h") -> Path:
    state = tmp / "state"
    state.mkdir(exist_ok=True)
    body = (
        f'[daemon]\nlisten = "127.0.0.1:{port}"\nstate_dir = "{state}"\n\n'
        f'[defaults]\ninterval = "{interval}"\ntimeout = "5s"\n\n' + "\n".join(parts)
    )
    path = tmp / "mailcanary.toml"
    path.write_text(body)
    return path


def parse_metrics(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """name -> [(labels, value)] from the text exposition (enough for our own output)."""
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        name, _, rest = head.partition("{")
        labels: dict[str, str] = {}
        if rest:
            for item in rest.rstrip("}").split('",'):
                if item:
                    key, _, val = item.partition('="')
                    labels[key] = val.rstrip('"')
        out.setdefault(name, []).append((labels, float(value)))
    return out


def value(metrics: dict[str, list[tuple[dict[str, str], float]]], name: str,
          **labels: str) -> float | None:
    for have, val in metrics.get(name, []):
        if all(have.get(k) == v for k, v in labels.items()):
            return val
    return None


@dataclass
class RunningDaemon:
    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path
    config: Path
    client: httpx.AsyncClient = field(default_factory=lambda: httpx.AsyncClient(timeout=5))

    async def metrics_text(self) -> str:
        response = await self.client.get(f"http://127.0.0.1:{self.port}/metrics")
        response.raise_for_status()
        return response.text

    async def metrics(self) -> dict[str, list[tuple[dict[str, str], float]]]:
        return parse_metrics(await self.metrics_text())

    async def health(self) -> tuple[int, dict[str, Any]]:
        response = await self.client.get(f"http://127.0.0.1:{self.port}/healthz")
        doc: dict[str, Any] = response.json()
        return response.status_code, doc

    def logs(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log_path.read_text().splitlines():
            with contextlib.suppress(json.JSONDecodeError):
                out.append(json.loads(line))
        return out

    def probe_lines(self, probe: str, target: str) -> list[dict[str, Any]]:
        return [e for e in self.logs() if e.get("event") == "probe"
                and e.get("probe") == probe and e.get("target") == target]

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    async def stop(self, within: float = 15) -> tuple[int, float]:
        """SIGTERM; (exit code, seconds until it exited)."""
        start = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        code = await wait_exit(self.proc, within)
        return code, time.monotonic() - start

    async def wait_for(self, check: Any, within: float = 20, what: str = "") -> Any:
        deadline = time.monotonic() + within
        while True:
            result = await check()
            if result:
                return result
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what or check}\n{self.tail()}")
            await asyncio.sleep(0.1)

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_path.read_text().splitlines()[-lines:])


async def wait_exit(proc: subprocess.Popen[bytes], within: float) -> int:
    deadline = time.monotonic() + within
    while proc.poll() is None:
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            raise AssertionError(f"daemon did not exit within {within} s")
        await asyncio.sleep(0.02)
    return proc.returncode


def spawn_daemon(
    config: Path, log_path: Path, env: dict[str, str], args: list[str] | None = None
) -> subprocess.Popen[bytes]:
    """Start `mailcanary run` (plus `args`), its log (stderr) to `log_path`."""
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = SRC + os.pathsep + full_env.get("PYTHONPATH", "")
    full_env.pop("NOTIFY_SOCKET", None)
    full_env.pop("MAILCANARY_SHARD", None)
    full_env.update(env)
    with log_path.open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "mailcanary", "run", "--config", str(config), *(args or [])],
            stdout=log, stderr=subprocess.STDOUT, env=full_env, stdin=subprocess.DEVNULL,
        )


async def promtool_check(scrape: str) -> tuple[int, str]:
    """`promtool check metrics` on a scrape: (exit code, everything it printed)."""
    proc = await asyncio.create_subprocess_exec(
        "promtool", "check", "metrics", stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate(scrape.encode())
    assert proc.returncode is not None
    return proc.returncode, out.decode()


@contextlib.asynccontextmanager
async def running_daemon(
    config: Path, port: int, *, env: dict[str, str] | None = None, wait_ready: bool = True,
    args: list[str] | None = None,
) -> AsyncIterator[RunningDaemon]:
    log_path = config.parent / "daemon.log"
    proc = spawn_daemon(config, log_path, env or {}, args)
    daemon = RunningDaemon(proc, port, log_path, config)
    try:
        if wait_ready:
            async def up() -> bool:
                if proc.poll() is not None:
                    raise AssertionError(f"daemon exited {proc.returncode}:\n{daemon.tail()}")
                try:
                    await daemon.metrics_text()
                except httpx.HTTPError:
                    return False
                return True
            await daemon.wait_for(up, 15, "the daemon's /metrics")
        yield daemon
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        await daemon.client.aclose()


def start_service(argv: list[str], log_path: Path) -> subprocess.Popen[bytes]:
    """Start a helper server (Prometheus, Alertmanager), its output to `log_path`."""
    with log_path.open("wb") as log:
        return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)


@contextlib.asynccontextmanager
async def ready_service(
    argv: list[str], log_path: Path, port: int, *, tries: int = 150
) -> AsyncIterator[str]:
    """Run a Prometheus-family server until its /-/ready answers 200; yields its base URL
    and stops it afterwards."""
    proc = start_service(argv, log_path)
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as client:
            for _ in range(tries):
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{url}/-/ready")).status_code == 200:
                        break
                await asyncio.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)
