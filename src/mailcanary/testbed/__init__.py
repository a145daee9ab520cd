"""A real mail test bed -- Dovecot (IMAP, LMTP, Sieve) and Postfix -- for tests and demos.

    from mailcanary.testbed import MailTestBed, ensure_installed

    ensure_installed()
    with MailTestBed(tmp_path) as bed:
        imaplib.IMAP4_SSL(bed.host, bed.imaps_port, ssl_context=bed.ssl_context())

Needs root (Postfix does). See ``MailTestBed`` for the ports and helpers.
"""

from __future__ import annotations

from .bed import MailTestBed, free_port, wait_for_greeting
from .certs import FAULT_KINDS, WRONG_HOST
from .demo import write_demo_config
from .errors import TestBedError
from .install import ensure_installed
from .templates import SPAM_HEADER
from .users import BLACKHOLE_ADDRESS, DEFAULT_USERS, DOMAIN, TestBedUser

__all__ = [
    "BLACKHOLE_ADDRESS",
    "DEFAULT_USERS",
    "DOMAIN",
    "FAULT_KINDS",
    "SPAM_HEADER",
    "WRONG_HOST",
    "MailTestBed",
    "TestBedError",
    "TestBedUser",
    "ensure_installed",
    "free_port",
    "wait_for_greeting",
    "write_demo_config",
]
