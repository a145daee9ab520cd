"""Reading secrets, and holding them so they cannot leak by accident.

A `Secret` prints as ``***`` in repr, str, f-strings and structlog output; the value is
only reachable through `reveal()`, which makes every use easy to audit with grep.
"""

from __future__ import annotations

import os
from pathlib import Path

import structlog

from mailcanary.config import AccountConfig

log = structlog.get_logger(__name__)

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


def strip_one_newline(text: str) -> str:
    """systemd credentials and `echo` often add one trailing newline; drop exactly one."""
    if text.endswith("\r\n"):
        return text[:-2]
    if text.endswith("\n"):
        return text[:-1]
    return text


def resolve_secret_path(path: Path) -> Path:
    """A relative name is looked up in systemd's ``$CREDENTIALS_DIRECTORY`` when it is set."""
    if not path.is_absolute():
        cred_dir = os.environ.get("CREDENTIALS_DIRECTORY")
        if cred_dir:
            return Path(cred_dir) / path
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
    value = strip_one_newline(text)
    if not value:
        raise CredentialError(f"{what} {real} is empty")
    return Secret(value)


def read_secret_env(name: str, what: str) -> Secret:
    value = os.environ.get(name)
    if value is None:
        raise CredentialError(f"{what}: environment variable {name} is not set")
    value = strip_one_newline(value)
    if not value:
        raise CredentialError(f"{what}: environment variable {name} is empty")
    return Secret(value)


_warned_inline: set[str] = set()


def account_password(account: AccountConfig) -> Secret:
    """The account's password, read fresh each time so a rotated file takes effect."""
    if account.password_file is not None:
        return read_secret_file(account.password_file, "password_file")
    if account.password_env is not None:
        return read_secret_env(account.password_env, "password_env")
    if account.password is not None:
        if account.name not in _warned_inline:
            _warned_inline.add(account.name)
            log.warning(
                "inline_password",
                account=account.name,
                advice="use password_file or password_env instead of password",
            )
        return Secret(account.password)
    raise CredentialError(f"account {account.name!r} has no password (it uses oauth2)")
