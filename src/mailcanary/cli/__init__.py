"""The command line: run, check, validate, oauth2, --version (CONTRACT.md: exit codes).

Each command imports what it needs when it runs (`run` the daemon, `oauth2` its sign-in
flow, `check` the probes): `mailcanary --version` and `check` start fast.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from mailcanary.cli.parser import build_parser, chosen

if TYPE_CHECKING:
    from mailcanary.config import Config
    from mailcanary.result import ProbeResult

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2


def _load(path: str) -> Config | None:
    from mailcanary.config import ConfigError, load_config

    try:
        return load_config(path)
    except ConfigError as exc:
        print(exc.report(), file=sys.stderr)
        return None


async def run_check(config: Config, probes: Sequence[tuple[str, str]]) -> list[ProbeResult]:
    """All probes at once: one slow server must not delay the others' answers. They share
    one runtime of their own, so they take connection slots like the daemon's
    (`[daemon] max_concurrent_probes`, `max_connections_per_server`, an endpoint's
    `max_connections`)."""
    import asyncio

    from mailcanary.probes.runner import run_probe
    from mailcanary.protocols.runtime import Runtime

    runtime = Runtime.for_config(config)
    try:
        return list(await asyncio.gather(
            *(run_probe(k, t, config, runtime=runtime) for k, t in probes)))
    finally:
        await runtime.close()


def cmd_check(args: argparse.Namespace) -> int:
    import asyncio

    from mailcanary.output import json_lines, table
    from mailcanary.probes.selection import SelectionError, select_probes

    config = _load(args.config)
    if config is None:
        return EXIT_CONFIG
    try:
        probes = select_probes(config, chosen(args))
    except SelectionError as exc:
        print(f"mailcanary: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    results = asyncio.run(run_check(config, probes))
    render = json_lines if args.json else table
    sys.stdout.write(render(results, transcript=args.transcript))
    return EXIT_OK if all(r.ok for r in results) else EXIT_FAILED


def cmd_validate(args: argparse.Namespace) -> int:
    from mailcanary.config import ConfigError, warnings_for
    from mailcanary.config.webconfig import web_config_of

    config = _load(args.config)
    if config is None:
        return EXIT_CONFIG
    try:  # the web.yml it names is part of the configuration
        web_config_of(config)
    except ConfigError as exc:
        print(exc.report(), file=sys.stderr)
        return EXIT_CONFIG
    for warning in warnings_for(config):
        print(f"warning: {warning}", file=sys.stderr)
    print(
        f"{args.config}: valid ({len(config.accounts)} account(s), {len(config.routes)} "
        f"route(s), {len(config.inbound)} inbound watch(es), {len(config.alerts)} alert sink(s))"
    )
    return EXIT_OK


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


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(with_kinds="check" in argv)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_CONFIG
    from mailcanary.logsetup import configure_logging

    configure_logging(args.log_level or ("info" if args.command == "run" else "error"))
    try:
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
