"""doveadm for tests: search, expunge and create folders in the bed's mailboxes."""

from __future__ import annotations

import subprocess
from pathlib import Path

from mailcanary.testbed.errors import TestBedError
from mailcanary.testbed.users import TestBedUser


class DoveadmMixin:
    """`doveadm` against the bed's main Dovecot (mixed into MailTestBed)."""

    dovecot_conf: Path

    def _program(self, name: str) -> str:
        raise NotImplementedError

    def user(self, name: str) -> TestBedUser:
        raise NotImplementedError

    def doveadm(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run ``doveadm -c <our config> ARGS``; raises TestBedError on failure."""
        proc = subprocess.run(  # noqa: S603
            [self._program("doveadm"), "-c", str(self.dovecot_conf), *args],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
        if proc.returncode != 0:
            raise TestBedError(
                f"doveadm {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}"
            )
        return proc

    def create_folder(self, user: str, name: str) -> None:
        """Create a plain folder (no special-use flag) ``name`` (UTF-8) in ``user``'s mailbox."""
        self.doveadm("mailbox", "create", "-u", self.user(user).name, name)
