"""A receiving SMTP server that refuses mail as carriers and big providers do.

The test bed's Postfix relays test domains to it (testbed/deliverability.py); each
refusal there makes the real Postfix write a real bounce to the sender. The recipient's
local part picks the refusal. It runs in a thread (aiosmtpd's Controller), so the
session-wide bed and every test's event loop can use it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from aiosmtpd.controller import Controller

from mailcanary.testbed import free_port

# local part -> the reply to RCPT TO (a docomo-style "Unknown user" is also what its
# customers' receiving settings, 受信拒否/指定受信, answer; the texts are modelled on the
# carriers' and providers' published examples).
RCPT_REPLIES = {
    "filter": "550 Unknown user {addr}",
    "policy": "550 5.7.1 <{addr}>: Recipient address rejected: refused by the recipient's "
              "receiving settings (domain filter)",
    "unknown": "550 5.1.1 <{addr}>: Recipient address rejected: User unknown",
    "full": "552 5.2.2 <{addr}>: Mailbox full, over quota",
    "defer": "451 4.3.0 <{addr}>: Temporary local problem, please try again later",
}
DATA_REPLIES = {"spam": "554 5.7.1 Message rejected as spam by the content filter"}


class CarrierHandler:
    def __init__(self) -> None:
        self.refused: list[str] = []
        self.accepted: list[str] = []

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        local = address.split("@", maxsplit=1)[0].lower()
        reply = RCPT_REPLIES.get(local)
        if reply is not None:
            self.refused.append(address)
            return reply.format(addr=address)
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(
        self, server: Any, session: Any, envelope: Any
    ) -> str:
        for rcpt in envelope.rcpt_tos:
            reply = DATA_REPLIES.get(rcpt.split("@")[0].lower())
            if reply is not None:
                self.refused.append(rcpt)
                return reply
        self.accepted += envelope.rcpt_tos
        return "250 2.0.0 OK queued"


@contextmanager
def carrier_server(host: str = "127.0.0.1") -> Iterator[tuple[int, CarrierHandler]]:
    handler = CarrierHandler()
    port = free_port(host)
    controller = Controller(handler, hostname=host, port=port, ready_timeout=10)
    controller.start()
    try:
        yield port, handler
    finally:
        controller.stop()
