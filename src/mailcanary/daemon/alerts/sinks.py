"""Where alerts go. Each sink's `send` raises on failure; the engine retries and counts."""

from __future__ import annotations

import asyncio
import email.utils
from collections.abc import Callable
from email.message import EmailMessage
from typing import Any, Protocol

import httpx

from mailcanary import __version__
from mailcanary.config import AlertConfig, Config
from mailcanary.daemon.alerts.severity import severity
from mailcanary.daemon.alerts.state import AlertEvent, rfc3339
from mailcanary.daemon.alerts.texts import Language, SinkError, english, readable, summary
from mailcanary.i18n import Translator, translator

__all__ = ["EmailSink", "Sink", "SinkError", "make_sink", "readable", "summary"]
from mailcanary.protocols.httpbody import capped_request
from mailcanary.protocols.resolver import Resolver
from mailcanary.protocols.runtime import Runtime
from mailcanary.protocols.signin import smtp_login
from mailcanary.protocols.smtp import SmtpClient
from mailcanary.protocols.transport import tls_context
from mailcanary.result import ProbeContext

HTTP_TIMEOUT = 10.0
_HEADERS = {"User-Agent": f"mailcanary/{__version__}"}


class Sink(Protocol):
    async def send(self, event: AlertEvent) -> None: ...
    async def aclose(self) -> None: ...


class _HttpSink:
    def __init__(self, url: str, language: Language = english) -> None:
        self.url = url
        self.language = language
        self.client = httpx.AsyncClient(timeout=HTTP_TIMEOUT, headers=_HEADERS)

    async def _post(self, url: str, body: Any) -> None:
        try:
            response = await capped_request(self.client, "POST", url, json=body,
                                            total=HTTP_TIMEOUT)
        except httpx.HTTPError as exc:
            raise SinkError(f"{type(exc).__name__}: {exc}") from None
        if response.status_code >= 300:
            raise SinkError(f"HTTP {response.status_code}: {response.text[:200]}")

    async def aclose(self) -> None:
        await self.client.aclose()


class WebhookSink(_HttpSink):
    async def send(self, event: AlertEvent) -> None:
        await self._post(self.url, {**event.payload(), "hint": self.language().text(event.hint)})


class SlackSink(_HttpSink):
    async def send(self, event: AlertEvent) -> None:
        await self._post(self.url, {"text": readable(event, self.language())})


class AlertmanagerSink(_HttpSink):
    """POSTs to Alertmanager's v2 API; endsAt keeps a firing alert alive until refreshed.
    Every alert has `server` and `provider` (group_by, inhibit_rules) and the account's
    labels; a server incident is `MailcanaryServerDown` (docs/alerting.md)."""

    async def send(self, event: AlertEvent) -> None:
        labels = {**dict(event.labels), "server": event.server, "provider": event.provider,
                  "class": event.cls,
                  "severity": severity(event.probe, event.cls, event.reason, event.scope)}
        if event.scope == "server":
            labels["alertname"] = "MailcanaryServerDown"
        else:
            labels.update(alertname="MailcanaryProbeFailing", probe=event.probe,
                          target=event.target, reason=event.reason)
        alert = {
            "labels": labels,
            "annotations": {
                "summary": summary(event, self.language()),
                "hint": self.language().text(event.hint),
                "detail": event.detail,
                **({"reason": event.reason, "count": str(event.count),
                    "targets": ", ".join(event.targets)} if event.scope == "server" else {}),
            },
            "startsAt": rfc3339(event.since),
            "endsAt": rfc3339(event.expires),
        }
        await self._post(self.url.rstrip("/") + "/api/v2/alerts", [alert])


class EmailSink:
    """Through the named account's own SMTP login (validate warns if it is monitored too)."""

    def __init__(self, sink: AlertConfig, config: Callable[[], Config]) -> None:
        assert sink.account is not None
        self.account_name = sink.account
        self.to = list(sink.to)
        self.config = config

    async def send(self, event: AlertEvent) -> None:
        config = self.config()
        account = config.account(self.account_name)
        assert account.smtp is not None
        message = EmailMessage()
        message["From"] = account.address
        message["To"] = ", ".join(self.to)
        tr = translator(config.daemon.language)
        message["Subject"] = summary(event, tr)
        message["Date"] = email.utils.formatdate(localtime=False)
        message["Message-ID"] = email.utils.make_msgid(domain=account.address.split("@")[1])
        message["Auto-Submitted"] = "auto-generated"
        message.set_content(readable(event, tr) + "\n")
        # A runtime of its own: the daemon's `helo_name` and nameservers, no probe's slot.
        runtime = Runtime(helo_name=config.daemon.helo_name,
                          resolver=Resolver(nameservers=config.daemon.nameservers or ()))
        ctx = ProbeContext(probe="alert", target=account.name, runtime=runtime)
        tls = tls_context(account.ca_file) if account.smtp.security != "none" else None
        client = SmtpClient(ctx, account.smtp, tls)
        try:
            async with asyncio.timeout(config.timeout_of(account)):
                await client.connect()
                await smtp_login(client, account)
                await client.send_message(account.address, self.to, message.as_bytes())
                await client.quit()
        except Exception as exc:
            raise SinkError(ctx.redact(f"{type(exc).__name__}: {exc}")) from None
        finally:
            client.close()

    async def aclose(self) -> None:
        return None


def make_sink(sink: AlertConfig, config: Callable[[], Config]) -> Sink:
    def language() -> Translator:
        return translator(config().daemon.language)

    if sink.kind == "email":
        return EmailSink(sink, config)
    if sink.kind == "apprise":
        from mailcanary.daemon.alerts.notify import AppriseSink  # noqa: PLC0415  (heavy)

        return AppriseSink(sink.apprise_urls(), language)
    assert sink.url is not None
    if sink.kind == "slack":
        return SlackSink(sink.url, language)
    if sink.kind == "alertmanager":
        return AlertmanagerSink(sink.url, language)
    return WebhookSink(sink.url, language)
