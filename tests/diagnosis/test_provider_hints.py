"""Provider presets give login failures the provider's own hint, and only login failures."""

from __future__ import annotations

import pytest

from mailcanary.config.presets import PROVIDERS
from mailcanary.diagnosis import Where, failure
from mailcanary.diagnosis.providers import PROVIDER_HINTS, provider_hint

CASES = [
    ("icloud", "imap", "invalid_credentials", "app-specific password"),
    ("docomo", "imap", "invalid_credentials", "IMAP-only password"),
    ("docomo", "smtp", "account_locked", "My docomo"),
    ("yahoo_jp", "imap", "protocol_disabled", "IMAP/POP/SMTP access is switched on"),
    ("yahoo_jp", "pop3", "invalid_credentials", "Yahoo! JAPAN ID"),
    ("outlook", "imap", "basic_auth_disabled", "16 September 2024"),
    ("microsoft365", "smtp", "basic_auth_disabled", "oauth2"),
    ("gmail", "pop3", "protocol_disabled", "Forwarding and POP/IMAP"),
    ("gmail", "imap", "app_password_required", "app password"),
    ("yahoo", "smtp", "account_locked", "app password"),
    ("softbank", "imap", "invalid_credentials", "My SoftBank"),
]


@pytest.mark.parametrize(("provider", "proto", "reason", "words"), CASES,
                         ids=[f"{p}-{r}" for p, _, r, _ in CASES])
def test_provider_hint(provider: str, proto: str, reason: str, words: str) -> None:
    fail = failure(reason, "detail", Where("h", 1, proto, provider))
    assert words in fail.hint
    assert fail.detail == "detail"  # never the provider's invented words in detail


@pytest.mark.parametrize("reason", ["connection_refused", "cert_expired", "timeout", "ok",
                                    "mailbox_full"])
def test_no_provider_hint_outside_login(reason: str) -> None:
    assert provider_hint("docomo", reason, "imap") is None
    assert failure(reason, "", Where("h", 1, "imap", "docomo")).hint == failure(
        reason, "", Where("h", 1, "imap")).hint


def test_every_preset_has_a_hint() -> None:
    assert set(PROVIDER_HINTS) == set(PROVIDERS)
