"""The command line: run, check, validate, --version (see CONTRACT.md for exit codes)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from mailcanary import __version__
from mailcanary.config import Config, ConfigError, load_config, warnings_for
from mailcanary.config.webconfig import web_config_of
from mailcanary.daemon import shards
from mailcanary.daemon.app import run_daemon
from mailcanary.logsetup import configure_logging
from mailcanary.output import json_lines, table
from mailcanary.probes.runner import run_probe
from mailcanary.probes.selection import SelectionError, select_probes
from mailcanary.protocols.oauth2 import authorize as oauth2_authorize
from mailcanary.protocols.runtime import Runtime
from mailcanary.result import ProbeResult

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mailcanary",
        description="Tells you that a mail account is broken before its users do.",
    )
    parser.add_argument("--version", action="version", version=f"mailcanary {__version__}")
    parser.add_argument(
        "--log-level",
        default=None,
        help="debug, info, warning, error (default: info for run, error otherwise)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    check = sub.add_parser("check", help="run every selected probe once, now, then exit")
    check.add_argument("--config", required=True, metavar="FILE")
    check.add_argument("--account", action="append", default=[], metavar="NAME",
                       help="only this account's imap, smtp and pop3 probes (repeatable)")
    check.add_argument("--route", action="append", default=[], metavar="NAME",
                       help="only this round trip (repeatable)")
    check.add_argument("--inbound", action="append", default=[], metavar="NAME",
                       help="only this inbound watch (repeatable)")
    check.add_argument("--json", action="store_true", help="print JSON Lines")
    check.add_argument("--transcript", action="store_true",
                       help="add the protocol conversation (secrets shown as ***)")

    run = sub.add_parser("run", help="the daemon: scheduled probes, /metrics, /healthz, alerts")
    run.add_argument("--config", required=True, metavar="FILE")
    run.add_argument("--shard", default=None, metavar="K/N",
                     help="run only shard K of N (Prometheus hashmod of the target name); "
                     "default: $MAILCANARY_SHARD, else everything")

    validate = sub.add_parser("validate", help="load and validate the config only")
    validate.add_argument("--config", required=True, metavar="FILE")
    oauth2_authorize.add_parser(sub)
    return parser


def _load(path: str) -> Config | None:
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
    runtime = Runtime.for_config(config)
    try:
        return list(await asyncio.gather(
            *(run_probe(k, t, config, runtime=runtime) for k, t in probes)))
    finally:
        await runtime.close()


def cmd_check(args: argparse.Namespace) -> int:
    config = _load(args.config)
    if config is None:
        return EXIT_CONFIG
    try:
        probes = select_probes(config, args.account, args.route, args.inbound)
    except SelectionError as exc:
        print(f"mailcanary: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    results = asyncio.run(run_check(config, probes))
    render = json_lines if args.json else table
    sys.stdout.write(render(results, transcript=args.transcript))
    return EXIT_OK if all(r.ok for r in results) else EXIT_FAILED


def cmd_validate(args: argparse.Namespace) -> int:
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


COMMANDS = {
    "check": cmd_check,
    "validate": cmd_validate,
    "run": cmd_run,
    "oauth2": oauth2_authorize.cmd_oauth2,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_CONFIG
    configure_logging(args.log_level or ("info" if args.command == "run" else "error"))
    try:
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
