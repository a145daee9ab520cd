"""Auth backoff that survives reloads and restarts, kept in `state_dir`.

Without it, config management (a SIGHUP a minute) or a crash loop would re-probe a wrong
password at full rate until the provider locks the account. A job's backoff is dropped only
when the probe succeeds or the credentials it uses change: a keyed hash of the secrets (the
key is random, per state file, so the file holds nothing a password can be checked against
elsewhere) together with where they come from.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from mailcanary.config import AccountConfig, Config
from mailcanary.credentials import CredentialError, account_password
from mailcanary.state import JsonState

log = structlog.get_logger("mailcanary.daemon.backoff")

FILE_NAME = "backoff.json"


@dataclass(frozen=True)
class Saved:
    exponent: int
    next_due: float  # wall-clock time of the next run the backoff allowed


def accounts_of(config: Config, kind: str, target: str) -> list[AccountConfig]:
    """The accounts whose credentials a job logs in with."""
    if kind == "roundtrip":
        route = config.route(target)
        return [config.account(route.from_), config.account(route.to)]
    if kind == "inbound":
        return [config.account(config.inbound_watch(target).account)]
    names = {a.name for a in config.accounts}
    return [config.account(target)] if target in names else []


def _secret_of(account: AccountConfig) -> str:
    if account.oauth2 is not None:
        return account.oauth2.model_dump_json()
    try:
        return account_password(account).reveal()
    except CredentialError as exc:
        return f"unreadable: {exc}"


class BackoffStore:
    def __init__(self, state_dir: Path) -> None:
        self.file = JsonState(state_dir / FILE_NAME)
        data = self.file.load()
        self.key = bytes.fromhex(data["key"]) if isinstance(data.get("key"), str) else (
            secrets.token_bytes(16))
        jobs = data.get("jobs")
        self.jobs: dict[str, dict[str, Any]] = jobs if isinstance(jobs, dict) else {}

    def credentials(self, config: Config, kind: str, target: str) -> str:
        digest = hashlib.blake2b(key=self.key, digest_size=16)
        for account in accounts_of(config, kind, target):
            where = account.model_dump_json(include={"name", "username", "password_file",
                                                     "password_env"})
            digest.update(where.encode() + b"\0" + _secret_of(account).encode() + b"\0")
        return digest.hexdigest()

    def restore(self, job_id: str, credentials: str) -> Saved | None:
        entry = self.jobs.get(job_id)
        if entry is None:
            return None
        if entry.get("credentials") != credentials:
            log.info("probe_backoff_reset", job=job_id, reason="the credentials changed")
            self.forget(job_id)
            return None
        return Saved(int(entry["exponent"]), float(entry["next_due"]))

    def record(self, job_id: str, exponent: int, credentials: str, next_due: float) -> None:
        if exponent <= 0:
            self.forget(job_id)
            return
        self.jobs[job_id] = {"exponent": exponent, "credentials": credentials,
                             "next_due": next_due}
        self._save()

    def forget(self, job_id: str) -> None:
        if self.jobs.pop(job_id, None) is not None:
            self._save()

    def _save(self) -> None:
        try:
            self.file.save({"key": self.key.hex(), "jobs": self.jobs})
        except OSError as exc:
            log.error("state_write_failed", path=str(self.file.path),
                      error=exc.strerror or str(exc))
