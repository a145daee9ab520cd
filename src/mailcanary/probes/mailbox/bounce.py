"""Is this message a bounce of our canary, and what did the refusing server say?

A delivery status notification (RFC 3464) is ``multipart/report`` with a
``message/delivery-status`` part: per-recipient blocks with ``Action``, ``Status``,
``Remote-MTA`` and ``Diagnostic-Code``. Some senders still write only prose (qmail and
Yahoo's "Remote host said: ...", plain Exim, old Exchange's "Remote Server returned ..."):
their diagnostic is read from the text. Either way the canary's token must appear in the
bounce (the returned message or its headers): a DSN for someone else's mail is not ours.

Parsing goes through the inbound walker (probes/inbound/mime.py): linear in the size,
bounded in depth and parts; the regexes here have no nested repetition.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import Message
from email.parser import HeaderParser

from mailcanary.probes.inbound.message import decode_text
from mailcanary.probes.inbound.mime import Unparseable, text_parts

DSN_TYPES = frozenset({"message/delivery-status", "message/global-delivery-status"})
_HEADERS_PART = "text/rfc822-headers"
MAX_TEXT = 65536  # characters of prose read for a non-standard bounce's diagnostic
FIELD_LIMIT = 2000  # characters kept of a diagnostic

_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_REPLY = re.compile(r"^\s*([245]\d\d)(?:[ -]|$)")
_COMMAND = re.compile(
    r"in reply to (RCPT TO|MAIL FROM|end of DATA|DATA|BDAT)|"
    r"after (RCPT TO|MAIL FROM|end of data|DATA|pipelined \w+)|\[(RCPT_TO|BODY|MAIL_FROM)\]",
    re.IGNORECASE,
)
_COMMANDS = {"rcpt to": "RCPT", "mail from": "MAIL", "end of data": "DATA", "data": "DATA",
             "bdat": "DATA", "rcpt_to": "RCPT", "body": "DATA", "mail_from": "MAIL"}
# Non-standard bounces: (regex for the remote server's words, regex for its name).
_PROSE: tuple[tuple[re.Pattern[str], re.Pattern[str] | None], ...] = (
    # qmail, Yahoo: "Remote host said: 550 5.1.1 ..." / "Giving up on 192.0.2.1."
    (re.compile(r"Remote host said:[ \t]*([^\n]+)"),
     re.compile(r"Giving up on ([^\s]+?)\.?$|^([^\s]+) does not like recipient", re.M)),
    # Exim: "SMTP error from remote mail server after RCPT TO:<a@b>:\n    550 5.1.1 ..."
    (re.compile(r"SMTP error from remote mail ?server after [^\n]*:[ \t]*\n[ \t]*([^\n]+)"),
     re.compile(r"^[ \t]+host ([^\s]+)", re.M)),
    # Exchange / Microsoft 365 prose: "Remote Server returned '550 5.1.1 ...'"
    (re.compile(r"Remote Server returned '([^'\n]+)'"),
     re.compile(r"(?:Generating|Receiving) server: ([^\s]+)")),
    # Postfix prose: "<a@b>: host mx.b[192.0.2.1] said: 550 5.1.1 ... (in reply to ...)"
    (re.compile(r"\bsaid: ([245]\d\d[^\n]*(?:\n[ \t]+[^\n]+)*)"),
     re.compile(r"\bhost ([^\s\[]+)\[")),
)
_LOOKS_LIKE_BOUNCE = re.compile(
    r"mailer-daemon|postmaster|undeliver|not be delivered|could not be delivered|"
    r"delivery (status notification|has failed|failure)|returned mail|failure notice|"
    r"qmail-send program|wasn't able to deliver|unable to deliver",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Bounce:
    """One recipient's outcome in a bounce: `action` failed (the round trip ends) or
    delayed (a warning: the queue still tries)."""

    action: str
    status: str  # RFC 3463, e.g. "5.7.1"; "" when the bounce gives none
    remote_mta: str  # the refusing server, "" when unknown
    diagnostic: str  # its words, e.g. "550 5.7.1 ..."
    command: str = "RCPT"  # the SMTP command it answered, when the bounce says
    recipient: str = ""

    @property
    def failed(self) -> bool:
        return self.action == "failed"

    @property
    def reply_code(self) -> int:
        """The three-digit reply in the diagnostic, else one implied by the status."""
        match = _REPLY.match(self.diagnostic)
        if match:
            return int(match.group(1))
        return {"5": 550, "4": 450}.get(self.status[:1], 550)

    def as_json(self) -> dict[str, str]:
        return {"status": self.status, "remote_mta": self.remote_mta,
                "diagnostic": self.diagnostic}


def _flat(text: str) -> str:
    return " ".join(text.split())[:FIELD_LIMIT]


def _typed(value: str | None) -> str:
    """``dns; mx.example`` -> ``mx.example`` (RFC 3464 type prefixes dropped)."""
    text = _flat(value or "")
    kind, sep, rest = text.partition(";")
    return rest.strip() if sep and " " not in kind.strip() else text


def _host(value: str | None) -> str:
    """A Remote-MTA's name without comments or the root's dot (Gmail writes both)."""
    return re.sub(r"\([^()]*\)", "", _typed(value)).strip().rstrip(".")


def _status(text: str) -> str:
    match = _STATUS.search(text)
    return ".".join(match.groups()) if match else ""


def _blocks(report: str) -> list[Message]:
    """The delivery-status part's field blocks: per-message first, then per-recipient."""
    blocks = re.split(r"\r?\n[ \t]*\r?\n", report.strip())
    return [HeaderParser().parsestr(block.strip() + "\n", headersonly=True)
            for block in blocks if block.strip()]


def _from_report(report: str, prose: str) -> Bounce | None:
    recipients = [b for b in _blocks(report)[1:] if b.get("Action") or b.get("Status")]
    found: list[Bounce] = []
    for block in recipients:
        diagnostic = _typed(block.get("Diagnostic-Code"))
        status = _status(str(block.get("Status") or "")) or _status(diagnostic)
        action = _flat(str(block.get("Action") or "failed")).lower()
        found.append(Bounce(
            action="failed" if action == "failed" or not action else action,
            status=status, remote_mta=_host(block.get("Remote-MTA")),
            diagnostic=diagnostic or f"status {status}", command=_command(prose),
            recipient=_typed(block.get("Final-Recipient") or block.get("Original-Recipient")),
        ))
    failed = [b for b in found if b.failed]
    return (failed or found)[0] if found else None


def _command(prose: str) -> str:
    match = _COMMAND.search(prose)
    if match is None:
        return "RCPT"
    said = next(g for g in match.groups() if g).lower()
    return _COMMANDS.get(said, "RCPT")  # "after pipelined ...": the RCPT most often


def _from_prose(prose: str, top: Message) -> Bounce | None:
    head = f"{top.get('From', '')} {top.get('Subject', '')}"
    if not (_LOOKS_LIKE_BOUNCE.search(head) or _LOOKS_LIKE_BOUNCE.search(prose[:4000])):
        return None
    for words, host in _PROSE:
        match = words.search(prose)
        if match is None:
            continue
        diagnostic = _flat(match.group(1))
        remote = host.search(prose) if host else None
        name = next((g for g in remote.groups() if g), "") if remote else ""
        return Bounce("failed", _status(diagnostic), name.strip("[]"), diagnostic,
                      _command(prose))
    return None


def parse_bounce(raw: bytes, token: str) -> Bounce | None:
    """The bounce in `raw` if it is one for the canary with `token`; None otherwise
    (not a bounce, someone else's, or beyond the parser's limits)."""
    try:
        top, parts = text_parts(raw, also=DSN_TYPES | {_HEADERS_PART})
    except Unparseable:
        return None
    reports: list[str] = []
    texts: list[str] = []
    for part in parts:
        text = decode_text(part.payload, part.charset or "utf-8").replace("\r\n", "\n")
        is_report = part.subtype in ("delivery-status", "global-delivery-status")
        (reports if is_report else texts).append(text)
    if token.encode() not in raw and not any(token in t for t in texts):
        return None  # not about our canary (or it quotes nothing of it)
    prose = "\n".join(texts)[:MAX_TEXT]
    for report in reports:
        bounce = _from_report(report, prose)
        if bounce is not None:
            return bounce
    return _from_prose(prose, top)
