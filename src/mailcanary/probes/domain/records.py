"""Parsers of the policy records the domain checks read: DMARC, TLS-RPT, MTA-STS.

Pure functions of the record text, so every rule of the RFCs is testable without DNS. Each
returns the problem in words for `detail`, or None when the record is valid. SPF (pyspf) and
DKIM keys (dkimpy) are judged by libraries; these formats are a few tag lists, for which the
libraries that cover them (checkdmarc) would bring a dozen dependencies and their own
network code that ignores `[daemon] nameservers`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_TAG_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_DMARC_POLICIES = ("none", "quarantine", "reject")


def tag_list(record: str) -> tuple[list[tuple[str, str]], str | None]:
    """RFC 6376 3.2 / RFC 7489 6.4 tag=value pairs split at ';' (tags lower-cased)."""
    pairs: list[tuple[str, str]] = []
    for raw in record.split(";"):
        part = raw.strip()
        if not part:
            continue
        tag, sep, value = part.partition("=")
        tag = tag.strip()
        if not sep or not _TAG_RE.match(tag):
            return pairs, f"{part!r} is not a tag=value pair"
        pairs.append((tag.lower(), value.strip()))
    return pairs, None


def _uris(value: str, schemes: tuple[str, ...]) -> str | None:
    for uri in (u.strip() for u in value.split(",")):
        scheme = uri.split(":", 1)[0].lower() if ":" in uri else ""
        if scheme not in schemes or len(uri) <= len(scheme) + 1:
            return f"{uri!r} is not a {' or '.join(s + ':' for s in schemes)} URI"
    return None


def dmarc_problem(record: str) -> str | None:
    """RFC 7489 6.3: v=DMARC1 first, p= required and known, the optional tags well-formed."""
    pairs, problem = tag_list(record)
    if problem:
        return problem
    if not pairs or pairs[0] != ("v", "DMARC1"):
        return "the record must start with v=DMARC1"
    tags = dict(pairs)
    if len(tags) != len(pairs):
        return "a tag appears twice"
    if "p" not in tags:
        return "the required p= tag is missing (none, quarantine or reject)"
    for key in ("p", "sp"):
        if key in tags and tags[key].lower() not in _DMARC_POLICIES:
            return f"{key}={tags[key]} is not none, quarantine or reject"
    for key in ("adkim", "aspf"):
        if key in tags and tags[key].lower() not in ("r", "s"):
            return f"{key}={tags[key]} is not r or s"
    if "pct" in tags and not (tags["pct"].isdigit() and 0 <= int(tags["pct"]) <= 100):
        return f"pct={tags['pct']} is not a number from 0 to 100"
    if "ri" in tags and not tags["ri"].isdigit():
        return f"ri={tags['ri']} is not a number of seconds"
    if "fo" in tags and not all(o.strip() in ("0", "1", "d", "s") for o in tags["fo"].split(":")):
        return f"fo={tags['fo']} is not a list of 0, 1, d, s"
    for key in ("rua", "ruf"):
        if key in tags:
            problem = _uris(tags[key], ("mailto",))
            if problem:
                return f"{key}: {problem}"
    return None


def tls_rpt_problem(record: str) -> str | None:
    """RFC 8460 3: v=TLSRPTv1 first, then rua= with mailto: or https: URIs."""
    pairs, problem = tag_list(record)
    if problem:
        return problem
    if not pairs or pairs[0] != ("v", "TLSRPTv1"):
        return "the record must start with v=TLSRPTv1"
    tags = dict(pairs)
    if "rua" not in tags:
        return "the required rua= tag is missing (where reports go: mailto: or https:)"
    problem = _uris(tags["rua"], ("mailto", "https"))
    return f"rua: {problem}" if problem else None


def sts_record_problem(record: str) -> str | None:
    """RFC 8461 3.1: v=STSv1 first, id= of 1 to 32 letters and digits."""
    pairs, problem = tag_list(record)
    if problem:
        return problem
    if not pairs or pairs[0] != ("v", "STSv1"):
        return "the record must start with v=STSv1"
    policy_id = dict(pairs).get("id")
    if policy_id is None:
        return "the required id= tag is missing"
    if not re.fullmatch(r"[A-Za-z0-9]{1,32}", policy_id):
        return f"id={policy_id} is not 1 to 32 letters and digits"
    return None


@dataclass
class StsPolicy:
    mode: str = ""
    max_age: int = 0
    mx: list[str] = field(default_factory=list)


_MAX_AGE = 31557600  # RFC 8461 3.2: at most one year


def parse_sts_policy(text: str) -> tuple[StsPolicy, str | None]:
    """RFC 8461 3.2: "key: value" lines; version, mode, max_age required; mx unless mode none."""
    policy = StsPolicy()
    seen: set[str] = set()
    for line in text.splitlines():
        if not line.strip():
            continue
        key, sep, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if not sep:
            return policy, f"{line[:80]!r} is not a key: value line"
        if key != "mx" and key in seen:
            return policy, f"{key} appears twice"
        seen.add(key)
        if key == "version" and value != "STSv1":
            return policy, f"version: {value} is not STSv1"
        if key == "mode":
            policy.mode = value
        elif key == "max_age":
            if not value.isdigit() or int(value) > _MAX_AGE:
                return policy, f"max_age: {value} is not a number of seconds up to {_MAX_AGE}"
            policy.max_age = int(value)
        elif key == "mx":
            policy.mx.append(value.lower().rstrip("."))
    for required in ("version", "mode", "max_age"):
        if required not in seen:
            return policy, f"the policy has no {required}: line"
    if policy.mode not in ("enforce", "testing", "none"):
        return policy, f"mode: {policy.mode} is not enforce, testing or none"
    if policy.mode != "none" and not policy.mx:
        return policy, f"mode {policy.mode} needs at least one mx: line"
    return policy, None


def mx_matches(pattern: str, host: str) -> bool:
    """RFC 8461 4.1: a pattern matches the name, or "*.x" matches exactly one label + ".x"."""
    pattern, host = pattern.lower().rstrip("."), host.lower().rstrip(".")
    if pattern.startswith("*."):
        label, dot, rest = host.partition(".")
        return bool(label) and bool(dot) and rest == pattern[2:]
    return pattern == host


def uncovered_mx(policy: StsPolicy, hosts: list[str]) -> list[str]:
    return [h for h in hosts if not any(mx_matches(p, h) for p in policy.mx)]
