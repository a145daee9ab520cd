"""Reading secrets, and holding them so they cannot leak by accident.

A `Secret` prints as ``***`` in repr, str, f-strings and structlog output; the value is
only reachable through `reveal()`, which makes every use easy to audit with grep.
"""

from __future__ import annotations

import hashlib
import os
import unicodedata
from pathlib import Path

from mailcanary.config import AccountConfig

MASK = "***"


class Secret:
    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return MASK

    def __format__(self, spec: str) -> str:
        return MASK

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("a Secret cannot be pickled")


class CredentialError(Exception):
    """A secret that cannot be read; the message names the file or variable, never a value."""


def _control_free(value: str, where: str) -> str:
    """A control character inside a secret is a mistake (a stray blank line, a pasted
    escape) that a protocol would send on and an error message would echo: refuse it,
    naming where it came from, never the value."""
    for char in value:
        if unicodedata.category(char) == "Cc":
            raise CredentialError(
                f"{where} contains a control character (U+{ord(char):04X}); only one "
                "trailing newline is allowed"
            )
    return value


def checked_secret(text: str, where: str) -> str:
    """`text` without one trailing newline; CredentialError if empty or another control
    character is left. `where` names the file or variable (never the value)."""
    value = _control_free(strip_one_newline(text), where)
    if not value:
        raise CredentialError(f"{where} is empty")
    return value


# The backoff and rotated-token files must notice a changed secret across restarts
# without holding anything a guess loop can test quickly: scrypt with the "interactive"
# parameters of its paper (16 MiB, ~65 ms here) and a random salt per file.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 1 << 14, 8, 1


def fingerprint(value: str, salt: bytes) -> str:
    """A slow salted digest of `value`, for telling whether a secret changed."""
    digest = hashlib.scrypt(value.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P,
                            maxmem=64 << 20, dklen=16)
    return digest.hex()


def strip_one_newline(text: str) -> str:
    """systemd credentials and `echo` often add one trailing newline; drop exactly one."""
    if text.endswith("\r\n"):
        return text[:-2]
    if text.endswith("\n"):
        return text[:-1]
    return text


# The unit's one ``LoadCredential=mailcanary:/etc/mailcanary/secrets`` loads every file of
# that directory as credential ``mailcanary_<file name>`` (systemd.exec(5)).
CREDENTIAL_ID = "mailcanary"


def resolve_secret_path(path: Path) -> Path:
    """A relative name is looked up in systemd's ``$CREDENTIALS_DIRECTORY`` when it is set:
    as is (``LoadCredential=alice:...``, a Kubernetes secret volume), else as loaded from
    the unit's credentials directory (``mailcanary_alice``)."""
    if not path.is_absolute():
        cred_dir = os.environ.get("CREDENTIALS_DIRECTORY")
        if cred_dir:
            plain = Path(cred_dir) / path
            loaded = Path(cred_dir) / f"{CREDENTIAL_ID}_{path}"
            if len(path.parts) == 1 and not plain.exists() and loaded.exists():
                return loaded
            return plain
    return path


def read_secret_file(path: Path, what: str) -> Secret:
    real = resolve_secret_path(path)
    try:
        text = real.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CredentialError(f"cannot read {what} {real}: no such file") from None
    except PermissionError:
        raise CredentialError(
            f"cannot read {what} {real}: permission denied for uid {os.getuid()}"
        ) from None
    except IsADirectoryError:
        raise CredentialError(f"cannot read {what} {real}: it is a directory") from None
    except UnicodeDecodeError:
        raise CredentialError(f"cannot read {what} {real}: not UTF-8 text") from None
    except OSError as exc:
        raise CredentialError(f"cannot read {what} {real}: {exc.strerror}") from None
    return Secret(checked_secret(text, f"{what} {real}"))


def read_secret_env(name: str, what: str) -> Secret:
    value = os.environ.get(name)
    if value is None:
        raise CredentialError(f"{what}: environment variable {name} is not set")
    return Secret(checked_secret(value, f"{what}: environment variable {name}"))


def account_password(account: AccountConfig) -> Secret:
    """The account's password, read fresh each time so a rotated file takes effect."""
    if account.password_file is not None:
        return read_secret_file(account.password_file, "password_file")
    if account.password_env is not None:
        return read_secret_env(account.password_env, "password_env")
    if account.password is not None:  # warned about at start-up and reload (warnings_for)
        return Secret(_control_free(account.password, f"account {account.name!r} password"))
    raise CredentialError(f"account {account.name!r} has no password (it uses oauth2)")
