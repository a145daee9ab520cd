"""Why a message landed in spam, in the receiving side's own words, and what to fix.

Pure: it reads only the headers the receiving filters leave behind (Authentication-Results,
SpamAssassin's X-Spam-Status, Rspamd's X-Rspamd-Score / X-Spamd-Result, Microsoft's
X-Forefront-Antispam-Report and X-Microsoft-Antispam-Mailbox-Delivery). Authentication
failures come first in the hint: they are the commonest cause and the one a sender can fix.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.message import Message

_METHODS = ("spf", "dkim", "dmarc", "arc")
_GOOD = {"pass", "bestguesspass"}
_RESULT = re.compile(
    r"(?:^|;)\s*(spf|dkim|dmarc|arc)\s*=\s*([a-z]+)([^;]*)", re.IGNORECASE
)
_PROP = re.compile(r"\b(header\.[a-z]+|smtp\.[a-z]+)\s*=\s*([^\s;()]+)", re.IGNORECASE)
_SA_SCORE = re.compile(r"score=(-?[\d.]+)", re.IGNORECASE)
_SA_REQUIRED = re.compile(r"required=(-?[\d.]+)", re.IGNORECASE)
_SA_TESTS = re.compile(r"tests=([A-Za-z0-9_,\s]+?)(?:\s+\w+=|$)", re.IGNORECASE)
_RSPAMD_SYMBOL = re.compile(r"([A-Z][A-Z0-9_]+)\((-?[\d.]+)\)")
_RSPAMD_TOTAL = re.compile(r"\[\s*(-?[\d.]+)\s*/\s*(-?[\d.]+)\s*\]")
TOP_RULES = 6

_SFV = {
    "SPM": "its filter judged it spam (SFV:SPM)",
    "BLK": "the recipient has the sender on their Blocked Senders list (SFV:BLK)",
    "SKS": "a mail flow rule marked it as spam before filtering (SFV:SKS)",
    "SKB": "the sender or domain is on the tenant's block list (SFV:SKB)",
    "SKA": "the sender is on an allow list (SFV:SKA)",
    "NSPM": "its filter judged it not spam (SFV:NSPM)",
}
_CAT = {
    "PHSH": "phishing", "HPHSH": "high-confidence phishing", "SPOOF": "spoofing",
    "BULK": "bulk mail", "SPM": "spam", "HSPM": "high-confidence spam", "MALW": "malware",
}


@dataclass(frozen=True)
class SpamExplanation:
    """What the receiving side said (`signals`) and what to do about it (`hint`)."""

    signals: list[str] = field(default_factory=list)
    hint: str = ""

    def detail(self) -> str:
        if not self.signals:
            return "the receiving side's headers give no reason"
        return "the receiving side said: " + "; ".join(self.signals)


def _flat(value: object) -> str:
    return " ".join(str(value).split())


def _auth_results(values: Sequence[str]) -> list[tuple[str, str, dict[str, str]]]:
    """(method, result, properties) from the topmost Authentication-Results."""
    if not values:
        return []
    text = re.sub(r"\([^()]*\)", " ", _flat(values[0]))
    _, _, results = text.partition(";")
    out = []
    for match in _RESULT.finditer(";" + results):
        props = {k.lower(): v for k, v in _PROP.findall(match.group(3))}
        out.append((match.group(1).lower(), match.group(2).lower(), props))
    return out


def _auth_hint(method: str, result: str, props: dict[str, str]) -> str:
    if method == "dkim":
        domain = props.get("header.d") or props.get("header.i", "").lstrip("@") or "the sender"
        if result == "none":
            return "The message carries no DKIM signature: sign it with the sending domain's key."
        selector = props.get("header.s")
        record = f"{selector}._domainkey.{domain}" if selector else f"the record of {domain}"
        return f"DKIM {result} for {domain}: check the selector's DNS record ({record}) and " \
               "that nothing rewrites the message after signing."
    if method == "spf":
        domain = props.get("smtp.mailfrom", "the envelope sender").rpartition("@")[2]
        return f"SPF {result} for {domain}: add the sending servers (your ESP) to its SPF record."
    if method == "dmarc":
        domain = props.get("header.from", "the From domain")
        return f"DMARC {result} for {domain}: the From domain must align with a passing DKIM " \
               "signature or SPF domain; sign with d= the From domain."
    return f"ARC {result}: a forwarder in between broke the chain; check that hop."


def _auth(headers: Message, signals: list[str], hints: list[str]) -> None:
    values = [str(v) for v in headers.get_all("Authentication-Results") or []]
    for method, result, props in _auth_results(values):
        if method not in _METHODS:
            continue
        where = ", ".join(f"{k}={v}" for k, v in props.items())
        signals.append(f"{method}={result}" + (f" ({where})" if where else ""))
        if result not in _GOOD and not (method in ("spf", "arc") and result == "none"):
            hints.append(_auth_hint(method, result, props))


def _spamassassin(headers: Message, signals: list[str], hints: list[str]) -> None:
    status = headers.get("X-Spam-Status")
    if status is None:
        return
    text = _flat(status)
    score, required = _SA_SCORE.search(text), _SA_REQUIRED.search(text)
    tests_match = _SA_TESTS.search(text)
    tests = [t for t in re.split(r"[,\s]+", tests_match.group(1)) if t] if tests_match else []
    verdict = text.split(",")[0].strip()
    said = f"SpamAssassin {verdict}"
    if score is not None:
        said += f", score {score.group(1)}" + (f" of {required.group(1)}" if required else "")
    if tests:
        said += f", rules {', '.join(tests[:TOP_RULES])}"
    signals.append(said)
    if verdict.lower().startswith("yes") and tests:
        hints.append(f"SpamAssassin's rules {', '.join(tests[:3])} scored it as spam: "
                     "look each rule up and change what triggers it.")


def _rspamd(headers: Message, signals: list[str], hints: list[str]) -> None:
    score = headers.get("X-Rspamd-Score")
    result = headers.get("X-Spamd-Result")
    if score is None and result is None:
        return
    text = _flat(result or "")
    symbols = sorted(
        ((name, float(value)) for name, value in _RSPAMD_SYMBOL.findall(text)),
        key=lambda item: -item[1],
    )
    positive = [f"{name}({value:g})" for name, value in symbols if value > 0][:TOP_RULES]
    total = _RSPAMD_TOTAL.search(text)
    said = "Rspamd score " + (
        _flat(score) if score is not None else (total.group(1) if total else "?")
    )
    if total is not None:
        said += f" of {total.group(2)}"
    if positive:
        said += f", symbols {', '.join(positive)}"
    signals.append(said)
    if positive:
        hints.append(f"Rspamd's symbols {', '.join(positive[:3])} weighed most: "
                     "change what triggers them.")


def _microsoft_fields(value: object) -> dict[str, str]:
    out = {}
    for part in _flat(value).split(";"):
        key, sep, val = part.partition(":")
        if sep:
            out[key.strip().upper()] = val.strip()
    return out


def _microsoft(headers: Message, signals: list[str], hints: list[str]) -> None:
    report = headers.get("X-Forefront-Antispam-Report")
    if report is not None:
        fields = _microsoft_fields(report)
        parts = [f"{k}:{fields[k]}" for k in ("SCL", "SFV", "CAT") if fields.get(k)]
        signals.append("Microsoft " + (" ".join(parts) or "antispam report"))
        sfv, cat = fields.get("SFV", "").upper(), fields.get("CAT", "").upper()
        if sfv in ("BLK", "SKS", "SKB"):
            hints.append(f"Microsoft says {_SFV[sfv]}: that is the recipient's or tenant's "
                         "setting, not the content.")
        elif cat in _CAT and cat != "SPM":
            hints.append(f"Microsoft classified it as {_CAT[cat]} (CAT:{cat}).")
        elif fields.get("SCL", "").lstrip("-").isdigit() and int(fields["SCL"]) >= 5:
            hints.append(f"Microsoft's filter gave spam confidence level {fields['SCL']} "
                         "(5 and up goes to Junk): check authentication and sender reputation.")
    delivery = headers.get("X-Microsoft-Antispam-Mailbox-Delivery")
    if delivery is not None:
        fields = _microsoft_fields(delivery)
        parts = [f"{k.lower()}:{fields[k]}" for k in ("DEST", "RF", "UCF", "JMR") if k in fields]
        signals.append("Microsoft mailbox delivery " + " ".join(parts))
        if fields.get("RF", "").lower() == "junkemail" and fields.get("UCF") == "1":
            hints.append("The recipient's own Junk rules moved it (ucf:1).")


def explain_spam(headers: Message) -> SpamExplanation:
    """What the receiving side's headers say about a message that landed in spam."""
    signals: list[str] = []
    hints: list[str] = []
    for read in (_auth, _spamassassin, _rspamd, _microsoft):
        read(headers, signals, hints)
    if not hints:
        hints.append("The receiving side gave no specific reason: check SPF, DKIM and DMARC "
                     "of the sending domain and its reputation (blocklists, complaint rate).")
    return SpamExplanation(signals, " ".join(dict.fromkeys(hints[:3])))


def as_json(explanation: SpamExplanation) -> dict[str, object]:
    return {"signals": list(explanation.signals), "hint": explanation.hint}


def from_json(value: object) -> SpamExplanation | None:
    if not isinstance(value, dict):
        return None
    signals = value.get("signals")
    return SpamExplanation(
        [str(s) for s in signals] if isinstance(signals, list) else [], str(value.get("hint", ""))
    )
