"""Install Dovecot and Postfix from Debian packages when they are missing."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from mailcanary.testbed.errors import TestBedError

PACKAGES = (
    "dovecot-core", "dovecot-imapd", "dovecot-lmtpd", "dovecot-pop3d", "dovecot-sieve", "postfix",
)
_SBIN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Programs the test bed runs; the Dovecot services are looked up where Debian puts them.
_PROGRAMS = ("dovecot", "doveadm", "sievec", "postfix", "postconf")
_DOVECOT_SERVICES = ("imap", "imap-login", "lmtp", "pop3", "pop3-login")
_DOVECOT_LIBEXEC = Path("/usr/lib/dovecot")
_PRESEED = "postfix postfix/main_mailer_type select No configuration\n"


def find_program(name: str) -> str | None:
    """Full path of ``name``, also searching the sbin directories a non-root PATH lacks."""
    path = os.environ.get("PATH", "") + ":" + _SBIN_PATH
    return shutil.which(name, path=path)


def missing_components() -> list[str]:
    missing = [name for name in _PROGRAMS if find_program(name) is None]
    missing += [
        f"{_DOVECOT_LIBEXEC}/{svc}"
        for svc in _DOVECOT_SERVICES
        if not (_DOVECOT_LIBEXEC / svc).exists()
    ]
    return missing


def _run(argv: list[str], *, stdin: str | None = None) -> None:
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive", PATH=_SBIN_PATH)
    proc = subprocess.run(  # noqa: S603 - fixed argv
        argv, input=stdin, env=env, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr)[-3000:]
        raise TestBedError(f"{' '.join(argv)} failed with exit code {proc.returncode}:\n{tail}")


def ensure_installed() -> None:
    """Make sure Dovecot (imapd, lmtpd, pop3d, sieve) and Postfix are installed.

    Missing and root: ``apt-get update`` once, then install the Debian packages without
    recommends, with debconf preseeded so Postfix writes no system-wide main.cf. Missing and
    not root: raise :class:`TestBedError`.
    """
    missing = missing_components()
    if not missing:
        return
    if os.geteuid() != 0:
        raise TestBedError(
            "the mail test bed needs Dovecot and Postfix, and these are missing: "
            + ", ".join(missing)
            + ". Install them as root with: DEBIAN_FRONTEND=noninteractive apt-get install -y "
            "--no-install-recommends " + " ".join(PACKAGES)
        )
    apt_get = find_program("apt-get")
    debconf = find_program("debconf-set-selections")
    if apt_get is None:
        raise TestBedError(f"missing {', '.join(missing)} and there is no apt-get to install them")
    if debconf is not None:
        _run([debconf], stdin=_PRESEED)
    _run([apt_get, "update"])
    _run([apt_get, "install", "-y", "--no-install-recommends", *PACKAGES])
    still = missing_components()
    if still:
        raise TestBedError(f"installed {' '.join(PACKAGES)} but still missing: {', '.join(still)}")
