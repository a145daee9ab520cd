"""A test bed whose Postfix relays test domains to other servers and gives up quickly.

    bed = DeliverabilityBed(root, relays={"docomo.ne.jp": 2525})

Mail for a relayed domain goes to ``[bed.host]:PORT`` (a transport map entry; no DNS):
a test's own SMTP server there refuses it, and the real Postfix writes the real bounce
(DSN) to the sender. A 4xx is retried every second and bounced once the message is
``queue_lifetime`` old (``maximal_queue_lifetime``/``bounce_queue_lifetime``; Postfix
bounces on the first failed attempt after that age). ``permit_mynetworks`` on port 25 lets
a second pass through the bed (testbed/filters.py) relay too.

The default bed keeps Postfix's lifetimes: a deferred message there waits, as it would.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from mailcanary.testbed import templates
from mailcanary.testbed.bed import MailTestBed
from mailcanary.testbed.users import DEFAULT_USERS, TestBedUser

_QUEUE = """
# Deliverability bed: retry a 4xx every second, bounce it once the message is this old.
maximal_queue_lifetime = {lifetime}
bounce_queue_lifetime = {lifetime}
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 1s
smtp_connect_timeout = 5s
smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination
"""


class DeliverabilityBed(MailTestBed):
    """MailTestBed plus relayed domains (domain -> port on `host`) and short queue times."""

    def __init__(
        self,
        root: Path,
        users: Sequence[TestBedUser] = DEFAULT_USERS,
        *,
        relays: Mapping[str, int] | None = None,
        queue_lifetime: str = "3s",
        host: str = "127.0.0.1",
    ) -> None:
        super().__init__(root, users, host=host)
        self.relays = dict(relays or {})
        self.queue_lifetime = queue_lifetime

    def _postfix_files(self, s: templates.PostfixSettings) -> dict[str, str]:
        files = super()._postfix_files(s)
        files["main.cf"] += _QUEUE.format(lifetime=self.queue_lifetime)
        files["transport"] += "".join(
            f"{domain} smtp:[{self.host}]:{port}\n" for domain, port in self.relays.items()
        )
        return files
