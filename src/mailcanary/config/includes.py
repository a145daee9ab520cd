"""`include = ["conf.d/*.toml"]`: one config made of many files, errors naming the file.

Config management writes one file per customer or team; the main file pulls them in with
globs relative to itself, each glob's matches sorted. An included file may hold only the
list sections (`accounts`, `routes`, `inbound`, `domains`, `alerts`); its entries are
appended to the main file's in that order, so the checks on the merged config (unique
names, references) cover every file. `Sources` maps a merged entry back to its file, so
``accounts[12].imap.port`` is reported as ``conf.d/b.toml: accounts[2].imap.port``.
"""

from __future__ import annotations

import glob
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mailcanary.config.suggest import did_you_mean

INCLUDABLE = ("accounts", "routes", "inbound", "domains", "alerts")
_MAGIC = re.compile(r"[*?[]")
_ENTRY = re.compile(r"^(" + "|".join(INCLUDABLE) + r")\[(\d+)\]")


class IncludeError(Exception):
    """Problems reading the files themselves, one ``FILE: key: why`` line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass
class Sources:
    """Where the merged config came from: the files, and each entry's file and index."""

    main: Path
    files: list[Path] = field(default_factory=list)  # the main file first, then includes
    patterns: list[Path] = field(default_factory=list)  # each include glob, made absolute
    origin: dict[tuple[str, int], tuple[Path, int]] = field(default_factory=dict)

    def where(self, problem: str) -> str:
        """``accounts[12].x: why`` -> ``conf.d/b.toml: accounts[2].x: why`` for an entry
        from an included file; the main file's problems stay as they are."""
        match = _ENTRY.match(problem)
        if match is None:
            return problem
        found = self.origin.get((match.group(1), int(match.group(2))))
        if found is None or found[0] == self.main:
            return problem
        path, index = found
        return f"{path}: {match.group(1)}[{index}]{problem[match.end():]}"

    def watched_dirs(self) -> list[Path]:
        """Directories whose changes may change the config (new files matching a glob too)."""
        dirs = {self.main.parent}
        for pattern in self.patterns:
            fixed: list[str] = []
            for part in pattern.parts:
                if _MAGIC.search(part):
                    break
                fixed.append(part)
            found = Path(*fixed)
            dirs.add(found.parent if len(fixed) == len(pattern.parts) else found)
        return sorted(d for d in dirs if d.is_dir())


def read_toml(path: Path) -> dict[str, Any]:
    """One file's TOML; IncludeError names the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise IncludeError([f"{path}: cannot read the file: {exc.strerror or exc}"]) from None
    except UnicodeDecodeError as exc:
        raise IncludeError([f"{path}: not UTF-8 text: {exc.reason}"]) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise IncludeError([f"{path}: not valid TOML: {exc}"]) from None


def _patterns(raw: dict[str, Any], base: Path) -> list[Path]:
    include = raw.pop("include", [])
    if isinstance(include, str):
        include = [include]
    if not isinstance(include, list) or not all(isinstance(p, str) for p in include):
        raise IncludeError(["include: expected a list of glob patterns, e.g. "
                            "include = [\"conf.d/*.toml\"]"])
    return [Path(p) if Path(p).is_absolute() else base / p for p in include]


def expand(path: Path) -> tuple[dict[str, Any], Sources]:
    """The main file with every included file's entries appended, and where each came from."""
    raw = read_toml(path)
    sources = Sources(path, [path], _patterns(raw, path.parent))
    for section in INCLUDABLE:
        entries = raw.get(section)
        if isinstance(entries, list):
            for i in range(len(entries)):
                sources.origin[section, i] = (path, i)
    problems: list[str] = []
    for pattern in sources.patterns:
        for name in sorted(glob.glob(str(pattern))):
            included = Path(name)
            if included in sources.files:
                continue
            try:
                _merge(raw, read_toml(included), included, sources)
            except IncludeError as exc:
                problems += exc.problems
    if problems:
        raise IncludeError(problems)
    return raw, sources


def _merge(raw: dict[str, Any], part: dict[str, Any], path: Path, sources: Sources) -> None:
    sources.files.append(path)
    problems = []
    for key, value in part.items():
        if key not in INCLUDABLE:
            problems.append(f"{path}: {key}: not allowed in an included file (only "
                            f"{', '.join(INCLUDABLE)}; include is read from the main file "
                            f"only){did_you_mean(key, INCLUDABLE)}")
        elif not isinstance(value, list):
            problems.append(f"{path}: {key}: expected a list of tables ([[{key}]])")
        else:
            merged = raw.setdefault(key, [])
            if not isinstance(merged, list):
                problems.append(f"{path}: {key}: the main file's {key} is not a list")
                continue
            for i, entry in enumerate(value):
                sources.origin[key, len(merged)] = (path, i)
                merged.append(entry)
    if problems:
        raise IncludeError(problems)
