"""`kind = "apprise"`: every event through the Apprise library (Slack, Teams, Discord,
Telegram, ntfy, Matrix, e-mail, LINE... each from one URL).

Apprise sends synchronously, so each send runs in a worker thread: the event loop never
waits on a notification service. URLs often hold tokens or passwords: they are never
logged, neither by us (a failed URL is named by its position and scheme) nor by Apprise
(its logger does not propagate; its messages may quote a URL).
"""

from __future__ import annotations

import asyncio
import logging

import apprise

from mailcanary.daemon.alerts.state import AlertEvent
from mailcanary.daemon.alerts.texts import Language, SinkError, english, readable, summary

_quiet = logging.getLogger("apprise")
_quiet.propagate = False
_quiet.addHandler(logging.NullHandler())


def _scheme(url: str) -> str:
    return url.split("://", 1)[0].lower()


class AppriseSink:
    """One Apprise plugin per URL, so a failure names which one (by position)."""

    def __init__(self, urls: list[str], language: Language = english) -> None:
        self.language = language  # the daemon's, asked at each send
        asset = apprise.AppriseAsset(app_id="mailcanary", app_desc="mailcanary alerts")
        self.plugins: list[tuple[int, str, apprise.NotifyBase | None]] = [
            (n, _scheme(url), apprise.Apprise.instantiate(url, asset=asset))
            for n, url in enumerate(urls, 1)
        ]
        # The event being sent and the URLs that already took it: a retry (the engine
        # retries the whole send) goes only to those that failed, never twice to one.
        self.current: AlertEvent | None = None
        self.delivered: set[int] = set()

    async def send(self, event: AlertEvent) -> None:
        tr = self.language()
        title = summary(event, tr)
        body = readable(event, tr)
        kind = apprise.NotifyType.FAILURE if event.status == "firing" else (
            apprise.NotifyType.SUCCESS)
        if event is not self.current:
            self.current, self.delivered = event, set()
        failed = await asyncio.to_thread(self._send_all, title, body, kind)
        if failed:
            raise SinkError("apprise: " + "; ".join(failed))

    def _send_all(self, title: str, body: str, kind: apprise.NotifyType) -> list[str]:
        """In a worker thread: each URL in turn; what failed, without the URLs."""
        failed: list[str] = []
        for number, scheme, plugin in self.plugins:
            if number in self.delivered:
                continue
            if plugin is None:
                failed.append(f"URL {number} ({scheme}://) is not one Apprise understands")
                continue
            try:
                ok = plugin.notify(body=body, title=title, notify_type=kind)
            except Exception as exc:  # a plugin's bug: named by type only (no URL in it)
                failed.append(f"URL {number} ({scheme}://) raised {type(exc).__name__}")
                continue
            if not ok:
                failed.append(f"URL {number} ({scheme}://) was not delivered")
            else:
                self.delivered.add(number)
        return failed

    async def aclose(self) -> None:
        return None
