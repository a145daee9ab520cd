"""`mailcanary validate`: everything `check` would trip over, before it runs.

Beyond the schema: every secret file and variable the config names is read (a missing
`password_file`, an unset `password_env` fail `check` with a hint that says "run validate"),
every `ca_file` exists, and there is at least one target. Errors exit 2; warnings
(config/lint.py) are printed as ``warning: <key path>: <why>`` and exit 2 under `--strict`.
Values are never printed, only where they come from.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

from mailcanary.config import AccountConfig, Config, ConfigError, Sources, warnings_for
from mailcanary.credentials import (
    CredentialError,
    account_password,
    read_secret_env,
    read_secret_file,
    resolve_secret_path,
)

EXIT_OK, EXIT_CONFIG = 0, 2


def _account_secrets(acc: AccountConfig) -> Iterator[tuple[str, str | None]]:
    """(key, problem or None) for each secret the account names."""
    if acc.oauth2 is None:
        key = "password_file" if acc.password_file is not None else (
            "password_env" if acc.password_env is not None else "password")
        yield key, _readable(lambda: account_password(acc))
        return
    for key in ("client_secret_file", "refresh_token_file"):
        path = getattr(acc.oauth2, key)
        if path is not None:
            yield f"oauth2.{key}", _readable(partial(read_secret_file, path, key))
    for key in ("client_secret_env", "refresh_token_env"):
        name = getattr(acc.oauth2, key)
        if name is not None:
            yield f"oauth2.{key}", _readable(partial(read_secret_env, name, key))
    key_file = acc.oauth2.service_account_file
    if key_file is not None:  # a JSON key: there, then read and parsed as a token request would
        problem = _file_problem(key_file)
        if problem is None:
            from mailcanary.protocols.oauth2 import serviceaccount

            problem = _readable(partial(serviceaccount.load, key_file))
        yield "oauth2.service_account_file", problem


def _readable(read: Callable[[], object]) -> str | None:
    try:
        read()
    except CredentialError as exc:
        return str(exc)
    return None


def _file_problem(path: Path) -> str | None:
    real = resolve_secret_path(path)
    try:
        with real.open("rb"):
            return None
    except FileNotFoundError:
        return f"{real}: no such file"
    except IsADirectoryError:
        return f"{real}: it is a directory"
    except OSError as exc:
        return f"{real}: cannot be read ({exc.strerror})"


def runtime_problems(config: Config) -> list[str]:
    """What loads but cannot work: unreadable secrets, missing CA files, nothing to probe."""
    from mailcanary.probes.selection import select_probes

    out = []
    for i, acc in enumerate(config.accounts):
        for key, problem in _account_secrets(acc):
            if problem is not None:
                out.append(f"accounts[{i}].{key}: {problem}")
        if acc.ca_file is not None and (problem := _file_problem(acc.ca_file)) is not None:
            out.append(f"accounts[{i}].ca_file: {problem}")
    for i, watch in enumerate(config.inbound):
        trigger = watch.trigger
        if trigger is None:
            continue
        if trigger.bearer_token_file is not None:
            problem = _readable(partial(read_secret_file, trigger.bearer_token_file,
                                        "bearer_token_file"))
            if problem is not None:
                out.append(f"inbound[{i}].trigger.bearer_token_file: {problem}")
        if trigger.ca_file is not None and (problem := _file_problem(trigger.ca_file)):
            out.append(f"inbound[{i}].trigger.ca_file: {problem}")
    if not select_probes(config):
        out.append("(top level): nothing to probe: add [[accounts]] with imap, smtp or pop3 "
                   "(or [[routes]], [[inbound]]), directly or through include")
    return out


def cmd_validate(args: argparse.Namespace, config: Config, sources: Sources) -> int:
    from mailcanary.config.webconfig import web_config_of

    problems = [sources.where(p) for p in runtime_problems(config)]
    try:  # the web.yml it names is part of the configuration
        web_config_of(config)
    except ConfigError as exc:
        problems += exc.problems
    if problems:
        print(ConfigError(args.config, problems).report(), file=sys.stderr)
    warnings = [sources.where(w) for w in warnings_for(config)]
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if problems:
        return EXIT_CONFIG
    if warnings and args.strict:
        print(f"{args.config}: {len(warnings)} warning(s); --strict makes them errors",
              file=sys.stderr)
        return EXIT_CONFIG
    print(
        f"{args.config}: valid ({len(config.accounts)} account(s), {len(config.routes)} "
        f"route(s), {len(config.inbound)} inbound watch(es), {len(config.alerts)} alert "
        f"sink(s), {len(sources.files) - 1} included file(s))"
    )
    return EXIT_OK
