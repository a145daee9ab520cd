"""At 10,000 accounts the daemon's memory is mostly its config and one result per target
(issue 15: RSS < 250 MiB). Equal values are shared, not copied per account or per result;
each test fails on the code that kept a copy each."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailcanary.config import load_config
from mailcanary.probes.runner import run_probe
from mailcanary.protocols.runtime import Runtime
from mailcanary.result import ProbeResult
from mailcanary.testbed import MailTestBed
from tests.helpers.support import account, endpoint, password_file, write_config


def _fleet(tmp: Path, n: int, host: str = "mail.example.test", port: int = 993,
           ca_file: Path | None = None, pw: Path | None = None) -> Path:
    pw = pw or password_file(tmp)
    return write_config(tmp, *(
        account(f"a{i}", imap=endpoint(host, port, "tls"), smtp=endpoint(host, 587, "starttls"),
                password_file=pw, ca_file=ca_file or pw)
        for i in range(n)
    ))


def test_accounts_share_equal_values_and_fields_sets(tmp_path: Path) -> None:
    config = load_config(_fleet(tmp_path, 3))
    a, b, c = config.accounts
    assert a.imap is not None and b.imap is not None and c.smtp is not None
    assert a.imap.host is b.imap.host is c.smtp.host  # one string, not one per account
    assert a.imap.port is b.imap.port  # an int above 256: not a cached small int
    assert a.password_file is b.password_file is c.password_file
    assert a.ca_file is b.ca_file
    assert a.model_fields_set is b.model_fields_set  # one set per shape of account
    assert a.imap.model_fields_set is b.imap.model_fields_set
    assert a.name == "a0" and b.name == "a1" and a.imap.host == "mail.example.test"


def test_shared_values_stay_per_model(tmp_path: Path) -> None:
    """Sharing must not let one model's change reach another: they are frozen, and a copy
    gets its own fields set."""
    config = load_config(_fleet(tmp_path, 2))
    a, b = config.accounts
    with pytest.raises(ValueError, match="frozen"):
        a.name = "x"
    copied = a.model_copy(update={"interval": 9.0})
    assert "interval" in copied.model_fields_set
    assert "interval" not in a.model_fields_set and "interval" not in b.model_fields_set
    assert copied.model_fields_set is not a.model_fields_set


def test_loads_share_nothing(tmp_path: Path) -> None:
    """Only values of one load are shared (a reload's config is built afresh)."""
    path = _fleet(tmp_path, 1)
    first, second = load_config(path), load_config(path)
    assert first.accounts[0].password_file is not second.accounts[0].password_file
    assert first.accounts[0].password_file == second.accounts[0].password_file


async def _alice_and_bob(bed: MailTestBed, tmp: Path, kind: str, ep: str,
                         password: str | None = None) -> tuple[ProbeResult, ProbeResult]:
    """One `kind` probe each of two accounts on one server, in one runtime (the daemon's)."""
    names = ["alice", "bob"]
    pw = {n: password_file(tmp, password or bed.user(n).password, name=n) for n in names}
    cfg = write_config(tmp, *(
        account(n, username=bed.user(n).name, password_file=pw[n], ca_file=bed.ca_pem,
                **{kind: ep})
        for n in names
    ))
    config = load_config(cfg)
    runtime = Runtime.for_config(config)
    try:
        one, two = [await run_probe(kind, n, config, transcript=False, runtime=runtime)
                    for n in names]
    finally:
        await runtime.close()
    return one, two


@pytest.mark.testbed
async def test_results_share_certificate_and_hint(testbed: MailTestBed, tmp_path: Path) -> None:
    """Two healthy results from one server share their TLS facts, their (empty) hint and
    their server text: 20,000 are kept at 10,000 accounts."""
    one, two = await _alice_and_bob(testbed, tmp_path, "imap",
                                    endpoint(testbed.host, testbed.imaps_port, "tls"))
    assert one.ok and two.ok, (one.detail, two.detail)
    assert one.tls is not None and one.tls is two.tls
    assert one.tls.issuer and one.tls.not_after
    assert one.hint == "" and one.hint is two.hint
    assert one.extra["server"] is two.extra["server"]
    with pytest.raises(AttributeError):
        one.tls.version = "TLSv1"  # type: ignore[misc]  # frozen: safe to share


@pytest.mark.testbed
async def test_failures_of_one_server_share_their_hint(testbed: MailTestBed,
                                                       tmp_path: Path) -> None:
    """An auth outage keeps one failing result per target: equal hints are one object."""
    one, two = await _alice_and_bob(testbed, tmp_path, "smtp",
                                    endpoint(testbed.host, testbed.submission_port, "starttls"),
                                    password="not-the-password")
    assert (one.reason, two.reason) == ("invalid_credentials", "invalid_credentials")
    assert one.hint and one.hint is two.hint
    assert "not-the-password" not in one.hint + one.detail
