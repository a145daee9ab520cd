"""Why a message landed in spam, from the receiving side's headers: a pure table.

The exact words of Gmail's, Microsoft's, SpamAssassin's and Rspamd's filters cannot come
from the test bed, so each header shape is checked here; the round trip and inbound tests
run the bed's own Junk filing end to end."""

from __future__ import annotations

from email.parser import HeaderParser

import pytest

from mailcanary.diagnosis.spam import as_json, explain_spam, from_json


def headers(text: str) -> object:
    return HeaderParser().parsestr(text.strip() + "\n\n")


CASES = [
    (  # DKIM failure: the selector's record is the thing to check
        "Authentication-Results: mx.google.com; dkim=fail header.i=@app.example header.s=s1 "
        "header.b=abc; spf=pass (google.com: domain of bounce@esp.example) "
        "smtp.mailfrom=bounce@esp.example; dmarc=fail (p=NONE) header.from=app.example",
        ["dkim=fail (header.i=@app.example, header.s=s1, header.b=abc)",
         "spf=pass (smtp.mailfrom=bounce@esp.example)",
         "dmarc=fail (header.from=app.example)"],
        ["DKIM fail for app.example", "s1._domainkey.app.example", "DMARC fail for app.example"],
    ),
    (  # no signature at all
        "Authentication-Results: mx.example; dkim=none; spf=softfail "
        "smtp.mailfrom=no-reply@app.example; dmarc=none",
        ["dkim=none", "spf=softfail (smtp.mailfrom=no-reply@app.example)", "dmarc=none"],
        ["no DKIM signature", "SPF softfail for app.example", "DMARC none for the From domain"],
    ),
    (  # ARC broken by a forwarder
        "Authentication-Results: mx.example; arc=fail (signature failed); dkim=pass "
        "header.d=app.example",
        ["arc=fail", "dkim=pass (header.d=app.example)"],
        ["ARC fail"],
    ),
    (  # SpamAssassin, folded header
        "X-Spam-Flag: YES\nX-Spam-Status: Yes, score=6.8 required=5.0 tests=BAYES_80,\n"
        "\tHTML_IMAGE_ONLY_16,RDNS_NONE autolearn=no autolearn_force=no version=3.4.6",
        ["SpamAssassin Yes, score 6.8 of 5.0, rules BAYES_80, HTML_IMAGE_ONLY_16, RDNS_NONE"],
        ["SpamAssassin's rules BAYES_80, HTML_IMAGE_ONLY_16, RDNS_NONE"],
    ),
    (  # Rspamd: the heaviest positive symbols first
        "X-Rspamd-Score: 12.40\nX-Spamd-Result: default: False [12.40 / 15.00];\n"
        "\tR_SPF_FAIL(1.00)[-all]; ABUSE_SURBL(5.50)[app.example:url]; MIME_GOOD(-0.10)[text];"
        " DMARC_POLICY_REJECT(2.00)[app.example : SPF not aligned,reject]",
        ["Rspamd score 12.40 of 15.00, symbols ABUSE_SURBL(5.5), DMARC_POLICY_REJECT(2), "
         "R_SPF_FAIL(1)"],
        ["Rspamd's symbols ABUSE_SURBL(5.5)"],
    ),
    (  # Microsoft: high SCL
        "X-Forefront-Antispam-Report: CIP:203.0.113.5;CTRY:US;LANG:en;SCL:6;SRV:;IPV:NLI;"
        "SFV:SPM;H:mail.app.example;PTR:mail.app.example;CAT:SPM;SFS:(13230040);DIR:INB;",
        ["Microsoft SCL:6 SFV:SPM CAT:SPM"],
        ["spam confidence level 6"],
    ),
    (  # Microsoft: the recipient's block list, and the mailbox's junk rule
        "X-Forefront-Antispam-Report: CIP:203.0.113.5;SCL:6;SFV:BLK;CAT:SPM;\n"
        "X-Microsoft-Antispam-Mailbox-Delivery: ucf:1;jmr:0;auth:0;dest:J;RF:JunkEmail;",
        ["Microsoft SCL:6 SFV:BLK CAT:SPM", "Microsoft mailbox delivery dest:J rf:JunkEmail "
         "ucf:1 jmr:0"],
        ["Blocked Senders list", "own Junk rules"],
    ),
    (  # Microsoft: phishing category
        "X-Forefront-Antispam-Report: SCL:9;SFV:SPM;CAT:PHSH;",
        ["Microsoft SCL:9 SFV:SPM CAT:PHSH"],
        ["phishing (CAT:PHSH)"],
    ),
    (  # nothing said
        "Subject: hello",
        [],
        ["no specific reason"],
    ),
]


@pytest.mark.parametrize(("text", "signals", "hint_parts"), CASES)
def test_explain_spam(text: str, signals: list[str], hint_parts: list[str]) -> None:
    got = explain_spam(headers(text))  # type: ignore[arg-type]
    assert got.signals == signals
    for part in hint_parts:
        assert part in got.hint, got.hint
    assert from_json(as_json(got)) == got
    assert got.detail().startswith("the receiving side")


def test_only_the_topmost_authentication_results_counts() -> None:
    got = explain_spam(headers(  # type: ignore[arg-type]
        "Authentication-Results: mx.receiver; dkim=pass header.d=app.example\n"
        "Authentication-Results: relay.sender; dkim=fail header.d=app.example"
    ))
    assert got.signals == ["dkim=pass (header.d=app.example)"]
