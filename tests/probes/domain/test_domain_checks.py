"""Each domain check against the real NSD and real MX/HTTPS servers: good and broken."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from mailcanary.config import Config, config_from_dict
from mailcanary.probes.runner import run_probe
from mailcanary.result import ProbeResult
from tests.helpers.domains import GOOD_IP, LISTED_IP, LISTING_REASON, World


def domain_config(world: World, tmp_path: Path, domain: str, **keys: Any) -> Config:
    entry = {"name": "d", "domain": f"{domain}.dom.test", "ca_file": str(world.ca_pem),
             "dnsbl": ["bl.dom.test"], **keys}
    return config_from_dict({
        "daemon": {"nameservers": [world.nameserver], "state_dir": str(tmp_path)},
        "defaults": {"timeout": "10s"}, "domains": [entry]})


async def run(world: World, tmp_path: Path, domain: str, **keys: Any) -> ProbeResult:
    return await run_probe("domain", "d", domain_config(world, tmp_path, domain, **keys))


async def test_a_good_domain_passes_every_check(world: World, tmp_path: Path) -> None:
    result = await run(world, tmp_path, "good", sending_ips=[GOOD_IP, "198.51.100.7"],
                       dkim_selectors=["s1"])
    out = result.as_json()
    assert result.ok, out
    assert list(out["checks"]) == ["mx", "mx_tls", "spf", "dmarc", "dkim", "mta_sts",
                                   "tls_rpt", "dnsbl"]
    assert all(c["ok"] for c in out["checks"].values()), out["checks"]
    assert "mx1.good.dom.test" in out["checks"]["mx_tls"]["detail"]
    assert "mode enforce" in out["checks"]["mta_sts"]["detail"]
    assert result.tls is not None and result.tls.not_after_timestamp == world.good_expiry
    assert {"dns", "connect", "greeting", "starttls", "tls"} <= set(result.phases)


@pytest.mark.parametrize(("domain", "keys", "reason", "words"), [
    ("nomx", {}, "mx_missing", "no MX record and no address"),
    ("nullmx", {}, "mx_missing", "null MX"),
    ("dangling", {}, "nxdomain", "mx.dangling.dom.test"),
    ("nowhere", {}, "nxdomain", "nowhere.dom.test does not exist"),
])
async def test_mx(world: World, tmp_path: Path, domain: str, keys: dict[str, Any],
                  reason: str, words: str) -> None:
    result = await run(world, tmp_path, domain, checks=["mx"], **keys)
    assert (result.ok, result.reason, result.phase) == (False, reason, "dns"), result.as_json()
    assert words in result.detail
    assert result.as_json()["checks"]["mx"]["ok"] is False


async def test_implicit_mx_is_the_domains_own_address(world: World, tmp_path: Path) -> None:
    result = await run(world, tmp_path, "implicit", checks=["mx", "mx_tls"])
    assert result.ok, result.as_json()
    assert "implicit MX" in result.as_json()["checks"]["mx"]["detail"]


@pytest.mark.parametrize(("domain", "cls", "reason", "phase"), [
    ("expired", "tls", "cert_expired", "tls"),
    ("nostarttls", "tls", "starttls_unavailable", "starttls"),
    ("closed", "network", "connection_refused", "connect"),
])
async def test_mx_tls(world: World, tmp_path: Path, domain: str, cls: str, reason: str,
                      phase: str) -> None:
    result = await run(world, tmp_path, domain, checks=["mx_tls"])
    assert (result.cls, result.reason, result.phase) == (cls, reason, phase), result.as_json()
    assert f"mx.{domain}.dom.test" in result.detail
    assert f"mx.{domain}.dom.test" in result.hint
    assert result.as_json()["checks"] == {"mx_tls": {"ok": False, "detail": result.detail
                                                     .removeprefix("mx_tls: ")}}


async def test_mx_tls_without_the_ca_is_untrusted(world: World, tmp_path: Path) -> None:
    """The certificate is verified: without ca_file the test CA is unknown."""
    result = await run(world, tmp_path, "good", checks=["mx_tls"], ca_file=None)
    assert (result.reason, result.phase) == ("cert_untrusted", "tls"), result.as_json()


@pytest.mark.parametrize(("domain", "ips", "reason", "words"), [
    ("nospf", [], "spf_missing", "no TXT record starting with v=spf1"),
    ("twospf", [], "spf_invalid", "2 SPF records"),
    ("badspf", [], "spf_invalid", "192.0.2.300"),
    ("many", [], "spf_invalid", "Too many DNS lookups"),
    ("softfail", [GOOD_IP], "spf_not_authorized", f"{GOOD_IP} gets softfail"),
    ("hardfail", [GOOD_IP], "spf_not_authorized", f"{GOOD_IP} gets fail"),
])
async def test_spf(world: World, tmp_path: Path, domain: str, ips: list[str], reason: str,
                   words: str) -> None:
    result = await run(world, tmp_path, domain, checks=["spf"], sending_ips=ips)
    assert (result.cls, result.reason) == ("dns_policy", reason), result.as_json()
    assert words in result.detail


async def test_spf_passes_an_ip_of_an_include(world: World, tmp_path: Path) -> None:
    result = await run(world, tmp_path, "good", checks=["spf"], sending_ips=["198.51.100.7"])
    assert result.ok, result.as_json()
    assert "198.51.100.7: pass" in result.as_json()["checks"]["spf"]["detail"]


@pytest.mark.parametrize(("domain", "reason", "words"), [
    ("nospf", "dmarc_missing", "no v=DMARC1 record at _dmarc.nospf.dom.test"),
    ("baddmarc", "dmarc_invalid", "p=maybe"),
    ("norp", "dmarc_invalid", "p= tag is missing"),
])
async def test_dmarc(world: World, tmp_path: Path, domain: str, reason: str,
                     words: str) -> None:
    result = await run(world, tmp_path, domain, checks=["dmarc"])
    assert (result.cls, result.reason) == ("dns_policy", reason), result.as_json()
    assert words in result.detail


async def test_dmarc_of_a_subdomain_is_the_parents(world: World, tmp_path: Path) -> None:
    result = await run(world, tmp_path, "sub.good", checks=["dmarc"])
    assert result.ok, result.as_json()
    assert "inherited from _dmarc.good.dom.test" in result.as_json()["checks"]["dmarc"]["detail"]


@pytest.mark.parametrize(("selector", "words"), [
    ("missing", "no DKIM key at missing._domainkey.good.dom.test"),
    ("revoked", "revoked"),
    ("garbage", "could not parse"),
])
async def test_dkim(world: World, tmp_path: Path, selector: str, words: str) -> None:
    result = await run(world, tmp_path, "good", checks=["dkim"],
                       dkim_selectors=["s1", selector])
    assert (result.cls, result.reason) == ("dns_policy", "dkim_key_missing"), result.as_json()
    assert words in result.detail


@pytest.mark.parametrize(("domain", "words"), [
    ("badsts", "matches MX mx1.good.dom.test"),
    ("nopolicy", "HTTP 404"),
    ("redirect", "redirects are not allowed"),
    ("bigpolicy", "larger than 1048576 bytes (after decompression)"),
    ("gzbomb", "larger than 1048576 bytes (after decompression)"),
])
async def test_mta_sts(world: World, tmp_path: Path, domain: str, words: str) -> None:
    result = await run(world, tmp_path, domain, checks=["mta_sts"])
    assert (result.cls, result.reason) == ("dns_policy", "mta_sts_invalid"), result.as_json()
    assert words in result.detail


async def test_mta_sts_is_optional(world: World, tmp_path: Path) -> None:
    result = await run(world, tmp_path, "nospf", checks=["mta_sts"])
    assert result.ok, result.as_json()


async def test_mta_sts_policy_certificate_is_verified(world: World, tmp_path: Path) -> None:
    result = await run(world, tmp_path, "good", checks=["mta_sts"], ca_file=None)
    assert result.reason == "mta_sts_invalid", result.as_json()
    assert "CERTIFICATE_VERIFY_FAILED" in result.detail


@pytest.mark.parametrize(("domain", "reason"), [("nospf", "tls_rpt_missing"),
                                                 ("badrpt", "tls_rpt_invalid")])
async def test_tls_rpt(world: World, tmp_path: Path, domain: str, reason: str) -> None:
    result = await run(world, tmp_path, domain, checks=["tls_rpt"])
    assert (result.cls, result.reason) == ("dns_policy", reason), result.as_json()


async def test_dnsbl_listing_names_ip_zone_and_reason(world: World, tmp_path: Path) -> None:
    result = await run(world, tmp_path, "good", checks=["dnsbl"],
                       sending_ips=[GOOD_IP, LISTED_IP])
    assert (result.cls, result.reason) == ("reputation", "blocklisted"), result.as_json()
    for words in (LISTED_IP, "bl.dom.test", LISTING_REASON):
        assert words in result.detail


async def test_dnsbl_refusal_is_never_a_listing(world: World, tmp_path: Path) -> None:
    result = await run(world, tmp_path, "good", checks=["dnsbl"], sending_ips=[GOOD_IP],
                       dnsbl=["refusing.dom.test"])
    assert (result.cls, result.reason) == ("dns", "dns_error"), result.as_json()
    assert "127.255.255.254" in result.detail and "not a listing" in result.detail
    assert "public resolvers" in result.hint


async def test_first_failing_check_in_contract_order_decides(world: World,
                                                              tmp_path: Path) -> None:
    result = await run(world, tmp_path, "nospf", checks=["dnsbl", "tls_rpt", "dmarc", "spf"],
                       sending_ips=[LISTED_IP])
    out = result.as_json()
    assert list(out["checks"]) == ["spf", "dmarc", "tls_rpt", "dnsbl"]
    assert not any(c["ok"] for c in out["checks"].values())
    assert result.reason == "spf_missing" and result.detail.startswith("spf: ")


async def test_a_silent_mx_times_out_naming_the_mx(world: World, tmp_path: Path) -> None:
    config = domain_config(world, tmp_path, "silent", checks=["mx", "mx_tls", "spf"])
    config = config.model_copy(update={"defaults": config.defaults.model_copy(
        update={"timeout": 3.0})})
    result = await run_probe("domain", "d", config)
    out = result.as_json()
    assert (result.cls, result.phase) == ("timeout", "greeting"), out
    assert "mx.silent.dom.test" in result.detail
    assert result.duration_seconds < 3.0
    assert out["checks"]["mx"]["ok"] is True  # the other checks kept their verdicts
    assert out["checks"]["spf"]["detail"]


async def test_a_dns_server_that_never_answers_is_dns_error(world: World,
                                                            tmp_path: Path) -> None:
    """Every query goes to [daemon] nameservers: a dead one there is a dns_error in time."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as dead:
        dead.bind(("127.0.0.1", 0))
        config = config_from_dict({
            "daemon": {"nameservers": [f"127.0.0.1:{dead.getsockname()[1]}"],
                       "state_dir": str(tmp_path)},
            "defaults": {"timeout": "3s"},
            "domains": [{"name": "d", "domain": "good.dom.test", "checks": ["mx", "dmarc"]}]})
        result = await run_probe("domain", "d", config)
    assert (result.cls, result.reason, result.phase) == ("dns", "dns_error", "dns"), \
        result.as_json()
    assert "no DNS answer for good.dom.test in time" in result.detail
    assert result.as_json()["checks"]["dmarc"]["ok"] is False
    assert result.duration_seconds < 3.0
