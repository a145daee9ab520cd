"""The policy formats' rules (RFC 7489, 8460, 8461), record by record."""

from __future__ import annotations

import pytest

from mailcanary.probes.domain.policy import dkim_key_problem
from mailcanary.probes.domain.records import (
    dmarc_problem,
    mx_matches,
    parse_sts_policy,
    sts_record_problem,
    tls_rpt_problem,
    uncovered_mx,
)
from mailcanary.protocols.dns import reverse_query_name


@pytest.mark.parametrize(("record", "problem"), [
    ("v=DMARC1; p=none", None),
    ("v=DMARC1;p=reject;sp=quarantine;pct=50;adkim=s;aspf=r;fo=1:d;"
     "rua=mailto:a@x.test,mailto:b@x.test", None),
    ("v=DMARC1; p=none; unknown=kept", None),  # unknown tags are ignored (RFC 7489 6.3)
    ("p=none; v=DMARC1", "must start with v=DMARC1"),
    ("v=DMARC1", "p= tag is missing"),
    ("v=DMARC1; p=block", "p=block"),
    ("v=DMARC1; p=none; sp=all", "sp=all"),
    ("v=DMARC1; p=none; pct=150", "pct=150"),
    ("v=DMARC1; p=none; adkim=x", "adkim=x"),
    ("v=DMARC1; p=none; fo=2", "fo=2"),
    ("v=DMARC1; p=none; rua=dmarc@x.test", "rua"),
    ("v=DMARC1; p=none; p=reject", "twice"),
    ("v=DMARC1; p none", "not a tag=value pair"),
])
def test_dmarc(record: str, problem: str | None) -> None:
    found = dmarc_problem(record)
    assert (found is None) if problem is None else (found is not None and problem in found)


@pytest.mark.parametrize(("record", "problem"), [
    ("v=TLSRPTv1; rua=mailto:r@x.test", None),
    ("v=TLSRPTv1; rua=https://reports.x.test/tlsrpt,mailto:r@x.test", None),
    ("v=TLSRPTv1", "rua= tag is missing"),
    ("v=TLSRPTv1; rua=ftp://x.test", "not a mailto: or https: URI"),
    ("rua=mailto:r@x.test", "must start with v=TLSRPTv1"),
])
def test_tls_rpt(record: str, problem: str | None) -> None:
    found = tls_rpt_problem(record)
    assert (found is None) if problem is None else (found is not None and problem in found)


@pytest.mark.parametrize(("record", "problem"), [
    ("v=STSv1; id=20261207T1", None),
    ("v=STSv1;", "id= tag is missing"),
    ("v=STSv1; id=has-dash", "letters and digits"),
    ("v=STSv1; id=" + "1" * 33, "letters and digits"),
])
def test_sts_record(record: str, problem: str | None) -> None:
    found = sts_record_problem(record)
    assert (found is None) if problem is None else (found is not None and problem in found)


@pytest.mark.parametrize(("text", "problem"), [
    ("version: STSv1\nmode: enforce\nmx: mx1.x.test\nmx: *.x.test\nmax_age: 604800\n", None),
    ("version: STSv1\r\nmode: none\r\nmax_age: 86400\r\n", None),
    ("version: STSv2\nmode: enforce\nmx: a.test\nmax_age: 1\n", "not STSv1"),
    ("version: STSv1\nmode: strict\nmx: a.test\nmax_age: 1\n", "mode: strict"),
    ("version: STSv1\nmode: enforce\nmax_age: 1\n", "at least one mx"),
    ("version: STSv1\nmode: enforce\nmx: a.test\n", "no max_age"),
    ("version: STSv1\nmode: enforce\nmx: a.test\nmax_age: 31557601\n", "max_age"),
    ("<html>not a policy</html>", "not a key: value line"),
])
def test_sts_policy(text: str, problem: str | None) -> None:
    _, found = parse_sts_policy(text)
    assert (found is None) if problem is None else (found is not None and problem in found)


def test_wildcard_mx_patterns_match_one_label_only() -> None:
    assert mx_matches("*.x.test", "mx1.x.test")
    assert mx_matches("MX1.X.TEST.", "mx1.x.test")
    assert not mx_matches("*.x.test", "a.b.x.test")
    assert not mx_matches("*.x.test", "x.test")
    policy, _ = parse_sts_policy("version: STSv1\nmode: enforce\nmx: *.x.test\nmax_age: 1\n")
    assert uncovered_mx(policy, ["mx1.x.test", "mx.other.test"]) == ["mx.other.test"]


def test_dkim_keys() -> None:
    rsa = ("MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDwIRP/UC3SBsEmGqZ9ZJW3/DkMoGeLnQg1fWn7/zYt"
           "IxN2SnFCjxOCKG9v3b4jYfcTNh5ijSsq631uBItLa7od+v/RtdC2UzJ1lWT947qR+Rcac2gbto/NMqJ0"
           "fzfVjH4OuKhitdY9tf6mcwGjaNBcWToIMmPSPDdQPNUYckcQ2QIDAQAB")
    assert dkim_key_problem(f"v=DKIM1; k=rsa; p={rsa}") is None
    assert dkim_key_problem(f"v=DKIM1; p={rsa}") is None  # k= defaults to rsa
    assert "revoked" in (dkim_key_problem("v=DKIM1; k=rsa; p=") or "")
    assert dkim_key_problem("v=DKIM1; k=rsa; p=QUJD") is not None
    assert dkim_key_problem("v=DKIM1; k=ed25519; p=" + "A" * 43 + "=") is None
    assert dkim_key_problem("v=DKIM1; k=ed25519; p=QUJD") is not None


def test_dnsbl_query_names() -> None:
    """RFC 5782: reversed octets for IPv4, reversed nibbles for IPv6, under the zone."""
    assert reverse_query_name("192.0.2.10", "zen.example") == "10.2.0.192.zen.example"
    assert reverse_query_name("2001:db8::1", "bl.example") == (
        "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl.example")
