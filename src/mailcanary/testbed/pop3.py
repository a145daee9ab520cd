"""Dovecot's POP3 (Debian's dovecot-pop3d) in the test bed: the listeners' config.

STLS on `pop3_port`, implicit TLS on `pop3s_port`, and a plain listener on a second loopback
address (127.0.0.2) where Dovecot does not count the connection as secured, so it drops USER
from CAPA and refuses a plaintext login before STLS, as a real server reached over a network
does. `pop3_no_flag_updates` keeps a POP3 download from marking messages seen for IMAP.
"""

from __future__ import annotations

PRIVATE_HOST = "127.0.0.2"  # a connection to it does not count as secured


def pop3_service(pop3_port: int, pop3s_port: int, private_port: int = 0) -> str:
    """The ``service pop3-login`` block (empty when the instance serves no POP3)."""
    if not pop3_port:
        return ""
    private = (
        f"  inet_listener pop3-private {{\n    address = {PRIVATE_HOST}\n"
        f"    port = {private_port}\n  }}\n"
        if private_port else ""
    )
    return (
        "service pop3-login {\n"
        f"  inet_listener pop3 {{\n    port = {pop3_port}\n  }}\n"
        f"  inet_listener pop3s {{\n    port = {pop3s_port}\n    ssl = yes\n  }}\n"
        f"{private}}}\n"
        "protocol pop3 {\n  pop3_no_flag_updates = yes\n}\n"
    )
