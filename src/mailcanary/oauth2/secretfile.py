"""Writing a secret file atomically, so a crash never leaves half a refresh token."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path


def write_secret_file(path: Path, value: str, *, default_mode: int = 0o600) -> None:
    """Replace `path` with `value` + newline: temp file in the same directory, fsync,
    os.replace. Keeps the old file's mode (and owner when we may), else `default_mode`."""
    try:
        old = path.stat()
        mode, owner = stat.S_IMODE(old.st_mode), (old.st_uid, old.st_gid)
    except FileNotFoundError:
        mode, owner = default_mode, None
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        if owner is not None and os.geteuid() == 0:
            os.fchown(fd, *owner)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(value + "\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def writable(path: Path) -> bool:
    """True when `path` can be replaced: the directory takes new files (os.replace)."""
    return os.access(path.parent, os.W_OK | os.X_OK) and (
        not path.exists() or os.access(path, os.W_OK)
    )
