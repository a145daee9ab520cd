"""`GET /status` (HTML) and `GET /api/v1/status` (JSON): every target's state, since when,
uptime and recent runs, grouped by server, filtered by query parameters.

The current state of every target is in memory (`History.current`), so filtering and
sorting 10,000 targets is a pass over a dict on the loop; only the page's targets (at
most `MAX_PER_PAGE`) have their uptime and recent runs read, on the history's worker
thread. The HTML works without JavaScript; status.js only re-fetches the same URL and
swaps the results in.
"""

from __future__ import annotations

import functools
import json
import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlencode

from mailcanary.config import Config
from mailcanary.daemon.status.facts import Facts, FactsCache
from mailcanary.daemon.status.history import WINDOWS, Current, Detail, History, Key
from mailcanary.daemon.status.render import Renderer
from mailcanary.probes.kind import ProbeKind

PER_PAGE = 100
MAX_PER_PAGE = 500
STATES = ("failing", "ok", "unknown")
FILTERS = ("state", "probe", "server", "provider", "label")
Answer = tuple[int, str, bytes]


def rfc3339(at: float | None) -> str | None:
    if at is None:
        return None
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass
class Query:
    """The page's query parameters, checked: a bad value is a 400 naming it."""

    filters: dict[str, str]
    page: int = 1
    per_page: int = PER_PAGE
    refresh: int = 30

    @classmethod
    def parse(cls, raw: str, *, paged: bool = True) -> Query:
        params = {k: v[-1].strip() for k, v in parse_qs(raw, keep_blank_values=True).items()}
        filters = {k: params[k] for k in FILTERS if params.get(k)}
        if filters.get("state", "ok") not in STATES:
            raise ValueError(f"state must be one of {', '.join(STATES)}")
        if "label" in filters and "=" not in filters["label"]:
            raise ValueError("label must be NAME=VALUE, e.g. team=sales")
        page = _int(params, "page", 1, 1, 10**6)
        per_page = _int(params, "per_page", PER_PAGE if paged else 0, 1, MAX_PER_PAGE)
        return cls(filters, page, per_page, _int(params, "refresh", 30, 2, 3600))

    def link(self, **change: int) -> str:
        """This query with `change` (page=...): the pagination links keep the filters."""
        args: dict[str, Any] = dict(self.filters)
        if self.per_page != PER_PAGE:
            args["per_page"] = self.per_page
        if self.refresh != 30:
            args["refresh"] = self.refresh
        args.update(change)
        return "?" + urlencode(args) if args else "?"


def _int(params: dict[str, str], name: str, default: int, low: int, high: int) -> int:
    if not params.get(name):
        return default
    try:
        value = int(params[name])
    except ValueError:
        raise ValueError(f"{name} must be a whole number") from None
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high}")
    return value


@dataclass
class Row:
    probe: str
    target: str
    facts: Facts
    now: Current | None
    detail: Detail | None = None
    paused: bool = False  # logins paused after repeated auth failures (daemon/backoff.py)

    @property
    def state(self) -> str:
        return "unknown" if self.now is None else "ok" if self.now.ok else "failing"

    def as_json(self) -> dict[str, Any]:
        """The contract's shape; codes as they are, the hint in the page's language."""
        now, detail = self.now, self.detail or Detail()
        state: dict[str, Any] = dict.fromkeys(("ok", "class", "reason", "phase", "hint", "since"))
        if now is not None:
            state = {"ok": now.ok, "class": now.cls, "reason": now.reason, "phase": now.phase,
                     "hint": str(now.hint), "since": rfc3339(now.since)}
        return {
            "probe": self.probe, "target": self.target, "server": self.facts.server,
            "provider": self.facts.provider, **state,
            "uptime": {name: _round(detail.uptime.get(name)) for name in WINDOWS},
            "recent": [{"at": rfc3339(at), "ok": ok, "class": cls, "reason": reason}
                       for at, ok, cls, reason in detail.recent],
        } | ({"paused": True} if self.paused else {})  # only while logins are paused


def _json_body(rows: list[Row]) -> bytes:
    """Row by row: one json.dumps of the whole document would hold the GIL (and so the
    loop) for its whole length, ~0.4 s at 2,000 targets."""
    parts = [json.dumps(row.as_json(), ensure_ascii=False) for row in rows]
    return ('{"targets": [' + ", ".join(parts) + "]}\n").encode()


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _matches(row: Row, filters: dict[str, str]) -> bool:
    for key, wanted in filters.items():
        if key == "label":
            name, _, value = wanted.partition("=")
            if row.facts.labels.get(name.strip()) != value.strip():
                return False
        elif key == "state":
            if row.state != wanted:
                return False
        elif {"probe": row.probe, "server": row.facts.server,
              "provider": row.facts.provider}[key] != wanted:
            return False
    return True


_ORDER = {"failing": 0, "unknown": 1, "ok": 2}


class StatusPage:
    """Answers /status, /status/<asset> and /api/v1/status for one daemon."""

    def __init__(self, history: History, targets: Callable[[], Iterable[Key]],
                 config: Callable[[], Config], registry: Mapping[str, ProbeKind],
                 language: Callable[[], str | None] | None = None, *,
                 paused: Callable[[str, str], bool] = lambda probe, target: False) -> None:
        self.history = history
        self.paused = paused
        self.targets = targets
        self.config = config
        self.language = language  # default: [daemon] language, else the environment's
        self.facts = FactsCache(registry)
        self.renderer = Renderer()

    def rows(self, query: Query) -> list[Row]:
        """Every configured target that passes the filters; failing first, by server."""
        config = self.config()
        current = self.history.current
        rows = [Row(probe, target, self.facts.get(config, probe, target),
                    current.get((probe, target)), paused=self.paused(probe, target))
                for probe, target in self.targets()]
        rows = [row for row in rows if _matches(row, query.filters)]
        worst: dict[str, int] = {}
        for row in rows:
            worst[row.facts.server] = min(worst.get(row.facts.server, 9), _ORDER[row.state])
        rows.sort(key=lambda r: (worst[r.facts.server], r.facts.server, _ORDER[r.state],
                                 r.target, r.probe))
        return rows

    async def _page(self, query: Query) -> tuple[list[Row], int]:
        rows = self.rows(query)
        total = len(rows)
        if query.per_page:
            start = (query.page - 1) * query.per_page
            rows = rows[start:start + query.per_page]
        details = await self.history.details([(r.probe, r.target) for r in rows])
        for row in rows:
            row.detail = details.get((row.probe, row.target))
        return rows, total

    async def api(self, raw_query: str) -> Answer:
        try:
            query = Query.parse(raw_query, paged="page" in raw_query or "per_page" in raw_query)
        except ValueError as exc:
            return 400, "text/plain; charset=utf-8", f"{exc}\n".encode()
        rows, _ = await self._page(query)
        # 10,000 targets with their recent runs are ~300,000 objects: built off the loop.
        body = await self.history.run(_json_body, rows)
        return 200, "application/json", body

    async def html(self, raw_query: str) -> Answer:
        try:
            query = Query.parse(raw_query)
        except ValueError as exc:
            return 400, "text/plain; charset=utf-8", f"{exc}\n".encode()
        started = time.perf_counter()
        rows, total = await self._page(query)
        pages = max(1, math.ceil(total / query.per_page))
        body = await self.history.run(functools.partial(  # on the worker thread, as the JSON
            self.renderer.page,
            self.language() if self.language else self.config().daemon.language,
            rows=rows, query=query, total=total,
            pages=pages, options=self._options(), now=time.time(), rfc3339=rfc3339,
            took=time.perf_counter() - started))
        return 200, "text/html; charset=utf-8", body.encode()

    def _options(self) -> dict[str, list[str]]:
        """The values a select offers: kinds and providers in the config."""
        config = self.config()
        kinds = sorted({probe for probe, _ in self.targets()})
        providers = sorted({str(a.provider) for a in config.accounts if a.provider})
        return {"state": list(STATES), "probe": kinds, "provider": providers}

    def asset(self, name: str) -> Answer | None:
        found = self.renderer.asset(name)
        return None if found is None else (200, found[0], found[1])

    async def answer(self, path: str, query: str) -> Answer:
        """The web server's handler for every path in web.STATUS_PATHS."""
        if path == "/api/v1/status":
            return await self.api(query)
        if path == "/status":
            return await self.html(query)
        found = self.asset(path.rpartition("/")[2])
        return found or (404, "text/plain; charset=utf-8", b"not found\n")
