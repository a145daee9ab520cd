"""The command line's arguments. Building them imports nothing heavy: `--version` and
`--help` answer at once; only `check` asks the probe registry for its selection flags."""

from __future__ import annotations

import argparse
from typing import Any

from mailcanary import __version__

CONFIG_ENV = "MAILCANARY_CONFIG"
DEFAULT_CONFIG = "/etc/mailcanary/mailcanary.toml"
LOG_LEVEL_HELP = "debug, info, warning, error (default: info for run, error otherwise)"
CONFIG_HELP = f"the config file (default: ${CONFIG_ENV}, else {DEFAULT_CONFIG})"


def build_parser(*, with_kinds: bool = True) -> argparse.ArgumentParser:
    """`with_kinds=False` leaves out `check`'s per-kind selection flags (--account,
    --route, --inbound, ...): they need the probe registry, which `--version` must not load."""
    parser = argparse.ArgumentParser(
        prog="mailcanary",
        description="Tells you that a mail account is broken before its users do.",
    )
    parser.add_argument("--version", action="version", version=f"mailcanary {__version__}")
    parser.add_argument("--log-level", default=None, help=LOG_LEVEL_HELP)
    # Every command takes --log-level and --config too (`check --log-level debug`); the
    # top-level value stays unless the command's is given.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--log-level", default=argparse.SUPPRESS, help=LOG_LEVEL_HELP)
    common.add_argument("--config", default=None, metavar="FILE", help=CONFIG_HELP)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    check = sub.add_parser("check", help="run every selected probe once, now, then exit",
                           parents=[common])
    if with_kinds:
        from mailcanary.probes.selection import selections

        for selection in selections():
            check.add_argument(f"--{selection.flag}", action="append", default=[],
                               metavar="NAME", dest=f"select_{selection.flag}",
                               help=selection.help)
    check.add_argument("--probe", action="append", default=[], metavar="KIND",
                       help="only probes of this kind (imap, smtp, pop3, roundtrip, ...; "
                       "repeatable)")
    check.add_argument("--json", action="store_true", help="print JSON Lines")
    check.add_argument("--transcript", action="store_true",
                       help="add the protocol conversation (secrets shown as ***)")
    check.add_argument("--nagios", action="store_true",
                       help="one Nagios/Icinga/Checkmk status line; exit 0 OK, 1 WARNING, "
                       "2 CRITICAL, 3 UNKNOWN")
    check.add_argument("--cert-warning-days", type=int, default=14, metavar="DAYS",
                       help="--nagios: WARNING when a certificate expires within this many "
                       "days (default 14)")
    check.add_argument("--lang", default=None, metavar="LANG",
                       help="ja or en: the language of hints and the table (default: [daemon] "
                       "language, else LC_ALL / LC_MESSAGES / LANG)")

    run = sub.add_parser("run", help="the daemon: scheduled probes, /metrics, /healthz, alerts",
                         parents=[common])
    run.add_argument("--shard", default=None, metavar="K/N",
                     help="run only shard K of N (Prometheus hashmod of the target name); "
                     "default: $MAILCANARY_SHARD, else everything")

    validate = sub.add_parser("validate", help="load and validate the config only",
                              parents=[common])
    validate.add_argument("--strict", action="store_true",
                          help="exit 2 when there is any warning too")
    _add_oauth2(sub, common)
    return parser


def config_path(args: argparse.Namespace, environ: dict[str, str]) -> str:
    """--config, else $MAILCANARY_CONFIG, else the packaged default path."""
    given: str | None = getattr(args, "config", None)
    return given or environ.get(CONFIG_ENV) or DEFAULT_CONFIG


def chosen(args: argparse.Namespace) -> dict[str, list[str]]:
    """`check`'s selection: flag -> names (``{"route": ["a-to-b"]}``)."""
    prefix = "select_"
    return {key[len(prefix):]: value for key, value in vars(args).items()
            if key.startswith(prefix) and value}


def _add_oauth2(sub: Any, common: argparse.ArgumentParser) -> None:
    oauth2 = sub.add_parser("oauth2", help="OAuth2 helpers (first sign-in)")
    actions = oauth2.add_subparsers(dest="oauth2_command", metavar="ACTION", required=True)
    authorize = actions.add_parser(
        "authorize", help="sign in once in a browser and store the account's refresh token",
        parents=[common],
    )
    authorize.add_argument("--account", required=True, metavar="NAME")
    authorize.add_argument("--flow", choices=("device", "browser"), default=None,
                           help="device code (default for microsoft) or browser with a "
                           "loopback redirect (default for google)")
    authorize.add_argument("--no-browser", action="store_true",
                           help="only print the URL; do not try to open a browser")
    authorize.add_argument("--wait", type=float, default=600.0, metavar="SECONDS",
                           help="give up after this long (default 600)")
