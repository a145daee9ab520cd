"""Writing a secret file atomically, so a crash never leaves half a refresh token."""

from __future__ import annotations

import os
from pathlib import Path

from mailcanary.state import write_atomic


def write_secret_file(path: Path, value: str, *, mode: int | None = None) -> None:
    """Replace `path` with `value` + newline (mailcanary.state.write_atomic: temp file,
    fsync, rename, never through a symlink). `mode` None keeps the old file's mode (0600 for
    a new file); the owner is kept when we may."""
    write_atomic(path, (value + "\n").encode(), mode=mode)


def writable(path: Path) -> bool:
    """True when `path` can be replaced: the directory takes new files (os.replace)."""
    return os.access(path.parent, os.W_OK | os.X_OK) and (
        not path.exists() or os.access(path, os.W_OK)
    )
