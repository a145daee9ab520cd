"""The status page's HTML (Jinja2, autoescaped) and its two static files, all served by
the daemon itself: no asset from the internet, no build step."""

from __future__ import annotations

import functools
import time
from importlib import resources
from typing import TYPE_CHECKING, Any

from mailcanary.i18n import Translator, translator

if TYPE_CHECKING:
    import jinja2

ASSETS = {"status.css": "text/css; charset=utf-8",
          "status.js": "text/javascript; charset=utf-8", "favicon.svg": "image/svg+xml"}


def percent(value: float | None) -> str:
    """Uptime as people read it: 99.9 %, 100 %; an em dash when there is no run yet."""
    if value is None:
        return "\u2014"
    shown = f"{value * 100:.2f}".rstrip("0").rstrip(".")
    return f"{shown}\u00a0%"


def duration(seconds: float, tr: Translator | None = None) -> str:
    """"3 min", "2 h 5 min", "4 d 1 h": how long a state has lasted, in the page's language."""
    tr = tr or translator("en")
    seconds = max(0, int(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        shown = tr("{days} d {hours} h", days=days, hours=hours)
    elif hours:
        shown = tr("{hours} h {minutes} min", hours=hours, minutes=minutes)
    else:
        shown = tr("{minutes} min", minutes=minutes) if minutes else tr("{seconds} s",
                                                                          seconds=secs)
    return shown.replace(" ", "\u00a0")


def clock(at: float) -> str:
    """"2026-12-07 14:13 UTC": a time people read (the markup carries RFC 3339)."""
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(at))


class Renderer:
    """One Jinja2 environment per process, built at the first request (the daemon's
    start-up does not pay for it)."""

    def __init__(self) -> None:
        self._env: jinja2.Environment | None = None
        self._assets: dict[str, bytes] = {}

    @property
    def env(self) -> jinja2.Environment:
        if self._env is None:
            import jinja2  # noqa: PLC0415 (only the daemon's /status needs it)

            env = jinja2.Environment(
                loader=jinja2.PackageLoader("mailcanary.daemon.status", "templates"),
                autoescape=True, trim_blocks=True, lstrip_blocks=True,
                extensions=["jinja2.ext.i18n"], undefined=jinja2.StrictUndefined,
            )
            env.filters["percent"] = percent
            env.filters["duration"] = duration
            env.filters["clock"] = clock
            self._env = env
        return self._env

    def page(self, language: str | None, **context: Any) -> str:
        env = self.env
        tr = translator(language)  # [daemon] language, else the environment's
        env.install_gettext_callables(  # type: ignore[attr-defined]
            tr.gettext, tr.ngettext, newstyle=True)
        env.filters["duration"] = functools.partial(duration, tr=tr)
        return env.get_template("status.html").render(
            language=tr.language, text=tr.text, **context)

    def asset(self, name: str) -> tuple[str, bytes] | None:
        if name not in ASSETS:
            return None
        if name not in self._assets:
            path = resources.files("mailcanary.daemon.status").joinpath("static", name)
            self._assets[name] = path.read_bytes()
        return ASSETS[name], self._assets[name]
