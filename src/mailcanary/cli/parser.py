"""The command line's arguments. Building them imports nothing heavy: `--version` and
`--help` answer at once; only `check` asks the probe registry for its selection flags."""

from __future__ import annotations

import argparse
from typing import Any

from mailcanary import __version__


def build_parser(*, with_kinds: bool = True) -> argparse.ArgumentParser:
    """`with_kinds=False` leaves out `check`'s per-kind selection flags (--account,
    --route, --inbound, ...): they need the probe registry, which `--version` must not load."""
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
    if with_kinds:
        from mailcanary.probes.selection import selections

        for selection in selections():
            check.add_argument(f"--{selection.flag}", action="append", default=[],
                               metavar="NAME", dest=f"select_{selection.flag}",
                               help=selection.help)
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
    _add_oauth2(sub)
    return parser


def chosen(args: argparse.Namespace) -> dict[str, list[str]]:
    """`check`'s selection: flag -> names (``{"route": ["a-to-b"]}``)."""
    prefix = "select_"
    return {key[len(prefix):]: value for key, value in vars(args).items()
            if key.startswith(prefix) and value}


def _add_oauth2(sub: Any) -> None:
    oauth2 = sub.add_parser("oauth2", help="OAuth2 helpers (first sign-in)")
    actions = oauth2.add_subparsers(dest="oauth2_command", metavar="ACTION", required=True)
    authorize = actions.add_parser(
        "authorize", help="sign in once in a browser and store the account's refresh token"
    )
    authorize.add_argument("--config", required=True, metavar="FILE")
    authorize.add_argument("--account", required=True, metavar="NAME")
    authorize.add_argument("--flow", choices=("device", "browser"), default=None,
                           help="device code (default for microsoft) or browser with a "
                           "loopback redirect (default for google)")
    authorize.add_argument("--no-browser", action="store_true",
                           help="only print the URL; do not try to open a browser")
    authorize.add_argument("--wait", type=float, default=600.0, metavar="SECONDS",
                           help="give up after this long (default 600)")
