"""A real mail test bed -- Dovecot (IMAP, LMTP, Sieve) and Postfix -- for tests and demos.

    from mailcanary.testbed import MailTestBed, ensure_installed

    ensure_installed()
    with MailTestBed(tmp_path) as bed:
        imaplib.IMAP4_SSL(bed.host, bed.imaps_port, ssl_context=bed.ssl_context())

Needs root (Postfix does). See ``MailTestBed`` for the ports and helpers.

Behaviour worth knowing (Dovecot 2.3.19, Postfix 3.7 on Debian 12):

- Start ~0.35 s (Dovecot ~50 ms, ``postfix start`` ~0.3 s), stop ~20 ms (SIGTERM to the
  masters; ``postfix stop`` would poll with 1 s sleeps). A TLS-fault instance starts lazily
  on the first ``tls_fault_ports(kind)`` in ~50 ms.
- IMAP from 127.0.0.1 counts as secured: LOGIN works before STARTTLS, no LOGINDISABLED.
- Submission (``submission_port``) sets ``smtpd_tls_auth_only = yes``: AUTH (PLAIN, LOGIN) is
  advertised only after STARTTLS; MAIL is accepted without AUTH but RCPT gets 554 (relay
  denied) for every recipient. ``smtp_port`` takes mail for local users without AUTH and
  answers 554 "Relay access denied" for other domains.
- Unknown recipients under example.test: 550 5.1.1 at RCPT on every port.
- A failed IMAP login takes ~0.5 s, a failed SMTP AUTH ~0.5 s per mechanism (smtplib tries
  PLAIN then LOGIN, so ~1 s), even with ``auth_failure_delay = 0``; the next good login is
  not delayed (anvil-auth-penalty is off).
- A wrong-host certificate gives OpenSSL verify code 62 (hostname mismatch) when the client
  names "localhost", but 64 (IP address mismatch) when it connects to "127.0.0.1".
- ``start()`` adds the "others may search" (o+x) bit to the root and to each of its
  ancestors that lacks it (e.g. pytest's 0700 /tmp/pytest-of-root), so that the mail uid
  (5000) and user postfix can reach their files. Nothing becomes listable or readable.
- After ``stop()`` the daemons' orphaned processes are dead but may linger as zombies until
  PID 1 reaps them (~1 s here); ``stop(wait_reaped=2)`` waits for that as well.
- Each ``start()`` makes a new CA and new certificates.
- ``MailTestBed(root, oauth2_introspection_url=URL)`` also offers XOAUTH2 and OAUTHBEARER
  (IMAP, and SMTP through Postfix's Dovecot SASL): Dovecot's oauth2 passdb POSTs
  ``token=...`` to URL and wants ``{"active": true, "username": "alice"}``. A refused
  token gets ``+ <base64 JSON status>`` (IMAP) / ``334`` (SMTP) before the final NO/535.
"""

from __future__ import annotations

from mailcanary.testbed.bed import MailTestBed
from mailcanary.testbed.certs import FAULT_KINDS, WRONG_HOST
from mailcanary.testbed.demo import write_demo_config
from mailcanary.testbed.errors import TestBedError
from mailcanary.testbed.install import ensure_installed
from mailcanary.testbed.network import free_port, wait_for_greeting
from mailcanary.testbed.templates import SPAM_HEADER
from mailcanary.testbed.users import BLACKHOLE_ADDRESS, DEFAULT_USERS, DOMAIN, TestBedUser

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
