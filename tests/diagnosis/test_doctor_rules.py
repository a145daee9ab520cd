"""The settings doctor's decisions as pure tables: which failures qualify, the candidates
in the contract's order, the ranking (implicit TLS first) and the words of the hint."""

from __future__ import annotations

import pytest

from mailcanary.diagnosis.doctor import Candidate, best, candidates, qualifies, suggestion_hint

QUALIFIES = [
    ("connection_refused", "connect", True),
    ("timeout", "connect", True),
    ("timeout", "tls", True),
    ("timeout", "greeting", True),
    ("handshake_failed", "tls", True),
    ("starttls_unavailable", "starttls", True),
    ("tls_required", "auth", True),
    ("protocol_error", "greeting", True),
    # Nothing another port or security would fix:
    ("invalid_credentials", "auth", False),
    ("cert_expired", "tls", False),
    ("cert_untrusted", "tls", False),
    ("hostname_mismatch", "tls", False),
    ("timeout", "auth", False),
    ("timeout", "select", False),
    ("nxdomain", "dns", False),
    ("connection_reset", "greeting", False),
    ("protocol_error", "auth", False),
    ("app_password_required", "auth", False),
    ("ok", None, False),
]


@pytest.mark.parametrize(("reason", "phase", "expected"), QUALIFIES,
                         ids=[f"{r}-{p}" for r, p, _ in QUALIFIES])
def test_qualifies(reason: str, phase: str | None, expected: bool) -> None:
    assert qualifies(reason, phase) is expected


C = Candidate
CANDIDATES = [
    ("imap", 993, "starttls", [C(993, "tls"), C(143, "starttls")]),
    ("imap", 143, "tls", [C(143, "starttls"), C(993, "tls")]),
    ("imap", 1143, "tls", [C(1143, "starttls"), C(993, "tls"), C(143, "starttls")]),
    ("imap", 143, "none", [C(143, "tls"), C(143, "starttls"), C(993, "tls")]),
    ("pop3", 110, "tls", [C(110, "starttls"), C(995, "tls")]),
    ("pop3", 995, "starttls", [C(995, "tls"), C(110, "starttls")]),
    ("smtp", 587, "tls", [C(587, "starttls"), C(465, "tls"), C(25, "starttls")]),
    ("smtp", 465, "starttls", [C(465, "tls"), C(587, "starttls"), C(25, "starttls")]),
]


@pytest.mark.parametrize(("proto", "port", "security", "expected"), CANDIDATES,
                         ids=[f"{p}-{n}-{s}" for p, n, s, _ in CANDIDATES])
def test_candidates(proto: str, port: int, security: str, expected: list[Candidate]) -> None:
    assert candidates(proto, port, security) == expected


def test_implicit_tls_preferred_over_starttls() -> None:
    order = candidates("imap", 143, "tls")
    assert best([C(143, "starttls"), C(993, "tls")], order) == C(993, "tls")
    assert best([C(143, "starttls")], order) == C(143, "starttls")
    assert best([], order) is None
    smtp = candidates("smtp", 2525, "tls")
    assert best([C(25, "starttls"), C(587, "starttls")], smtp) == C(587, "starttls")


def test_hint_is_pasteable() -> None:
    hint = suggestion_hint("pop3", "pop.example.test", C(995, "tls"))
    assert 'pop3 = { host = "pop.example.test", port = 995, security = "tls" }' in hint
    assert "implicit TLS on port 995" in hint
    assert "STARTTLS on port 587" in suggestion_hint("smtp", "h", C(587, "starttls"))
