"""Processes of the test bed: find, stop and reap Dovecot's and Postfix's process trees.

The daemons fork and detach; without systemd the bed must find every child itself, so a
stopped bed never leaves a server behind that holds a port or a socket.
"""

from __future__ import annotations

import contextlib
import os
import signal
import stat
import time
from pathlib import Path

STOP_TIMEOUT = 5.0  # seconds for SIGTERM before SIGKILL


def children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat_line = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ..." -- comm may contain spaces and parentheses.
        ppid = int(stat_line.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    return children


def process_tree(pid: int) -> set[int]:
    """``pid`` and all of its descendants that are alive now."""
    children = children_map()
    tree: set[int] = set()
    todo = [pid]
    while todo:
        p = todo.pop()
        if p in tree or not alive(p):
            continue
        tree.add(p)
        todo.extend(children.get(p, ()))
    return tree


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def reap(pid: int) -> None:
    # Our own children (the daemonizing front ends) would stay zombies otherwise.
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def terminate_tree(pids: set[int], *, timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM the given processes, wait until gone, SIGKILL whatever is left."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        deadline = time.monotonic() + timeout
        while True:
            for pid in pids:
                reap(pid)
            left = {pid for pid in pids if alive(pid)}
            if not left:
                return
            if time.monotonic() > deadline:
                pids = left
                break
            time.sleep(0.01)


def processes_under(root: Path) -> set[int]:
    """Live processes whose command line, cwd or root points into ``root``."""
    found = set()
    marker = str(root).rstrip("/") + "/"  # "bed/" must not match "bed2/"
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            cwd = os.readlink(f"/proc/{entry}/cwd")
            proot = os.readlink(f"/proc/{entry}/root")
        except OSError:
            continue
        if (
            marker.encode() in cmdline
            or (cwd + "/").startswith(marker)
            or (proot + "/").startswith(marker)
        ):
            found.add(int(entry))
    return {pid for pid in found if alive(pid)}


def read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def make_traversable(path: Path) -> None:
    """Give "others" search (x) permission on ``path`` and its ancestors.

    Dovecot's mail processes (uid 5000), its login processes and Postfix's daemons (user
    postfix) must reach files under the root. pytest's and mkdtemp's directories are 0700.
    Only the x bit is added: nobody can list those directories.
    """
    for p in (path, *path.parents):
        mode = p.stat().st_mode
        if not mode & stat.S_IXOTH:
            p.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)
