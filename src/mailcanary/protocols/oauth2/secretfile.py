"""Writing a secret file atomically, so a crash never leaves half a refresh token."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path


def write_secret_file(path: Path, value: str, *, mode: int | None = None) -> None:
    """Replace `path` with `value` + newline: temp file in the same directory, fsync,
    os.replace. `mode` None keeps the old file's mode (0600 for a new file); the owner is
    kept when we may."""
    try:
        old = path.stat()
        old_mode, owner = stat.S_IMODE(old.st_mode), (old.st_uid, old.st_gid)
    except FileNotFoundError:
        old_mode, owner = 0o600, None
    mode = old_mode if mode is None else mode
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
