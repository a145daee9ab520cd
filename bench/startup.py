"""How long `mailcanary --version` and `mailcanary check` take from exec to exit.

Run by hand:  python bench/startup.py [N] [--src DIR]

Each command is a fresh interpreter (`python -m mailcanary ...`), started N times in turn
with the baseline, a bare `python -c pass`, so the ratio shows mailcanary's own start-up
on top of the interpreter's on the same machine in the same run. `check` probes one IMAP
account on 127.0.0.1:1 (connection refused at once): the figure is start-up, config
loading and the output, not a server's answer. `--src DIR` measures another checkout's
src/ (e.g. main's, for a before/after figure). Byte-code is cached (in a temporary
PYTHONPYCACHEPREFIX) as after a pip install, even where PYTHONDONTWRITEBYTECODE is set.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONFIG = """\
[daemon]
state_dir = "{state}"

[[accounts]]
name = "nobody"
address = "nobody@example.test"
password = "not-a-secret"
imap = {{ host = "127.0.0.1", port = 1, security = "none", allow_insecure_auth = true }}
"""


def timed(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   check=False)
    return time.perf_counter() - start


def main(n: int, src: Path | None) -> None:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if src is not None:
        env["PYTHONPATH"] = str(src)
    with tempfile.TemporaryDirectory() as tmp:
        env["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "pycache")
        config = Path(tmp) / "check.toml"
        config.write_text(CONFIG.format(state=Path(tmp) / "state"))
        commands = {
            "python -c pass (baseline)": [sys.executable, "-c", "pass"],
            "mailcanary --version": [sys.executable, "-m", "mailcanary", "--version"],
            "mailcanary check": [sys.executable, "-m", "mailcanary", "check", "--config",
                                 str(config)],
        }
        times: dict[str, list[float]] = {name: [] for name in commands}
        for argv in commands.values():  # warm-up: the page cache, .pyc files
            timed(argv, env)
        for _ in range(n):
            for name, argv in commands.items():
                times[name].append(timed(argv, env))
    base = statistics.median(times["python -c pass (baseline)"])
    print(f"startup: {n} runs each, {os.cpu_count()} cores, src={src or 'installed'}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"  {name:28s} median {median * 1000:7.1f} ms  min {min(values) * 1000:7.1f} ms"
              f"  ({median / base:4.1f}x the bare interpreter)")


if __name__ == "__main__":
    args = sys.argv[1:]
    source = None
    if "--src" in args:
        i = args.index("--src")
        source = Path(args[i + 1])
        del args[i:i + 2]
    main(int(args[0]) if args else 20, source)
