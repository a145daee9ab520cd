"""The command line: run, check, validate, oauth2, --version (CONTRACT.md: exit codes).

Each command imports what it needs when it runs (`run` the daemon, `oauth2` its sign-in
flow, `check` the probes): `mailcanary --version` and `check` start fast.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from mailcanary.cli.parser import build_parser, config_path

if TYPE_CHECKING:
    from mailcanary.config import Config, Sources
    from mailcanary.result import ProbeResult

EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_UNKNOWN = 0, 1, 2, 3


def _load_sources(path: str) -> tuple[Config, Sources] | None:
    from mailcanary.config import ConfigError, load_config_sources

    try:
        return load_config_sources(path)
    except ConfigError as exc:
        print(exc.report(), file=sys.stderr)
        return None


def _load(path: str) -> Config | None:
    loaded = _load_sources(path)
    return None if loaded is None else loaded[0]


async def run_check(config: Config, probes: Sequence[tuple[str, str]]) -> list[ProbeResult]:
    """Every probe at once (cli/check.py), the results in selection order."""
    from mailcanary.cli.check import run_check as run

    return await run(config, probes)


def cmd_check(args: argparse.Namespace) -> int:
    from mailcanary.cli.check import cmd_check as check

    if args.nagios:
        from mailcanary.cli.nagios import unknown
        from mailcanary.config import ConfigError, load_config

        try:
            config = load_config(args.config)
        except ConfigError as exc:
            return unknown(f"bad config: {'; '.join(exc.problems)}")
        return check(args, config)
    loaded = _load(args.config)
    return EXIT_CONFIG if loaded is None else check(args, loaded)


def cmd_validate(args: argparse.Namespace) -> int:
    from mailcanary.cli.validate import cmd_validate as validate

    loaded = _load_sources(args.config)
    return EXIT_CONFIG if loaded is None else validate(args, *loaded)


def cmd_run(args: argparse.Namespace) -> int:
    import asyncio

    from mailcanary.daemon import shards
    from mailcanary.daemon.app import run_daemon

    spec, source = args.shard, "--shard"
    if spec is None and os.environ.get(shards.ENV):
        spec, source = os.environ[shards.ENV], shards.ENV
    shard = None
    if spec is not None:
        try:
            shard = shards.parse_shard(spec, source=source)
        except shards.ShardSpecError as exc:
            print(f"mailcanary: {exc}", file=sys.stderr)
            return EXIT_CONFIG
    config = _load(args.config)
    if config is None:
        return EXIT_CONFIG
    return asyncio.run(run_daemon(Path(args.config), config, shard))


def cmd_oauth2(args: argparse.Namespace) -> int:
    from mailcanary.cli.oauth2 import cmd_oauth2 as flow

    return flow(args)


COMMANDS = {
    "check": cmd_check,
    "validate": cmd_validate,
    "run": cmd_run,
    "oauth2": cmd_oauth2,
}


@contextlib.contextmanager
def start_up(program: bool) -> Iterator[None]:
    """The cyclic garbage collector paused while the modules load, then (`program`: main()
    is the process's entry point) those objects frozen. Pydantic, the config models and the
    probe registry make ~100,000 objects that live until exit: ~90 collections during the
    imports and the full one at exit went over them for nothing, ~20 % of `check`'s CPU.
    A caller in-process (the tests) gets its collector back as it was, nothing frozen."""
    if program:
        # pydantic otherwise reads every installed distribution's entry points looking for
        # plugins (~5 ms); a user's own setting wins (docs/development.md).
        os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if program:
            gc.freeze()
        if was_enabled:
            gc.enable()


def main(argv: Sequence[str] | None = None) -> int:
    program = argv is None
    argv = sys.argv[1:] if argv is None else list(argv)
    nagios = "check" in argv and "--nagios" in argv
    with start_up(program):
        parser = build_parser(with_kinds="check" in argv)
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:  # a usage error: a plugin's UNKNOWN in --nagios mode
            if nagios and exc.code == EXIT_CONFIG:
                return EXIT_UNKNOWN
            raise
        if args.command is None:
            parser.print_help(sys.stderr)
            return EXIT_CONFIG
        if hasattr(args, "config"):
            args.config = config_path(args, dict(os.environ))
        from mailcanary.logsetup import configure_logging

        configure_logging(args.log_level or ("info" if args.command == "run" else "error"))
    try:
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        return EXIT_UNKNOWN if nagios else 130


if __name__ == "__main__":
    sys.exit(main())
