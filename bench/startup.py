"""How long `mailcanary --version` and `mailcanary check` take from exec to exit.

Run by hand:  python bench/startup.py [N] [--src DIR] [--vs DIR]

Each command is a fresh interpreter (`python -m mailcanary ...`), started N times in turn
with the baseline, a bare `python -c pass`, so the ratio shows mailcanary's own start-up
on top of the interpreter's on the same machine in the same run. `check` probes one IMAP
account on 127.0.0.1:1 (connection refused at once): the figure is start-up, config
loading, the settings doctor's refused candidates and the output, not a server's answer.
`--src DIR` measures another checkout's src/; `--vs DIR` also runs that checkout's
commands, interleaved with these, and prints the ratio of each pair (before/after figures
that share the machine's load). Byte-code is cached (in a temporary PYTHONPYCACHEPREFIX)
as after a pip install, even where PYTHONDONTWRITEBYTECODE is set.

Measured (issue 15; 2-core Xeon VM, Debian 12, Python 3.11.7; other jobs running, so the
pairs' ratios are the figure to trust): see docs/benchmarks.md, "Start-up".
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


def environment(src: Path | None, cache: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(cache)
    if src is not None:
        env["PYTHONPATH"] = str(src)
    return env


def main(n: int, src: Path | None, vs: Path | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "check.toml"
        config.write_text(CONFIG.format(state=Path(tmp) / "state"))
        mine = environment(src, Path(tmp) / "pycache")
        commands: dict[str, tuple[list[str], dict[str, str]]] = {
            "python -c pass (baseline)": ([sys.executable, "-c", "pass"], mine),
        }
        trees = [("", mine)]
        if vs is not None:
            trees.append((" (vs)", environment(vs, Path(tmp) / "pycache-vs")))
        for suffix, env in trees:
            commands[f"mailcanary --version{suffix}"] = (
                [sys.executable, "-m", "mailcanary", "--version"], env)
            commands[f"mailcanary check{suffix}"] = (
                [sys.executable, "-m", "mailcanary", "check", "--config", str(config)], env)
        times: dict[str, list[float]] = {name: [] for name in commands}
        for argv, env in commands.values():  # warm-up: the page cache, .pyc files
            timed(argv, env)
        for _ in range(n):
            for name, (argv, env) in commands.items():
                times[name].append(timed(argv, env))
    base = statistics.median(times["python -c pass (baseline)"])
    print(f"startup: {n} runs each, {os.cpu_count()} cores, src={src or 'installed'}"
          + (f", vs={vs}" if vs else ""))
    for name, values in times.items():
        median = statistics.median(values)
        print(f"  {name:33s} median {median * 1000:7.1f} ms  min {min(values) * 1000:7.1f} ms"
              f"  ({median / base:4.1f}x the bare interpreter)")
    if vs is not None:
        for command in ("mailcanary --version", "mailcanary check"):
            pairs = [a / b for a, b in zip(times[command], times[f"{command} (vs)"], strict=True)]
            print(f"  {command}: this/vs median of the {n} pairs {statistics.median(pairs):.3f}")


def option(args: list[str], flag: str) -> Path | None:
    if flag not in args:
        return None
    i = args.index(flag)
    value = Path(args[i + 1])
    del args[i:i + 2]
    return value


if __name__ == "__main__":
    args = sys.argv[1:]
    source, versus = option(args, "--src"), option(args, "--vs")
    main(int(args[0]) if args else 20, source, versus)
