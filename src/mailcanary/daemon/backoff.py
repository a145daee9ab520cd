"""Auth backoff, in one place: the policy, its file in `state_dir`, and when it ends.

Repeated failed logins get accounts locked (Microsoft, Yahoo, fail2ban). After an ``auth``
or ``rate_limited`` failure a probe's interval doubles per consecutive such failure, up to
8x. What ends a streak is a result that says the credentials or the rate are fine again: a
success, or a failure *after* the login (a mailbox, a send, a delivery). A failure before
the login (phases dns, connect, tls, greeting, starttls, token, or a timeout or network
error during auth: ``BEFORE_LOGIN``) says nothing about either, so it neither ends nor
extends the streak; otherwise an account in an auth outage whose next run times out
waiting for a connection slot, or meets a dead server, would go back to full rate and add
the load that made it time out. The same holds for ``rate_limited`` (``too_many_connections``
at the greeting, a throttled send): only a run that got past the login ends it. The lockout
pause (`count_login`) reasons the same way. Without persistence, config management (a
SIGHUP a minute) or a crash loop would re-probe a wrong password at full rate, so the
streaks survive reloads and restarts in ``backoff.json``, written at most once a second
and off the event loop (a copy encoded and written in a worker thread, one write at a time).

A saved backoff ends when the probe succeeds or the credentials it uses change. To notice a
change across restarts without keeping anything a guess loop can test quickly, the file
holds a *slow* salted fingerprint (scrypt, see `credentials.fingerprint`) of where the
secrets come from and what they are. It is computed once per secret value in one worker
thread (never on the event loop): when a job starts backing off, and after a restart or
reload for each saved job, whose backoff goes on meanwhile and ends if the value differs.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from mailcanary.config import AccountConfig, Config
from mailcanary.credentials import (
    CredentialError,
    account_password,
    fingerprint,
    read_secret_env,
    read_secret_file,
    resolve_secret_path,
)
from mailcanary.probes import PROBES
from mailcanary.result import ProbeResult
from mailcanary.state import BatchedState, JsonState, StateInvalid

log = structlog.get_logger("mailcanary.daemon.backoff")

FILE_NAME = "backoff.json"
BACKOFF_CLASSES = ("auth", "rate_limited")
MAX_BACKOFF = 8
# The auth failures that mean "these credentials are refused" (a provider counts them).
PAUSE_REASONS = frozenset({"invalid_credentials", "account_locked", "app_password_required",
                           "basic_auth_disabled", "web_login_required"})
BEFORE_LOGIN = frozenset({"dns", "connect", "tls", "greeting", "starttls", "token", "auth"})


def logged_in(ok: bool, phase: str | None) -> bool:
    """Whether a result got past the login (so it says something about the credentials)."""
    return ok or phase not in BEFORE_LOGIN


# (config, kind, target) -> the accounts whose credentials the job logs in with: the
# probe kind says (`ProbeKind.accounts`; the scheduler passes its registry's).
AccountsOf = Callable[[Config, str, str], list[AccountConfig]]


def accounts_of(config: Config, kind: str, target: str) -> list[AccountConfig]:
    """The registered kinds' answer (a scheduler with its own registry passes its own)."""
    found = PROBES.get(kind)
    return [] if found is None else found.accounts(config, target)


def _material(config: Config, kind: str, target: str, accounts_of: AccountsOf) -> str:
    """Where a job's secrets come from and what they are (read in the worker thread)."""
    return _accounts_material(accounts_of(config, kind, target))


def _accounts_material(accounts: list[AccountConfig]) -> str:
    parts = []
    for account in accounts:
        parts.append(account.model_dump_json(include={"name", "username", "password_file",
                                                      "password_env"}))
        if account.oauth2 is not None:
            parts.append(account.oauth2.model_dump_json())
            parts += _oauth2_secrets(account)
            continue
        try:
            parts.append(account_password(account).reveal())
        except CredentialError as exc:
            parts.append(f"unreadable: {exc}")
    return "\0".join(parts)


def _oauth2_secrets(account: AccountConfig) -> list[str]:
    """The OAuth2 client secret, refresh token and service-account key (a new one ends a
    pause)."""
    oauth2, out = account.oauth2, []
    assert oauth2 is not None
    for key in ("client_secret", "refresh_token"):
        path, env = getattr(oauth2, f"{key}_file"), getattr(oauth2, f"{key}_env")
        try:
            if path is not None:
                out.append(read_secret_file(path, key).reveal())
            elif env is not None:
                out.append(read_secret_env(env, key).reveal())
        except CredentialError as exc:
            out.append(f"unreadable: {exc}")
    key_file = getattr(oauth2, "service_account_file", None)
    if key_file is not None:  # a Workspace service account's key: a new key ends a pause
        try:
            out.append(resolve_secret_path(key_file).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            out.append(f"unreadable: {type(exc).__name__}")
    return out


def _check(data: dict[str, Any]) -> None:
    """The shape we write; anything else is moved aside at start-up, never a crash."""
    if not isinstance(data.get("salt", ""), str) or not isinstance(data.get("jobs", {}), dict):
        raise StateInvalid("salt or jobs of the wrong type")
    bytes.fromhex(data.get("salt", ""))
    for job_id, entry in data.get("jobs", {}).items():
        if not isinstance(entry, dict) or not isinstance(entry.get("exponent"), int) or (
            not isinstance(entry.get("next_due"), int | float)
        ) or not isinstance(entry.get("credentials"), str | None):
            raise StateInvalid(f"job {job_id!r} is not a backoff entry")
    for name, entry in data.get("paused", {}).items():
        if not isinstance(entry, dict) or not isinstance(entry.get("credentials"), str | None) \
                or not isinstance(entry.get("reason"), str):
            raise StateInvalid(f"paused account {name!r} is not a pause entry")


class Fingerprints:
    """Slow fingerprints of a job's credentials, one worker thread, cached per value (the
    cache key is a keyed hash whose key never leaves this process)."""

    def __init__(self, salt: bytes, accounts_of: AccountsOf) -> None:
        self.salt = salt
        self.accounts_of = accounts_of
        self._key = secrets.token_bytes(32)
        self._cache: dict[str, str] = {}  # touched only by the worker thread
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="mailcanary-fingerprint")
        self.computed = 0

    def _compute(self, config: Config, kind: str, target: str) -> str:
        return self._slow(_material(config, kind, target, self.accounts_of))

    def _slow(self, material: str) -> str:
        quick = hashlib.blake2b(material.encode(), key=self._key).hexdigest()
        slow = self._cache.get(quick)
        if slow is None:
            slow = self._cache[quick] = fingerprint(material, self.salt)
            self.computed += 1
        return slow

    async def of(self, config: Config, kind: str, target: str) -> str:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._compute, config, kind, target)

    async def of_account(self, account: AccountConfig) -> str:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._pool, lambda: self._slow(_accounts_material([account])))

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


@dataclass(frozen=True)
class Resume:
    job_id: str
    exponent: int
    run_in: float  # seconds from now to the next run the saved backoff allowed


class Backoff:
    """Streaks per (probe, target) and, once `attach`ed, their file in `state_dir`."""

    def __init__(self, accounts: AccountsOf = accounts_of) -> None:
        self.accounts_of = accounts
        self.failures: dict[tuple[str, str], int] = {}  # (probe, target) -> streak
        self.jobs: dict[str, dict[str, Any]] = {}  # job id -> saved entry
        self.batch: BatchedState | None = None
        self.fingerprints = Fingerprints(secrets.token_bytes(16), accounts)
        self._tasks: set[asyncio.Task[None]] = set()
        self.logins: dict[str, int] = {}  # account -> consecutive auth failures
        self.paused: dict[str, dict[str, Any]] = {}  # account -> saved pause entry

    # ------------------------------------------------------------------ the policy

    def get(self, probe: str, target: str) -> int:
        """Consecutive auth/rate-limited failures of this probe."""
        return self.failures.get((probe, target), 0)

    def factor(self, probe: str, target: str) -> int:
        return min(1 << min(self.get(probe, target), 8), MAX_BACKOFF)

    def active(self, probe: str, target: str) -> bool:
        return self.get(probe, target) > 0

    def record(self, probe: str, target: str, cls: str,
               phase: str | None = None) -> tuple[int, int]:
        """Count one result of class `cls` that failed in `phase` (None: a success, or a
        failure outside every phase): (factor before, factor after)."""
        before = self.factor(probe, target)
        if cls in BACKOFF_CLASSES:
            self.failures[probe, target] = self.get(probe, target) + 1
        elif logged_in(cls == "ok", phase):
            self.failures.pop((probe, target), None)
        return before, self.factor(probe, target)

    def set(self, probe: str, target: str, exponent: int) -> None:
        """A saved streak (restored after a restart); 0 clears it."""
        if exponent > 0:
            self.failures[probe, target] = exponent
        else:
            self.failures.pop((probe, target), None)

    def forget(self, probe: str, target: str) -> None:
        """The streak in memory only (a changed job starts afresh, its saved one resumes)."""
        self.failures.pop((probe, target), None)

    # ------------------------------------------------------------------ lockout protection
    # Backoff alone still logs in every few hours forever; providers (docomo, Microsoft)
    # lock an account after a few wrong passwords. After `[defaults] auth_pause_after`
    # consecutive auth failures an account logs in no more until its secret (file content,
    # environment value, OAuth2 secret: its slow fingerprint) or its config changes. Only a
    # job of one account counts (a round trip's failure does not say whose login failed);
    # every job of a paused account pauses. The pause survives restarts in backoff.json.

    def count_login(self, config: Config, kind: str, target: str,
                    result: ProbeResult) -> str | None:
        """Count the account's auth failures; its name when this result pauses it."""
        limit = config.defaults.auth_pause_after
        accounts = self.accounts_of(config, kind, target)
        if limit <= 0 or len(accounts) != 1:
            return None
        name = accounts[0].name
        if result.reason in PAUSE_REASONS:
            self.logins[name] = self.logins.get(name, 0) + 1
        elif logged_in(result.ok, result.phase):
            self.logins.pop(name, None)
        if self.logins.get(name, 0) < limit or name in self.paused:
            return None
        self.paused[name] = {"credentials": None, "reason": result.reason,
                             "since": time.time(), "failures": self.logins[name]}
        self._changed()
        self._spawn(self._fill_pause(accounts[0]))
        return name

    async def _fill_pause(self, account: AccountConfig) -> None:
        value = await self.fingerprints.of_account(account)
        entry = self.paused.get(account.name)
        if entry is not None and entry.get("credentials") is None:
            entry["credentials"] = value
            self._changed()

    def paused_in(self, config: Config, kind: str, target: str) -> list[str]:
        """The job's accounts that are paused (none: it may log in)."""
        if not self.paused:
            return []
        return [a.name for a in self.accounts_of(config, kind, target) if a.name in self.paused]

    def paused_result(self, kind: str, target: str, account: str) -> ProbeResult:
        """What a paused job reports when no result of it is in memory (after a restart)."""
        entry = self.paused[account]
        words = (f"no login: account {account!r} paused after {entry.get('failures')} "
                 f"consecutive authentication failures ({entry['reason']})")
        return ProbeResult(kind, target, False, "auth", str(entry["reason"]), "auth", words,
                           "Logins stay paused so the provider does not lock the account; "
                           "fix the password (file, variable or OAuth2 secret) or change "
                           "the account's config and they resume.", 0.0, {})

    def unpause(self, name: str) -> None:
        self.logins.pop(name, None)
        if self.paused.pop(name, None) is not None:
            self._changed()

    def changed_accounts(self, old: Config, new: Config) -> list[str]:
        """Paused accounts a reload changed or removed (their counts start afresh too)."""
        out = []
        for name in set(self.paused) | set(self.logins):
            before, after = old.accounts_by_name.get(name), new.accounts_by_name.get(name)
            if before is None or after is None or before != after:
                self.logins.pop(name, None)
                if name in self.paused:
                    out.append(name)
        return out

    async def secrets_changed(self, config: Config) -> list[str]:
        """Paused accounts whose secret is no longer the one that failed."""
        out = []
        for name, entry in list(self.paused.items()):
            account = config.accounts_by_name.get(name)
            saved = entry.get("credentials")
            if account is None or saved is None:
                continue
            if await self.fingerprints.of_account(account) != saved \
                    and self.paused.get(name) is entry:
                out.append(name)
        return out

    # ------------------------------------------------------------------ the file

    def attach(self, state_dir: Path) -> None:
        file = JsonState(state_dir / FILE_NAME, check=_check)
        data = file.load()
        self.batch = BatchedState(file, self._snapshot, off_loop=True)
        if data.get("salt"):
            self.fingerprints = Fingerprints(bytes.fromhex(data["salt"]), self.accounts_of)
        self.jobs = data.get("jobs", {})
        self.paused = {**data.get("paused", {}), **self.paused}
        if "key" in data or "salt" not in data:  # an older file's fast keyed hashes: gone
            for entry in self.jobs.values():
                entry["credentials"] = None  # unknown: the backoff goes on
            self._changed()
            self.batch.flush()

    def _snapshot(self) -> dict[str, Any]:
        """A copy (encoded and written in a worker thread): 2 ms at 10,000 jobs."""
        return {"salt": self.fingerprints.salt.hex(),
                "jobs": {job: dict(entry) for job, entry in self.jobs.items()},
                "paused": {name: dict(entry) for name, entry in self.paused.items()}}

    def _changed(self) -> None:
        if self.batch is not None:
            self.batch.changed()

    def save(self, config: Config, kind: str, target: str, next_due: float) -> None:
        """After a result: keep the job's streak (or drop it) for a restart."""
        if self.batch is None:
            return
        job_id, exponent = f"{kind}:{target}", self.get(kind, target)
        old = self.jobs.get(job_id)
        if exponent <= 0:
            self.drop(job_id)
            return
        self.jobs[job_id] = {"exponent": exponent, "next_due": next_due,
                             "credentials": None if old is None else old.get("credentials")}
        self._changed()
        if old is None:  # backing off starts: whose credentials? (off the loop)
            self._spawn(self._fill(config, kind, target))

    async def _fill(self, config: Config, kind: str, target: str) -> None:
        value = await self.fingerprints.of(config, kind, target)
        entry = self.jobs.get(f"{kind}:{target}")
        if entry is not None and entry.get("credentials") is None:
            entry["credentials"] = value
            self._changed()

    def drop(self, job_id: str) -> None:
        if self.jobs.pop(job_id, None) is not None:
            self._changed()

    def resume(self, config: Config, jobs: list[tuple[str, str]],
               reset: Callable[[str, str], None]) -> list[Resume]:
        """Saved backoffs to go on with now; each is checked against the credentials in
        the background and `reset(kind, target)` is called if they changed."""
        out, now = [], time.time()
        for kind, target in jobs:
            entry = self.jobs.get(f"{kind}:{target}")
            if entry is None:
                continue
            out.append(Resume(f"{kind}:{target}", int(entry["exponent"]),
                              float(entry["next_due"]) - now))
            if entry.get("credentials") is not None:
                self._spawn(self._verify(config, kind, target, entry["credentials"], reset))
        return out

    async def _verify(self, config: Config, kind: str, target: str, saved: str,
                      reset: Callable[[str, str], None]) -> None:
        if await self.fingerprints.of(config, kind, target) == saved:
            return
        job_id = f"{kind}:{target}"
        if self.jobs.get(job_id, {}).get("credentials") != saved:
            return  # a newer backoff or a success since
        log.info("probe_backoff_reset", job=job_id, reason="the credentials changed")
        self.drop(job_id)
        self.forget(kind, target)
        reset(kind, target)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def close(self) -> None:
        """At stop: pending checks cancelled, the file written once more."""
        for task in self._tasks:
            task.cancel()
        self.fingerprints.close()
        if self.batch is not None:
            self.batch.close()
