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
from mailcanary.testbed.filters import Filters
from mailcanary.testbed.users import DEFAULT_USERS, DOMAIN, TestBedUser

_QUEUE = """
# Deliverability bed: retry a 4xx every second, bounce it once the message is this old.
maximal_queue_lifetime = {lifetime}
bounce_queue_lifetime = {lifetime}
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 1s
# A delay notice ("still trying", Action: delayed) once a message waited 1 s: a round
# trip must not end on it.
delay_warning_time = 1s
smtp_connect_timeout = 5s
"""
_MILTERS = """
# Filters (testbed/filters.py): Rspamd checks on port 25, OpenDKIM signs on submission.
smtpd_milters = {rspamd}
milter_default_action = tempfail
milter_protocol = 6
"""
# Submission: sign, then hand the message to our own port 25 (Rspamd's pass). That smtpd
# greets with another name, or Postfix's client would refuse it as a loop to itself.
_SIGN_THEN_FILTER = "  -o smtpd_milters={dkim}\n  -o content_filter=smtp:[{host}]:{port}\n"


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
        filters: bool = False,
    ) -> None:
        super().__init__(root, users, host=host)
        self.relays = dict(relays or {})
        self.queue_lifetime = queue_lifetime
        self.filters = Filters(self.root / "filters", host) if filters else None

    def _start_postfix(self) -> None:
        if self.filters is not None:
            self.filters.start()
            self.log_paths += self.filters.log_paths
            self.timings.update(self.filters.timings)
        super()._start_postfix()

    def stop(self, *, wait_reaped: float = 0.0) -> None:
        if self.filters is not None:
            self.filters.stop()
        super().stop(wait_reaped=wait_reaped)

    def _postfix_files(self, s: templates.PostfixSettings) -> dict[str, str]:
        files = super()._postfix_files(s)
        main = files["main.cf"].replace(  # mynetworks may relay: a second pass does
            "smtpd_relay_restrictions = permit_sasl_authenticated",
            "smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated")
        files["main.cf"] = main + _QUEUE.format(lifetime=self.queue_lifetime)
        if self.filters is not None:
            files["main.cf"] += _MILTERS.format(rspamd=self.filters.milter("rspamd"))
            sign = _SIGN_THEN_FILTER.format(dkim=self.filters.milter("opendkim"), host=self.host,
                                         port=s.smtp_port)
            master = files["master.cf"]
            for service in ("submission", "submissions"):
                mark = f"  -o syslog_name=postfix/{service}\n"
                master = master.replace(mark, mark + sign)
            port25 = f"{self.host}:{s.smtp_port} inet n - n - - smtpd\n"
            files["master.cf"] = master.replace(port25, port25 + f"  -o myhostname=mx.{DOMAIN}\n")
        files["transport"] += "".join(
            f"{domain} smtp:[{self.host}]:{port}\n" for domain, port in self.relays.items()
        )
        return files
