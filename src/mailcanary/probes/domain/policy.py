"""The `dmarc`, `dkim` and `tls_rpt` checks: one TXT record each, judged by its format."""

from __future__ import annotations

import base64
import binascii
import socket

import dkim
import dkim.util

from mailcanary.probes.domain.records import dmarc_problem, tls_rpt_problem
from mailcanary.probes.domain.run import DomainRun, Outcome, failed, passed

_MAX_WALK = 8  # DMARCbis tree walk: at most this many labels up


def _starting(records: list[str], tag: str) -> list[str]:
    """Records whose first tag is `tag` (e.g. "v=DMARC1"), spaces around '=' allowed."""
    want = tag.replace(" ", "").lower()
    return [r for r in records
            if r.split(";", 1)[0].replace(" ", "").lower() == want]


async def check_dmarc(run: DomainRun) -> Outcome:
    """_dmarc.<domain>, else the nearest parent's (the organizational domain's policy
    applies to subdomains: DMARCbis's tree walk, which needs no public-suffix list)."""
    labels = run.domain.split(".")
    try:
        for start in range(min(len(labels) - 1, _MAX_WALK)):
            name = "_dmarc." + ".".join(labels[start:])
            records = _starting(await run.dns.txt_or_none(name), "v=DMARC1")
            if records:
                break
        else:
            return failed("dmarc_missing", f"no v=DMARC1 record at _dmarc.{run.domain} "
                          "(nor at a parent domain)")
    except socket.gaierror as exc:
        return failed("dns_error", exc.strerror or str(exc))
    run.note(f"DMARC at {name}: {' | '.join(records)}")
    if len(records) > 1:
        return failed("dmarc_invalid", f"{len(records)} DMARC records at {name} (receivers "
                      f"then apply none): {' | '.join(records)}")
    problem = dmarc_problem(records[0])
    if problem:
        return failed("dmarc_invalid", f"{problem} in {records[0]!r} at {name}")
    inherited = f" (inherited from {name})" if start else ""
    return passed(records[0] + inherited)


def dkim_key_problem(record: str) -> str | None:
    """dkimpy parses RSA keys (its own ASN.1, both key formats); an ed25519 key (RFC 8463)
    is 32 bytes, checked here without pynacl."""
    try:
        tags = dkim.util.parse_tag_value(record.encode("ascii", "replace"))
    except dkim.util.InvalidTagValueList as exc:
        return f"not a tag=value list: {exc}"
    if tags.get(b"p", None) == b"":
        return "the key was revoked (empty p=)"
    if tags.get(b"k", b"rsa") == b"ed25519":
        try:
            raw = base64.b64decode(tags.get(b"p", b""), validate=True)
        except binascii.Error:
            raw = b""
        return None if len(raw) == 32 else "p= is not a 32-byte ed25519 key"
    try:
        dkim.evaluate_pk(b"key", record.encode("ascii", "replace"))
    except dkim.KeyFormatError as exc:
        return str(exc)
    return None


async def check_dkim(run: DomainRun) -> Outcome:
    if not run.entry.dkim_selectors:
        return passed("no dkim_selectors configured: nothing to check")
    found = []
    for selector in run.entry.dkim_selectors:
        name = f"{selector}._domainkey.{run.domain}"
        try:
            records = await run.dns.txt_or_none(name)
        except socket.gaierror as exc:
            return failed("dns_error", exc.strerror or str(exc))
        if not records:
            return failed("dkim_key_missing", f"no DKIM key at {name}")
        if len(records) > 1:
            return failed("dkim_key_missing", f"{len(records)} TXT records at {name}: "
                          "receivers cannot tell which is the key")
        problem = dkim_key_problem(records[0])
        if problem:
            return failed("dkim_key_missing", f"{name}: {problem}")
        found.append(selector)
    return passed(f"keys parse for selector(s) {', '.join(found)}")


async def check_tls_rpt(run: DomainRun) -> Outcome:
    name = f"_smtp._tls.{run.domain}"
    try:
        records = _starting(await run.dns.txt_or_none(name), "v=TLSRPTv1")
    except socket.gaierror as exc:
        return failed("dns_error", exc.strerror or str(exc))
    if not records:
        return failed("tls_rpt_missing", f"no v=TLSRPTv1 record at {name}")
    if len(records) > 1:
        return failed("tls_rpt_invalid", f"{len(records)} TLS-RPT records at {name} "
                      "(RFC 8460 3: reports then go nowhere)")
    problem = tls_rpt_problem(records[0])
    if problem:
        return failed("tls_rpt_invalid", f"{problem} in {records[0]!r}")
    return passed(records[0])
