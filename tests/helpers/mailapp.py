"""A small real web app that sends mail through the test bed's Postfix, as a user's app does.

``POST /<mode>`` with a JSON body ``{"email": ..., "token": ...}`` sends the app's
verification mail to ``email`` (its code is 123456, the token is quoted in the body):

- ``normal``: send, then answer 200; ``spam``: with the header the bed's Sieve files into
  Junk and the headers a receiving filter leaves (Authentication-Results with dkim=fail,
  SpamAssassin's X-Spam-Status); ``never``: answer 200, send nothing; ``delay``: answer,
  send ``delay`` seconds later; ``twice``: send two copies; ``fail``: answer 500;
  ``hang``: never answer; ``html``: an HTML-only body; ``iso2022jp``/``sjis``: Japanese;
  ``other``: saved straight into the folder "Archive" (as a user's rule would); ``big``:
the text and a 600 kB attachment.
With ``bearer`` set, a request without ``Authorization: Bearer <bearer>`` gets 401 (whose
body echoes the header it got, as careless apps do, to test the masking).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import smtplib
import ssl
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from email.header import Header
from typing import Any

from mailcanary.testbed import SPAM_HEADER, MailTestBed

SENDER = "no-reply@app.example"
CODE = "123456"


def message(mode: str, to: str, token: str) -> bytes:
    """The app's mail, as bytes on the wire (CRLF)."""
    headers = [("From", f"App <{SENDER}>"), ("To", to), ("MIME-Version", "1.0")]
    if mode in ("iso2022jp", "sjis"):
        charset = "iso-2022-jp" if mode == "iso2022jp" else "shift_jis"
        subject = Header("確認コードのお知らせ", charset).encode()
        text = f"あなたの確認コードは {CODE} です。トークン {token}\n"
        if mode == "iso2022jp":
            body, cte = text.encode("iso-2022-jp").decode("ascii"), "7bit"
        else:
            body, cte = base64.encodebytes(text.encode("shift_jis")).decode(), "base64"
        headers += [("Subject", subject), ("Content-Type", f"text/plain; charset={charset}"),
                    ("Content-Transfer-Encoding", cte)]
    elif mode == "html":
        headers += [("Subject", "=?utf-8?q?Verify_your_account_=E2=9C=94?="),
                    ("Content-Type", "text/html; charset=utf-8"),
                    ("Content-Transfer-Encoding", "7bit")]
        body = (f"<html><head><style>p {{color: red}}</style></head><body><p>Your code: "
                f"<b>{CODE}</b></p><p>Token&nbsp;{token}</p></body></html>\n")
    elif mode == "big":  # the text, then a 600 kB attachment
        headers += [("Subject", "Verify your account"),
                    ("Content-Type", 'multipart/mixed; boundary="b1"')]
        blob = base64.encodebytes(bytes(range(256)) * 2400).decode()
        body = (f"--b1\nContent-Type: text/plain\n\nYour code: {CODE}\nToken {token}\n"
                "--b1\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: "
                f"base64\nContent-Disposition: attachment; filename=a.bin\n\n{blob}--b1--\n")
    else:
        headers += [("Subject", "Verify your account"),
                    ("Content-Type", "text/plain; charset=utf-8")]
        body = f"Your code: {CODE}\nToken {token}\n"
    if mode == "spam":
        headers += [
            (SPAM_HEADER, "yes"),
            ("Authentication-Results", "mx.example.test; dkim=fail (bad signature) "
             "header.d=app.example header.s=s1; spf=softfail smtp.mailfrom=no-reply@app.example;"
             " dmarc=fail header.from=app.example"),
            ("X-Spam-Status", "Yes, score=7.3 required=5.0 tests=BAYES_99,DKIM_INVALID,\r\n"
             "\tHTML_MESSAGE autolearn=no version=3.4.6"),
        ]
    text = "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n" + body.replace("\n", "\r\n")
    return text.encode("ascii")


@dataclass
class MailApp:
    bed: MailTestBed
    port: int = 0
    bearer: str | None = None
    delay: float = 2.0
    scheme: str = "http"
    hits: dict[str, int] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def url(self, mode: str) -> str:
        return f"{self.scheme}://localhost:{self.port}/{mode}"

    def send(self, mode: str, to: str, token: str) -> None:
        raw = message(mode, to, token)
        if mode == "other":
            user = to.split("@", 1)[0]
            if not self.has_archive(user):
                self.bed.create_folder(user, "Archive")
            subprocess.run(["doveadm", "-c", str(self.bed.dovecot_conf), "save", "-u", user,
                            "-m", "Archive"], input=raw, check=True, capture_output=True)
            return
        with smtplib.SMTP(self.bed.host, self.bed.smtp_port, timeout=10) as smtp:
            smtp.sendmail(SENDER, [to], raw)

    def has_archive(self, user: str) -> bool:
        listed = self.bed.doveadm("mailbox", "list", "-u", user).stdout.split()
        return "Archive" in listed

    async def act(self, mode: str, doc: dict[str, Any]) -> tuple[int, str]:
        to, token = str(doc.get("email", "")), str(doc.get("token", ""))
        copies = {"never": 0, "fail": 0, "hang": 0, "twice": 2}.get(mode, 1)
        if mode == "hang":
            await asyncio.sleep(3600)
        if mode == "fail":
            return 500, '{"error": "mailer exploded"}'
        if mode == "delay":
            task = asyncio.create_task(self._later(to, token))
            self.tasks.add(task)
            return 202, '{"queued": true}'
        for _ in range(copies):
            await asyncio.to_thread(self.send, mode, to, token)
        return 200, f'{{"sent": {copies}}}'

    async def _later(self, to: str, token: str) -> None:
        await asyncio.sleep(self.delay)
        await asyncio.to_thread(self.send, "normal", to, token)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            request_line, *lines = head.split("\r\n")
            _method, path, _ = request_line.split(" ", 2)
            headers = {k.strip().lower(): v.strip()
                       for k, _, v in (ln.partition(":") for ln in lines if ln)}
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            mode = path.strip("/").split("?")[0]
            self.hits[mode] = self.hits.get(mode, 0) + 1
            doc = json.loads(body or b"{}")
            self.requests.append({"mode": mode, "headers": headers, "body": doc})
            if self.bearer is not None and headers.get("authorization") != f"Bearer {self.bearer}":
                status, text = 401, f"unauthorized: got {headers.get('authorization')!r}"
            else:
                status, text = await self.act(mode, doc)
            payload = text.encode()
            writer.write(f"HTTP/1.1 {status} X\r\nContent-Length: {len(payload)}\r\n"
                         "Connection: close\r\n\r\n".encode() + payload)
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@contextlib.asynccontextmanager
async def mail_app(bed: MailTestBed, *, bearer: str | None = None, delay: float = 2.0,
                   https: bool = False) -> AsyncIterator[MailApp]:
    """The app on a free loopback port; with `https`, a certificate from the bed's CA."""
    tls = None
    if https:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        bed.ca.issue_cert("localhost", "127.0.0.1").configure_cert(tls)
    app = MailApp(bed, bearer=bearer, delay=delay, scheme="https" if https else "http")
    server = await asyncio.start_server(app.handle, "127.0.0.1", 0, ssl=tls)
    app.port = server.sockets[0].getsockname()[1]
    try:
        yield app
    finally:
        server.close()
        for task in app.tasks:
            task.cancel()
        await asyncio.gather(*app.tasks, return_exceptions=True)
