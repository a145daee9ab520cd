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
from mailcanary.protocols.httpbody import capped_request
from mailcanary.protocols.runtime import Runtime
from mailcanary.protocols.signin import smtp_login
from mailcanary.protocols.smtp import SmtpClient
from mailcanary.protocols.transport import tls_context
from mailcanary.result import ProbeContext

HTTP_TIMEOUT = 10.0
_HEADERS = {"User-Agent": f"mailcanary/{__version__}"}


class SinkError(Exception):
    pass


class Sink(Protocol):
    async def send(self, event: AlertEvent) -> None: ...
    async def aclose(self) -> None: ...


def summary(event: AlertEvent) -> str:
    state = "FIRING" if event.status == "firing" else "RESOLVED"
    return (
        f"[mailcanary {state}] {event.probe} {event.target}: {event.cls}/{event.reason}"
        + (f" in phase {event.phase}" if event.phase else "")
    )


def readable(event: AlertEvent) -> str:
    """The text Slack and e-mail show: what, since when, what to do."""
    lines = [summary(event)]
    if event.status == "firing":
        lines.append(f"failing since {rfc3339(event.since)} ({event.failures} probes in a row)")
    else:
        lines.append(
            f"recovered after {event.failures} failed probes since {rfc3339(event.since)}"
        )
    if event.hint:
        lines.append(f"hint: {event.hint}")
    if event.detail:
        lines.append(f"detail: {event.detail}")
    return "\n".join(lines)


class _HttpSink:
    def __init__(self, url: str) -> None:
        self.url = url
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
        await self._post(self.url, event.payload())


class SlackSink(_HttpSink):
    async def send(self, event: AlertEvent) -> None:
        await self._post(self.url, {"text": readable(event)})


class AlertmanagerSink(_HttpSink):
    """POSTs to Alertmanager's v2 API; endsAt keeps a firing alert alive until refreshed."""

    async def send(self, event: AlertEvent) -> None:
        alert = {
            "labels": {
                "alertname": "MailcanaryProbeFailing",
                "probe": event.probe,
                "target": event.target,
                "class": event.cls,
                "reason": event.reason,
                "severity": severity(event.probe, event.cls, event.reason),
            },
            "annotations": {
                "summary": summary(event),
                "hint": event.hint,
                "detail": event.detail,
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
        message["Subject"] = summary(event)
        message["Date"] = email.utils.formatdate(localtime=False)
        message["Message-ID"] = email.utils.make_msgid(domain=account.address.split("@")[1])
        message["Auto-Submitted"] = "auto-generated"
        message.set_content(readable(event) + "\n")
        # A runtime of its own: the daemon's `helo_name`, no probe's connection slot.
        runtime = Runtime(helo_name=config.daemon.helo_name)
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
    if sink.kind == "email":
        return EmailSink(sink, config)
    assert sink.url is not None
    if sink.kind == "slack":
        return SlackSink(sink.url)
    if sink.kind == "alertmanager":
        return AlertmanagerSink(sink.url)
    return WebhookSink(sink.url)
