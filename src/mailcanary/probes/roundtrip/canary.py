"""The canary message itself (what is read back from a message's headers on arrival is
probes/mailbox/headers.py's).

A canary is small and honest: it says it is an automated delivery test, carries no links
and no tracking, and is found again only by its unique token (never by its subject).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime

TOKEN_HEADER = "X-Mailcanary-Token"  # noqa: S105  # a header name, not a password
INSTALLATION_HEADER = "X-Mailcanary-Installation"
ROUTE_HEADER = "X-Mailcanary-Route"
SENT_HEADER = "X-Mailcanary-Sent"

_HEADER_NAME = re.compile(r"^[!-9;-~]+$")  # RFC 5322 field name: printable, no colon


def new_token() -> str:
    return secrets.token_hex(16)


@dataclass(frozen=True)
class Canary:
    token: str
    route: str
    installation: str
    sender: str
    recipient: str
    sent_at: datetime  # UTC, when we built it

    def message(
        self, extra_headers: Mapping[str, str] | None = None, extra_body: str = ""
    ) -> bytes:
        """The RFC 5322 message, CRLF line ends, 7-bit ASCII (`extra_body`: tests only,
        e.g. a spam filter's test pattern)."""
        domain = self.sender.rpartition("@")[2] or "mailcanary.invalid"
        sent = self.sent_at.isoformat(timespec="microseconds").replace("+00:00", "Z")
        headers = [
            ("Date", format_datetime(self.sent_at)),
            ("From", f"mailcanary <{self.sender}>"),
            ("To", f"<{self.recipient}>"),
            ("Subject", f"mailcanary automated delivery test ({self.route})"),
            ("Message-ID", f"<mailcanary.{self.token}@{domain}>"),
            ("Auto-Submitted", "auto-generated"),
            (TOKEN_HEADER, self.token),
            (INSTALLATION_HEADER, self.installation),
            (ROUTE_HEADER, self.route),
            (SENT_HEADER, sent),
            ("MIME-Version", "1.0"),
            ("Content-Type", "text/plain; charset=us-ascii"),
            ("Content-Transfer-Encoding", "7bit"),
        ]
        for name, value in (extra_headers or {}).items():
            if not _HEADER_NAME.match(name) or "\r" in value or "\n" in value:
                raise ValueError(f"not a valid header: {name!r}: {value!r}")
            headers.append((name, value))
        body = (
            "This is an automated delivery test sent by mailcanary, a mail monitor.\n"
            "It checks that mail from this sender reaches this mailbox, and how fast.\n"
            "mailcanary deletes this message itself as soon as it has seen it;\n"
            "you can safely delete it too.\n"
            "\n"
            f"Route: {self.route}\n"
            f"Sent: {sent}\n"
            f"Token: {self.token}\n"
        ) + extra_body
        text = "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n" + body.replace("\n", "\r\n")
        return text.encode("ascii")


def new_canary(
    route: str, sender: str, recipient: str, installation: str, now: datetime | None = None
) -> Canary:
    return Canary(new_token(), route, installation, sender, recipient, now or datetime.now(UTC))
