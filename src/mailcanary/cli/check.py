"""`mailcanary check`: every selected probe at once, each result printed as it finishes.

A round trip can wait minutes for its canary; the login probes answer in a second, so
their rows appear at once. Ctrl-C (SIGINT) stops the rest and prints what finished, with
the count of what did not. `--nagios` prints the one status line of a monitoring plugin
instead (cli/nagios.py).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mailcanary.config import Config
    from mailcanary.i18n import Translator
    from mailcanary.result import ProbeResult

EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_INTERRUPTED = 0, 1, 2, 130


async def run_check(config: Config, probes: Sequence[tuple[str, str]],
                    on_result: Callable[[ProbeResult], None] | None = None,
                    ) -> list[ProbeResult]:
    """All probes at once: one slow server must not delay the others' answers. They share
    one runtime of their own, so they take connection slots like the daemon's
    (`[daemon] max_concurrent_probes`, `max_connections_per_server`, an endpoint's
    `max_connections`). `on_result` hears each result as it finishes; the list comes back
    in selection order."""
    from mailcanary.probes.runner import run_probe
    from mailcanary.protocols.runtime import Runtime

    runtime = Runtime.for_config(config)
    tasks = [asyncio.ensure_future(run_probe(k, t, config, runtime=runtime))
             for k, t in probes]
    try:
        for next_done in asyncio.as_completed(tasks):
            result = await next_done
            if on_result is not None:
                on_result(result)
        return [task.result() for task in tasks]
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await runtime.close()


def probe_filter(probes: list[tuple[str, str]], kinds: Sequence[str]) -> list[tuple[str, str]]:
    return [p for p in probes if not kinds or p[0] in kinds]


def cmd_check(args: argparse.Namespace, config: Config) -> int:
    from mailcanary.cli.parser import chosen
    from mailcanary.output import Table, json_line
    from mailcanary.probes.selection import SelectionError, select_probes

    nagios = bool(args.nagios)
    try:
        probes = probe_filter(select_probes(config, chosen(args)), args.probe)
    except SelectionError as exc:
        if nagios:
            from mailcanary.cli.nagios import unknown

            return unknown(f"usage: {exc}")
        print(f"mailcanary: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if nagios:
        from mailcanary.cli.nagios import nagios_check

        return nagios_check(config, probes, args.cert_warning_days, run_check)
    finished: list[ProbeResult] = []
    tr = _translator(args.lang, config)
    table = (None if args.json
             else Table.for_probes(config, probes, transcript=args.transcript, tr=tr))
    if table is not None:
        _out(table.header())

    order = {probe: i for i, probe in enumerate(probes)}
    held: dict[int, ProbeResult] = {}
    printed = [0]  # JSON lines written so far

    def show(result: ProbeResult) -> None:
        """The table: each row as it finishes. JSON Lines: in selection order (scripts
        read them in config order), each line as soon as it and those before it are done."""
        finished.append(result)
        if table is not None:
            _out(table.row(result))
            return
        held[order[result.probe, result.target]] = result
        while printed[0] in held:
            _out(json_line(held.pop(printed[0]), transcript=args.transcript, tr=tr))
            printed[0] += 1

    try:
        asyncio.run(run_check(config, probes, show))
    except KeyboardInterrupt:
        missing = len(probes) - len(finished)
        if table is not None:
            _out(table.footer(finished, missing))
        print(f"mailcanary: interrupted; {missing} probe(s) did not finish", file=sys.stderr)
        return EXIT_INTERRUPTED
    if table is not None:
        _out(table.footer(finished, 0))
    return EXIT_OK if all(r.ok for r in finished) else EXIT_FAILED


def _translator(flag: str | None, config: Config) -> Translator:
    """--lang, else the config's language, else the locale; unknown means English."""
    from mailcanary import i18n

    if flag is not None and not i18n.known(flag):
        print(f"mailcanary: no translation for --lang {flag!r} (have: "
              f"{', '.join(i18n.LANGUAGES)}); using English", file=sys.stderr)
    return i18n.translator(flag if flag is not None else config.daemon.language)


def _out(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()
