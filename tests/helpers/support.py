"""Helpers shared by the tests: writing configs and running the public CLI."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

SRC = str(Path(__file__).resolve().parents[2] / "src")
PASSWORD = "Canary-Secret-7f3a9d"  # distinctive, so the leak tests can grep for it


def endpoint(host: str, port: int, security: str = "none", **extra: Any) -> str:
    parts = [f'host = "{host}"', f"port = {port}", f'security = "{security}"']
    if security == "none":
        parts.append("allow_insecure_auth = true")
    for key, value in extra.items():
        parts.append(f"{key} = {json.dumps(value)}")
    return "{ " + ", ".join(parts) + " }"


def account(
    name: str,
    *,
    imap: str | None = None,
    smtp: str | None = None,
    pop3: str | None = None,
    password_file: Path | None = None,
    username: str | None = None,
    ca_file: Path | None = None,
    timeout: str = "3s",
    address: str | None = None,
) -> str:
    lines = [
        "[[accounts]]",
        f'name = "{name}"',
        f'address = "{address or name + "@example.test"}"',
        f'timeout = "{timeout}"',
    ]
    if username:
        lines.append(f'username = "{username}"')
    if password_file is not None:
        lines.append(f'password_file = "{password_file}"')
    if ca_file is not None:
        lines.append(f'ca_file = "{ca_file}"')
    if imap:
        lines.append(f"imap = {imap}")
    if smtp:
        lines.append(f"smtp = {smtp}")
    if pop3:
        lines.append(f"pop3 = {pop3}")
    return "\n".join(lines) + "\n"


def write_config(tmp: Path, *accounts: str, extra: str = "") -> Path:
    state = tmp / "state"
    state.mkdir(exist_ok=True)
    body = f'[daemon]\nstate_dir = "{state}"\n\n' + "\n".join(accounts) + extra
    path = tmp / "mailcanary.toml"
    path.write_text(body)
    return path


def password_file(tmp: Path, password: str = PASSWORD, name: str = "pw") -> Path:
    path = tmp / name
    path.write_text(password + "\n")
    path.chmod(0o600)
    return path


async def cli(
    *args: str, limit: float = 60, prefix: tuple[str, ...] = (),
    env_update: dict[str, str | None] | None = None,
) -> tuple[int, str, str]:
    """Run `python -m mailcanary ARGS` without blocking the loop the fake servers live on.

    `prefix` runs it under another command, e.g. ("unshare", "-n") for an empty network;
    `env_update` sets (or, with None, removes) environment variables for it.
    """
    env = dict(os.environ)
    for name, value in (env_update or {}).items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    src = SRC
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    proc = await asyncio.create_subprocess_exec(
        *prefix, sys.executable, "-m", "mailcanary", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )
    out, err = await asyncio.wait_for(proc.communicate(), limit)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def check_json(
    config: Path, *args: str, prefix: tuple[str, ...] = ()
) -> tuple[int, list[dict[str, Any]], str]:
    code, out, err = await cli("check", "--config", str(config), "--json", *args, prefix=prefix)
    results = [json.loads(line) for line in out.splitlines() if line.strip()]
    return code, results, out + err
