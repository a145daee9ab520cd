"""Round trips through a real spam filter and a real DKIM signer (testbed/filters.py):
Rspamd decides, Sieve files its spam into Junk, OpenDKIM signs, and mailcanary reads what
they wrote (X-Spamd-Result, Authentication-Results). Only these tests start them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from mailcanary.config import Config, load_config
from mailcanary.probes import PROBES
from mailcanary.probes.mailbox.headers import parse_headers
from mailcanary.probes.roundtrip.probe import round_trip
from mailcanary.probes.runner import run_probe
from mailcanary.result import ProbeResult
from mailcanary.testbed import ensure_installed
from mailcanary.testbed.deliverability import DeliverabilityBed
from mailcanary.testbed.filters import BROKEN_DOMAIN, GTUBE_REJECT, SPAM_PHRASE
from tests.helpers.support import account, endpoint, password_file, write_config


@pytest.fixture(scope="module")
def bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DeliverabilityBed]:
    ensure_installed()
    bed = DeliverabilityBed(tmp_path_factory.mktemp("filtered"), filters=True)
    bed.start()
    try:
        yield bed
    finally:
        bed.stop()


def make_config(bed: DeliverabilityBed, tmp: Path, sender_address: str | None = None) -> Path:
    accounts = []
    for user in ("alice", "bob"):
        pw = password_file(tmp, bed.user(user).password, name=f"pw-{user}")
        accounts.append(account(
            user, password_file=pw, ca_file=bed.ca_pem, timeout="10s",
            address=sender_address if user == "alice" else None,
            username=user if user == "alice" and sender_address else None,
            imap=endpoint(bed.host, bed.imaps_port, "tls"),
            smtp=endpoint(bed.host, bed.submission_port, "starttls")))
    route = '\n[[routes]]\nname = "a2b"\nfrom = "alice"\nto = "bob"\ndeadline = "20s"\n' \
            'slo = "10s"\n'
    return write_config(tmp, *accounts, extra=route)


async def run_route(config: Config, **hooks: object) -> ProbeResult:
    async def run(ctx: object, cfg: Config, target: str) -> None:
        await round_trip(ctx, cfg, target, **hooks)  # type: ignore[arg-type]  # test hooks

    registry = {"roundtrip": replace(PROBES["roundtrip"], run=run)}
    return await run_probe("roundtrip", "a2b", config, registry=registry)


async def test_a_clean_canary_is_signed_and_passes(bed: DeliverabilityBed, tmp_path: Path) -> None:
    seen: dict[str, list[str]] = {}

    async def grab(token: str, accepted: float) -> None:
        out = bed.doveadm("fetch", "-u", "bob", "hdr", "mailbox", "INBOX", "HEADER",
                          "X-Mailcanary-Token", token).stdout
        headers = parse_headers(out.partition("hdr:")[2].lstrip("\n").encode())
        for name in ("DKIM-Signature", "Authentication-Results", "X-Spamd-Result"):
            seen[name] = [str(v) for v in headers.get_all(name) or []]

    result = await run_route(load_config(make_config(bed, tmp_path)), after_seen=grab)
    row = result.as_json()
    assert result.ok, row
    assert row["placement"] == "inbox"
    assert row["auth_results"] == {"spf": "pass", "dkim": "pass", "dmarc": "pass"}, row
    assert any("d=example.test" in v and "s=mc" in v for v in seen["DKIM-Signature"]), seen
    assert seen["Authentication-Results"] and seen["X-Spamd-Result"], seen
    assert "R_DKIM_ALLOW" in seen["X-Spamd-Result"][0]


async def test_a_broken_signature_is_seen_as_dkim_fail(
    bed: DeliverabilityBed, tmp_path: Path
) -> None:
    config = load_config(make_config(bed, tmp_path, sender_address=f"alice@{BROKEN_DOMAIN}"))
    result = await run_probe("roundtrip", "a2b", config)
    row = result.as_json()
    assert row["auth_results"]["dkim"] == "fail", row


async def test_spam_lands_in_junk_and_says_which_rules(
    bed: DeliverabilityBed, tmp_path: Path
) -> None:
    config = load_config(make_config(bed, tmp_path))
    result = await run_route(config, extra_body=SPAM_PHRASE + "\n")
    row = result.as_json()
    assert (row["class"], row["reason"], row["placement"]) == ("spam", "spam_folder", "spam")
    assert row["folder"] == "Junk"
    assert "MAILCANARY_TEST_SPAM" in row["detail"], row["detail"]
    assert any("MAILCANARY_TEST_SPAM" in sig for sig in row["spam"]["signals"]), row["spam"]
    assert row["auth_results"]["dkim"] == "pass"


async def test_refused_as_spam_comes_back_as_a_bounce(
    bed: DeliverabilityBed, tmp_path: Path
) -> None:
    """Rspamd rejects GTUBE at DATA on the second hop: Postfix's real bounce reaches the
    sender and ends the round trip with Rspamd's words."""
    config = load_config(make_config(bed, tmp_path))
    result = await run_route(config, extra_body=GTUBE_REJECT + "\n")
    row = result.as_json()
    assert (row["class"], row["reason"], row["phase"]) == ("rejected", "policy_rejected",
                                                           "deliver"), row
    assert row["detail"] == "554 5.7.1 Gtube pattern"  # Rspamd's words, through Postfix
    assert row["bounce"]["status"] == "5.7.1" and row["placement"] == "missing"
    assert result.duration_seconds < 10
