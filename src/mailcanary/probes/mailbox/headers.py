"""What a delivered message's headers say: the receiving side's Authentication-Results
(spf, dkim, dmarc) and the Received: hops. Round trips and inbound watches read both."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from email.message import Message
from email.parser import BytesHeaderParser
from email.utils import parsedate_to_datetime


def parse_headers(raw: bytes) -> Message:
    return BytesHeaderParser().parsebytes(raw)


_AUTH_METHODS = ("spf", "dkim", "dmarc")
_RESULT = re.compile(r"(?:^|[;\s])(spf|dkim|dmarc)\s*=\s*([A-Za-z]+)", re.IGNORECASE)


def auth_results(headers: Message, authserv_id: str | None = None) -> dict[str, str]:
    """spf/dkim/dmarc from the receiving side's Authentication-Results (RFC 8601).

    The topmost header is the receiving server's own (headers are prepended on the way);
    with `authserv_id` only headers from that server count. "none" when absent.
    """
    out = dict.fromkeys(_AUTH_METHODS, "none")
    values = [str(v) for v in headers.get_all("Authentication-Results") or []]
    if authserv_id is not None:
        values = [
            v for v in values if v.strip().split(";")[0].split()[0].lower() == authserv_id.lower()
        ]
    if not values:
        return out
    text = re.sub(r"\([^()]*\)", " ", " ".join(values[0].split()))  # drop RFC 5322 comments
    # The first part is the authserv-id (and version); results follow.
    _, _, results = text.partition(";")
    for match in _RESULT.finditer(results):
        method = match.group(1).lower()
        if out[method] == "none":
            out[method] = match.group(2).lower()
    return out


@dataclass(frozen=True)
class Hop:
    by: str
    at: datetime | None


def received_hops(headers: Message) -> list[Hop]:
    """Each Received: header's "by" host and timestamp, oldest hop first."""
    hops = []
    for value in reversed([str(v) for v in headers.get_all("Received") or []]):
        flat = " ".join(value.split())
        stamp_text = flat.rpartition(";")[2].strip()
        try:
            at: datetime | None = parsedate_to_datetime(stamp_text)
        except (TypeError, ValueError):
            at = None
        by = re.search(r"\bby\s+(\S+)", flat)
        hops.append(Hop(by.group(1) if by else "?", at))
    return hops
