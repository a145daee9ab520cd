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

from mailcanary.i18n import N_, Text

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
    "SPM": N_("its filter judged it spam (SFV:SPM)"),
    "BLK": N_("the recipient has the sender on their Blocked Senders list (SFV:BLK)"),
    "SKS": N_("a mail flow rule marked it as spam before filtering (SFV:SKS)"),
    "SKB": N_("the sender or domain is on the tenant's block list (SFV:SKB)"),
    "SKA": N_("the sender is on an allow list (SFV:SKA)"),
    "NSPM": N_("its filter judged it not spam (SFV:NSPM)"),
}
_CAT = {
    "PHSH": N_("phishing"), "HPHSH": N_("high-confidence phishing"), "SPOOF": N_("spoofing"),
    "BULK": N_("bulk mail"), "SPM": N_("spam"), "HSPM": N_("high-confidence spam"),
    "MALW": N_("malware"),
}


@dataclass(frozen=True)
class SpamExplanation:
    """What the receiving side said (`signals`) and what to do about it (`hint`)."""

    signals: list[str] = field(default_factory=list)
    hint: str = ""  # a Text while in memory; English once read back from JSON

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


def _auth_hint(method: str, result: str, props: dict[str, str]) -> Text:
    if method == "dkim":
        domain: str = (props.get("header.d") or props.get("header.i", "").lstrip("@")
                       or Text("the sender"))
        if result == "none":
            return Text("The message carries no DKIM signature: sign it with the sending "
                        "domain's key.")
        selector = props.get("header.s")
        record = (f"{selector}._domainkey.{domain}" if selector
                  else Text("the record of {domain}", domain=domain))
        return Text("DKIM {result} for {domain}: check the selector's DNS record ({record}) and "
                    "that nothing rewrites the message after signing.",
                    result=result, domain=domain, record=record)
    if method == "spf":
        sender = props.get("smtp.mailfrom")
        return Text("SPF {result} for {domain}: add the sending servers (your ESP) to its SPF "
                    "record.", result=result,
                    domain=sender.rpartition("@")[2] if sender else Text("the envelope sender"))
    if method == "dmarc":
        return Text("DMARC {result} for {domain}: the From domain must align with a passing "
                    "DKIM signature or SPF domain; sign with d= the From domain.", result=result,
                    domain=props.get("header.from") or Text("the From domain"))
    return Text("ARC {result}: a forwarder in between broke the chain; check that hop.",
                result=result)


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
        hints.append(Text("SpamAssassin's rules {rules} scored it as spam: look each rule up "
                          "and change what triggers it.", rules=", ".join(tests[:3])))


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
        hints.append(Text("Rspamd's symbols {symbols} weighed most: change what triggers "
                          "them.", symbols=", ".join(positive[:3])))


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
            hints.append(Text("Microsoft says {verdict}: that is the recipient's or tenant's "
                              "setting, not the content.", verdict=Text(_SFV[sfv])))
        elif cat in _CAT and cat != "SPM":
            hints.append(Text("Microsoft classified it as {category} (CAT:{cat}).",
                              category=Text(_CAT[cat]), cat=cat))
        elif fields.get("SCL", "").lstrip("-").isdigit() and int(fields["SCL"]) >= 5:
            hints.append(Text("Microsoft's filter gave spam confidence level {scl} (5 and up "
                              "goes to Junk): check authentication and sender reputation.",
                              scl=fields["SCL"]))
    delivery = headers.get("X-Microsoft-Antispam-Mailbox-Delivery")
    if delivery is not None:
        fields = _microsoft_fields(delivery)
        parts = [f"{k.lower()}:{fields[k]}" for k in ("DEST", "RF", "UCF", "JMR") if k in fields]
        signals.append("Microsoft mailbox delivery " + " ".join(parts))
        if fields.get("RF", "").lower() == "junkemail" and fields.get("UCF") == "1":
            hints.append(Text("The recipient's own Junk rules moved it (ucf:1)."))


def explain_spam(headers: Message) -> SpamExplanation:
    """What the receiving side's headers say about a message that landed in spam."""
    signals: list[str] = []
    hints: list[str] = []
    for read in (_auth, _spamassassin, _rspamd, _microsoft):
        read(headers, signals, hints)
    if not hints:
        hints.append(Text("The receiving side gave no specific reason: check SPF, DKIM and "
                          "DMARC of the sending domain and its reputation (blocklists, "
                          "complaint rate)."))
    return SpamExplanation(signals, Text.sentences(list(dict.fromkeys(hints[:3]))))


def as_json(explanation: SpamExplanation) -> dict[str, object]:
    return {"signals": list(explanation.signals), "hint": explanation.hint}


def from_json(value: object) -> SpamExplanation | None:
    if not isinstance(value, dict):
        return None
    signals = value.get("signals")
    hint = value.get("hint", "")
    return SpamExplanation(
        [str(s) for s in signals] if isinstance(signals, list) else [],
        hint if isinstance(hint, Text) else str(hint),  # in memory it is still translatable
    )
