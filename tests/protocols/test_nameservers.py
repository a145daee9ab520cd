"""`[daemon] nameservers`: a login probe resolves its server's name at those servers.

The bed's certificate names mail.example.test, which no system resolver knows: only the
NSD started here (zone example.test) says it is 127.0.0.1.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mailcanary.config import Config, config_from_dict
from mailcanary.probes.runner import run_probe
from mailcanary.testbed import MailTestBed
from mailcanary.testbed.nsd import DnsServer
from tests.helpers.support import PASSWORD, password_file

pytestmark = pytest.mark.testbed


@pytest.fixture(scope="module")
def example_test_dns(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DnsServer]:
    server = DnsServer(tmp_path_factory.mktemp("nsd"))
    server.add_zone("example.test", ["mail A 127.0.0.1"])
    with server:
        yield server


def login_config(bed: MailTestBed, tmp_path: Path, host: str,
                 nameservers: list[str] | None) -> Config:
    user = bed.user("alice")
    pw = password_file(tmp_path, user.password, name="alice")
    daemon: dict[str, object] = {"state_dir": str(tmp_path)}
    if nameservers is not None:
        daemon["nameservers"] = nameservers
    return config_from_dict({"daemon": daemon, "accounts": [{
        "name": "alice", "address": "alice@example.test", "username": user.name,
        "password_file": str(pw), "ca_file": str(bed.ca_pem), "timeout": "5s",
        "imap": {"host": host, "port": bed.imaps_port, "security": "tls"}}]})


async def test_login_resolves_at_the_configured_nameservers(
    testbed: MailTestBed, tmp_path: Path, example_test_dns: DnsServer
) -> None:
    config = login_config(testbed, tmp_path, "mail.example.test", [example_test_dns.nameserver])
    result = await run_probe("imap", "alice", config)
    assert result.ok, result.as_json()
    assert PASSWORD not in str(result.as_json())


async def test_without_them_the_system_resolver_does_not_know_the_name(
    testbed: MailTestBed, tmp_path: Path
) -> None:
    config = login_config(testbed, tmp_path, "mail.example.test", None)
    result = await run_probe("imap", "alice", config)
    assert (result.cls, result.phase) == ("dns", "dns"), result.as_json()


async def test_a_name_they_do_not_have_is_nxdomain(
    testbed: MailTestBed, tmp_path: Path, example_test_dns: DnsServer
) -> None:
    config = login_config(testbed, tmp_path, "nope.example.test",
                          [example_test_dns.nameserver])
    result = await run_probe("imap", "alice", config)
    assert (result.reason, result.phase) == ("nxdomain", "dns"), result.as_json()
    assert "nope.example.test" in result.detail
