"""`mailcanary check --json` in a child that reports its own peak memory (VmHWM).

A hostile server's promise is "the process stays bounded": the child measures itself, so
nothing else running on the machine (the test bed, other workers) enters the figure.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from tests.helpers.support import SRC

_RUN = """
import sys
from mailcanary.cli import main
try:
    code = main(sys.argv[1:])
finally:
    # VmHWM, not ru_maxrss: the latter keeps the forking parent's peak across exec.
    with open("/proc/self/status") as status:
        peak = [ln.split()[1] for ln in status if ln.startswith("VmHWM:")][0]
    print(f"MAXRSS_KB={peak}", file=sys.stderr)
raise SystemExit(code)
"""


async def check_measured(
    config: Path, *args: str, log_level: str = "info", limit: float = 60
) -> tuple[int, list[dict[str, Any]], str, float]:
    """(exit code, JSON rows, stdout + stderr, peak RSS in MB) of one `check --json`."""
    env = dict(os.environ, PYTHONPATH=SRC)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _RUN, "--log-level", log_level, "check", "--config", str(config),
        "--json", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )
    out, err = await asyncio.wait_for(proc.communicate(), limit)
    text = err.decode()
    [peak] = [int(line.split("=")[1]) for line in text.splitlines()
              if line.startswith("MAXRSS_KB=")]
    rows = [json.loads(line) for line in out.decode().splitlines() if line.strip()]
    return proc.returncode or 0, rows, out.decode() + text, peak / 1024
