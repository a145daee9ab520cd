"""Google Workspace service accounts: RFC 7523 JWT bearer assertions, signed here.

With domain-wide delegation an admin lets one service account act for any mailbox of the
domain, so monitoring many Workspace mailboxes needs one key file instead of one refresh
token per user. The assertion (RS256, signed with the key JSON's ``private_key`` through
the `cryptography` package) says: ``iss`` = the service account's ``client_email``,
``sub`` = the mailbox, ``aud`` = the key's ``token_uri``, ``scope``, ``iat``/``exp``; the
token endpoint answers an ordinary access token for XOAUTH2.

The key is read from the file for each new token (a replaced key file takes effect at once)
and lives only as a `Secret` and as the loaded key object; no message names more of it than
the file it came from.
"""

from __future__ import annotations

import base64
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from mailcanary.config.models import is_loopback_host
from mailcanary.credentials import CredentialError, Secret, resolve_secret_path

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
LIFETIME = 3600  # Google's maximum for an assertion
MAX_FILE = 64 * 1024  # a key JSON is ~2.3 KB


@dataclass(frozen=True)
class ServiceAccount:
    client_email: str
    token_uri: str
    key_id: str | None
    key: rsa.RSAPrivateKey

    def __repr__(self) -> str:
        return f"ServiceAccount({self.client_email!r}, key=***)"


def _read(path: Path) -> tuple[Path, bytes]:
    real = resolve_secret_path(path)
    where = f"oauth2.service_account_file {real}"
    try:
        if os.stat(real).st_size > MAX_FILE:
            raise CredentialError(f"{where}: larger than {MAX_FILE} bytes: not a key JSON")
        return real, real.read_bytes()
    except FileNotFoundError:
        raise CredentialError(f"cannot read {where}: no such file") from None
    except PermissionError:
        raise CredentialError(f"cannot read {where}: permission denied for uid "
                              f"{os.getuid()}") from None
    except IsADirectoryError:
        raise CredentialError(f"cannot read {where}: it is a directory") from None
    except OSError as exc:
        raise CredentialError(f"cannot read {where}: {exc.strerror}") from None


def _field(doc: dict[str, object], key: str, where: str) -> str:
    value = doc.get(key)
    if not isinstance(value, str) or not value:
        raise CredentialError(f"{where}: no {key} (is it a service account's key JSON?)")
    return value


def load(path: Path) -> ServiceAccount:
    """The key JSON at `path`; CredentialError naming the file (never its content)."""
    real, raw = _read(path)
    where = f"oauth2.service_account_file {real}"
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError):  # the message quotes nothing, but be sure
        raise CredentialError(f"{where}: not valid JSON") from None
    if not isinstance(doc, dict):
        raise CredentialError(f"{where}: not a JSON object")
    if doc.get("type", "service_account") != "service_account":
        raise CredentialError(f"{where}: type is not \"service_account\"")
    email = _field(doc, "client_email", where)
    token_uri = _field(doc, "token_uri", where)
    parts = urlsplit(token_uri)
    if not parts.hostname or not (parts.scheme == "https" or (
            parts.scheme == "http" and is_loopback_host(parts.hostname))):
        raise CredentialError(f"{where}: token_uri {token_uri!r} must be an https:// URL "
                              "(plain http only for a loopback host)")
    pem = _field(doc, "private_key", where)
    try:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise CredentialError(f"{where}: private_key is not an unencrypted PEM private "
                              "key") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise CredentialError(f"{where}: private_key is not an RSA key (RS256 needs one)")
    key_id = doc.get("private_key_id")
    return ServiceAccount(email, token_uri, key_id if isinstance(key_id, str) else None, key)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def assertion(account: ServiceAccount, subject: str, scope: str,
              now: float | None = None) -> Secret:
    """The signed JWT (RFC 7515 compact form) asking for `subject`'s mailbox."""
    issued = int(time.time() if now is None else now)
    header: dict[str, str] = {"alg": "RS256", "typ": "JWT"}
    if account.key_id:
        header["kid"] = account.key_id
    claims = {"iss": account.client_email, "sub": subject, "aud": account.token_uri,
              "scope": scope, "iat": issued, "exp": issued + LIFETIME}
    signing_input = (_b64(json.dumps(header, separators=(",", ":")).encode()) + "."
                     + _b64(json.dumps(claims, separators=(",", ":")).encode()))
    signature = account.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return Secret(signing_input + "." + _b64(signature))


def token_form(path: Path, subject: str, scope: str) -> tuple[str, dict[str, str], Secret]:
    """(token endpoint, POST form, the assertion to mask) for one token request."""
    account = load(path)
    signed = assertion(account, subject, scope)
    return account.token_uri, {"grant_type": GRANT_TYPE, "assertion": signed.reveal()}, signed
