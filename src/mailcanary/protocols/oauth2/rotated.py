"""Where a rotated refresh token goes when its configured file cannot take it.

Under systemd the token comes from ``$CREDENTIALS_DIRECTORY`` (read-only by design). A
rotated token is then kept in ``<state_dir>/oauth2/<account>.json`` (0600, atomic) and read
from there first next time, as long as the configured token is still the one it replaced:
when an admin puts a new token into the configured place (`mailcanary oauth2 authorize`),
that one wins and the kept copy is dropped.
"""

from __future__ import annotations

import contextlib
import json
import secrets
from pathlib import Path

from mailcanary.credentials import CredentialError, Secret, checked_secret, fingerprint
from mailcanary.protocols.oauth2.secretfile import write_secret_file
from mailcanary.state import private_dir, read_state


def _path(state_dir: Path | None, account: str) -> Path | None:
    """`state_dir`: the runtime's (protocols/runtime.py); None keeps nothing on disk."""
    return state_dir / "oauth2" / f"{account}.json" if state_dir is not None else None


def keep(state_dir: Path | None, account: str, new: Secret,
         configured: Secret | None) -> Path | None:
    """Store `new` in state_dir; the path, or None when there is no usable state_dir."""
    path = _path(state_dir, account)
    if path is None:
        return None
    private_dir(path.parent)
    salt = secrets.token_bytes(16)
    doc = {"refresh_token": new.reveal(), "salt": salt.hex(),
           "replaces": fingerprint(configured.reveal(), salt) if configured else None}
    write_secret_file(path, json.dumps(doc), mode=0o600)
    return path


def kept(state_dir: Path | None, account: str, configured: Secret | None) -> Secret | None:
    """The kept rotated token, unless the configured one changed since it was kept."""
    path = _path(state_dir, account)
    if path is None:
        return None
    try:
        doc = json.loads(read_state(path) or b"null")
        token, replaces = doc["refresh_token"], doc.get("replaces")
        salt = bytes.fromhex(doc["salt"])
        token = checked_secret(str(token), f"the rotated refresh token in {path}")
    except (OSError, ValueError, KeyError, TypeError, CredentialError):
        return None
    if configured is not None and replaces != fingerprint(configured.reveal(), salt):
        with contextlib.suppress(OSError):
            path.unlink()  # re-authorized: the configured token is newer
        return None
    return Secret(token) if token else None
