"""A second bed on the standard ports (143, 993, 110, 995, 25, 465, 587) of 127.0.0.3.

For the settings doctor: its candidates are the protocols' standard ports, so a test needs a
host where Dovecot and Postfix really listen there. 127.0.0.3 is otherwise unused (the whole
127/8 is loopback); binding ports below 1024 needs root, which the bed needs anyway. The
certificate names 127.0.0.3. Only one such bed can run on a machine at a time: tests that use
it share one xdist group.
"""

from __future__ import annotations

from mailcanary.testbed.bed import MailTestBed

STANDARD_HOST = "127.0.0.3"
STANDARD_PORTS = {
    "imap_port": 143, "imaps_port": 993, "pop3_port": 110, "pop3s_port": 995,
    "smtp_port": 25, "submission_port": 587, "submissions_port": 465,
}


class StandardPortsBed(MailTestBed):
    """Dovecot (IMAP, POP3) and Postfix (25, 465, 587) on STANDARD_HOST's standard ports."""

    __test__ = False

    def __init__(self, root: object, **kwargs: object) -> None:
        super().__init__(root, host=STANDARD_HOST, **kwargs)  # type: ignore[arg-type]

    def _assign_ports(self) -> None:
        for attr, port in STANDARD_PORTS.items():
            setattr(self, attr, port)
        self.pop3_private_port = 0
