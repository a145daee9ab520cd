"""`[[domains]]` and `[daemon] nameservers`: the contract's keys, defaults, and every mistake
named by its key path."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailcanary.config import ConfigError, load_config
from mailcanary.config.domains import CHECKS, DEFAULT_DNSBL

BASE = """
[[accounts]]
name = "alice"
address = "alice@example.test"
password_env = "ALICE_PW"
smtp = { host = "smtp.example.test" }
"""


def load(tmp_path: Path, text: str) -> object:
    path = tmp_path / "c.toml"
    path.write_text(text)
    return load_config(path)


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    return info.value.problems


def test_defaults(tmp_path: Path) -> None:
    config = load(tmp_path, BASE + '[[domains]]\nname = "ex"\ndomain = "Example.COM."\n')
    entry = config.domain("ex")  # type: ignore[attr-defined]
    assert entry.domain == "example.com"
    assert entry.interval == 3600.0
    assert tuple(entry.checks) == CHECKS
    assert tuple(entry.dnsbl) == DEFAULT_DNSBL
    assert entry.sending_ips == [] and entry.dkim_selectors == []
    assert config.daemon.nameservers is None  # type: ignore[attr-defined]


def test_every_key(tmp_path: Path) -> None:
    config = load(tmp_path, BASE + """
[daemon]
nameservers = ["127.0.0.1:5353", "::1", "[::1]:53"]

[[domains]]
name = "ex"
domain = "example.com"
sending_ips = ["192.0.2.10", "2001:DB8::1"]
dkim_selectors = ["s1", "google"]
dnsbl = ["zen.spamhaus.org"]
ca_file = "/etc/mailcanary/ca.pem"
interval = "30m"
timeout = "20s"
checks = ["dnsbl", "spf"]
""")
    entry = config.domain("ex")  # type: ignore[attr-defined]
    assert entry.sending_ips == ["192.0.2.10", "2001:db8::1"]
    assert entry.checks == ["spf", "dnsbl"]  # the contract's order, whatever the file's
    assert (entry.interval, entry.timeout) == (1800.0, 20.0)


@pytest.mark.parametrize(("entry", "path", "words"), [
    ('domain = "example.com"\nsending_ips = ["192.0.2.300"]', "domains[0].sending_ips",
     "not an IPv4 or IPv6 address"),
    ('domain = "example"', "domains[0].domain", "not a domain"),
    ('domain = "exa mple.com"', "domains[0].domain", "not a DNS name"),
    ('domain = "example.com"\nchecks = ["mx", "spam"]', "domains[0].checks[1]",
     "'mx', 'mx_tls'"),
    ('domain = "example.com"\nchecks = []', "domains[0].checks", "at least one check"),
    ('domain = "example.com"\ndkim_selectors = ["s 1"]', "domains[0].dkim_selectors",
     "not a DKIM selector"),
    ('domain = "example.com"\ndnsbl = ["zen..example"]', "domains[0].dnsbl", "not a DNS name"),
    ('domain = "example.com"\nport = 25', "domains[0].port", "unknown key"),
])
def test_mistakes_name_the_key(tmp_path: Path, entry: str, path: str, words: str) -> None:
    found = problems(tmp_path, BASE + f'[[domains]]\nname = "ex"\n{entry}\n')
    assert any(p.startswith(path) and words in p for p in found), found


@pytest.mark.parametrize("value", ['["dns.example.com"]', '["127.0.0.1:99999"]', "[]",
                                   '["127.0.0.1:x"]'])
def test_bad_nameservers(tmp_path: Path, value: str) -> None:
    found = problems(tmp_path, f"[daemon]\nnameservers = {value}\n" + BASE)
    assert any(p.startswith("daemon.nameservers") for p in found), found


def test_domain_names_are_unique_among_all_targets(tmp_path: Path) -> None:
    found = problems(tmp_path, BASE + '[[domains]]\nname = "alice"\ndomain = "example.com"\n'
                     '[[domains]]\nname = "x"\ndomain = "example.com"\n'
                     '[[domains]]\nname = "x"\ndomain = "example.org"\n')
    assert any(p.startswith("domains[0].name") and "account 'alice'" in p for p in found)
    assert any(p.startswith("domains[2].name") and "another domain" in p for p in found)
