"""Which probes a `check` (or the daemon) runs: by default every target of every kind, in
config order; `--account`, `--route`, `--inbound` ... (each kind's `Selection`) narrow it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from mailcanary.config import Config
from mailcanary.probes import PROBES
from mailcanary.probes.kind import ProbeKind, Selection


class SelectionError(ValueError):
    pass


def selections(registry: Mapping[str, ProbeKind] | None = None) -> list[Selection]:
    """Each distinct selection flag once, in registry order."""
    out: list[Selection] = []
    for kind in (registry or PROBES).values():
        if all(kind.selection.flag != s.flag for s in out):
            out.append(kind.selection)
    return out


def select_probes(
    config: Config, chosen: Mapping[str, Sequence[str]] | None = None,
    registry: Mapping[str, ProbeKind] | None = None,
) -> list[tuple[str, str]]:
    """(kind, target) pairs in config order. `chosen`: flag -> names (``{"route": [...]}``);
    none chosen means everything."""
    registry = registry or PROBES
    wanted = {flag: set(names) for flag, names in (chosen or {}).items() if names}
    flags = selections(registry)
    unknown = set(wanted) - {s.flag for s in flags}
    if unknown:
        raise SelectionError(f"no probe kind is selected by --{sorted(unknown)[0]}")
    out: list[tuple[str, str]] = []
    for selection in flags:
        names = list(selection.names(config))
        known = set(names) if selection.flag in wanted else set()
        for name in (chosen or {}).get(selection.flag, ()):
            if name not in known:
                listed = ", ".join(sorted(names)) or "none"
                raise SelectionError(
                    f"no {selection.noun} named {name!r} ({selection.plural}: {listed})")
        if wanted and selection.flag not in wanted:
            continue
        kinds = [k for k in registry.values() if k.selection.flag == selection.flag]
        for name in names:
            if wanted and name not in wanted[selection.flag]:
                continue
            out.extend((kind.name, name) for kind in kinds if kind.has(config, name))
    return out
