"""POP3 sign-in with OAuth2 bearer tokens against the real Dovecot (oauth2 passdb): XOAUTH2
and OAUTHBEARER, the token shared with the account's other probes, nothing secret in any output."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailcanary.testbed import MailTestBed
from tests.helpers.oauth_server import OAuthServer
from tests.helpers.support import check_json, endpoint
from tests.protocols.test_oauth2 import (  # the module's fixtures: an OAuth server and a bed
    _fresh_token_cache,
    oauth_bed,
    oauth_config,
    oauth_server,
)

__all__ = ["_fresh_token_cache", "oauth_bed", "oauth_server"]

pytestmark = pytest.mark.testbed


@pytest.mark.parametrize("mechanism", ["xoauth2", "oauthbearer"])
async def test_pop3_bearer_sign_in(tmp_path: Path, oauth_bed: MailTestBed,
                                   oauth_server: OAuthServer, mechanism: str) -> None:
    client = f"pop3-{mechanism}"
    oauth_server.add_client(client, "cs-Canary-Client-Secret-41b7")
    refresh = oauth_server.grant(client, "alice")
    cfg = oauth_config(tmp_path, oauth_bed, oauth_server.url + "/token", client,
                       refresh_token=refresh, mechanism=mechanism, protocols=("imap",))
    cfg.write_text(cfg.read_text()
                   + f"pop3 = {endpoint(oauth_bed.host, oauth_bed.pop3s_port, 'tls')}\n")
    code, rows, output = await check_json(cfg, "--transcript")
    assert code == 0, output
    # check prints results as they finish
    rows = sorted(rows, key=lambda r: ("imap", "smtp", "pop3").index(r["probe"]))
    assert [(r["probe"], r["ok"]) for r in rows] == [("imap", True), ("pop3", True)], output
    assert len(oauth_server.token_requests(client)) == 1  # one token for both probes
    [pop3] = [r for r in rows if r["probe"] == "pop3"]
    transcript = "\n".join(pop3["transcript"])
    # The test server's tokens are short: the response rides on the AUTH line (RFC 5034);
    # the two-line form for long tokens is tests/protocols/test_pop3_faults.py's.
    assert f"C: AUTH {mechanism.upper()} ***" in transcript
    assert refresh not in output
    log = (oauth_bed.log_dir / "dovecot.log").read_text()
    assert f"method={mechanism.upper()}" in log
