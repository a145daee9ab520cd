"""Plaintext a server (or an on-path attacker) sends after the STARTTLS/STLS go-ahead and
before the handshake is dropped: it is never read as a reply that came through TLS."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
import trustme

from mailcanary.config import load_config
from mailcanary.probes.runner import run_probe
from tests.helpers.faults import Script, fake_server
from tests.helpers.support import account, endpoint, password_file, write_config

FORGED = {  # each would fail the probe if it were read as the next reply
    "smtp": "535 5.7.8 forged rejection\r\n",
    "pop3": "-ERR [AUTH] forged rejection\r\n",
    "imap": "* BYE forged\r\nZZ9 NO forged rejection\r\n* CAPABILITY IMAP4rev1 LOGINDIS",
}


@pytest.mark.parametrize("proto", ["smtp", "pop3", "imap"])
async def test_plaintext_before_the_handshake_is_dropped(tmp_path: Path, proto: str) -> None:
    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(ctx)
    script = Script(proto, starttls=ctx, inject_before_tls=FORGED[proto],
                    login_reply="+OK logged in" if proto == "pop3" else "OK")
    async with fake_server(script) as port:
        cfg = write_config(tmp_path, account(
            "acc", password_file=password_file(tmp_path), ca_file=ca_file,
            **{proto: endpoint("127.0.0.1", port, "starttls")},
        ))
        result = await run_probe(proto, "acc", load_config(cfg))
    assert result.ok, result.as_json(transcript=True)
    assert result.tls is not None
    assert "forged" not in (result.detail or "")
