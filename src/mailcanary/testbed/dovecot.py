"""One Dovecot instance of the bed: started from its config file, stopped with its children."""

from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path

from mailcanary.testbed.errors import TestBedError
from mailcanary.testbed.processes import process_tree, read_pid, terminate_tree


class DovecotInstance:
    """One Dovecot instance (the main one, or one serving a faulty certificate)."""

    def __init__(self, conf: Path, base_dir: Path, log_path: Path, stderr_path: Path) -> None:
        self.conf = conf
        self.base_dir = base_dir
        self.log_path = log_path
        self.stderr_path = stderr_path
        self.master_pid: int | None = None

    def start(self, dovecot: str) -> None:
        # A stale anvil-auth-penalty socket from an earlier run stalls every auth by 5 s.
        with contextlib.suppress(FileNotFoundError):
            (self.base_dir / "anvil-auth-penalty").unlink()
        # The daemonized master keeps stderr open: never a pipe, always a file.
        with self.stderr_path.open("ab") as err:
            proc = subprocess.run(  # noqa: S603
                [dovecot, "-c", str(self.conf)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                check=False,
                timeout=30,
            )
        if proc.returncode != 0:
            raise TestBedError(f"dovecot -c {self.conf} exited with {proc.returncode}")
        self.master_pid = read_pid(self.base_dir / "master.pid")

    def pids(self) -> set[int]:
        pid = self.master_pid or read_pid(self.base_dir / "master.pid")
        return process_tree(pid) if pid else set()

    def stop(self) -> None:
        terminate_tree(self.pids())
        self.master_pid = None
