"""Exceptions -> class, reason, detail and hint: the one entry point, `classify`.

Probes raise; they never classify. The runner calls `classify(exc, phase, where)`.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import ssl

from mailcanary.credentials import CredentialError
from mailcanary.diagnosis.bounces import bounce_hint
from mailcanary.diagnosis.errors import (
    BearerRejected,
    Bounced,
    DeliveryProblem,
    DomainCheckFailed,
    MechanismUnsupported,
    OAuthTokenError,
    Pop3ReplyError,
    ProbeError,
    ProtocolViolation,
    ServerReplyError,
    SmtpReplyError,
    StartTLSUnavailable,
    StateError,
    TLSRequired,
    TriggerFailed,
)
from mailcanary.diagnosis.hints import BEARER_REJECTED_HINT, HINTS, OAUTH_HINTS, SLOW_ENDPOINT_HINT
from mailcanary.diagnosis.imap import classify_imap_reply
from mailcanary.diagnosis.pop3 import classify_pop3_reply
from mailcanary.diagnosis.smtp import classify_smtp_reply
from mailcanary.diagnosis.taxonomy import CLASS_OF, Failure, Where, failure
from mailcanary.i18n import Text


def _oauth_hint_key(exc: OAuthTokenError) -> str:
    low = exc.description.lower()
    if "aadsts65001" in low or "consent" in low:
        return "consent_required"
    return exc.error if exc.error in OAUTH_HINTS else "default"


def oauth_failure(exc: OAuthTokenError) -> Failure:
    key = _oauth_hint_key(exc)
    hint = OAUTH_HINTS[key] if key != "default" else HINTS["oauth_token_error"]
    return Failure(
        CLASS_OF["oauth_token_error"], "oauth_token_error", str(exc),
        Text(hint, account=exc.account),
    )


_NXDOMAIN_ERRNOS = {socket.EAI_NONAME, getattr(socket, "EAI_NODATA", -5)}
_UNREACHABLE_ERRNOS = {
    errno.ENETUNREACH,
    errno.EHOSTUNREACH,
    errno.EHOSTDOWN,
    errno.EADDRNOTAVAIL,
    errno.ENETDOWN,
}
_RESET_ERRNOS = {errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED}

_VERIFY_CODES = {
    10: "cert_expired",  # X509_V_ERR_CERT_HAS_EXPIRED
    9: "cert_expired",  # X509_V_ERR_CERT_NOT_YET_VALID (clock skew looks the same to a person)
    62: "hostname_mismatch",  # X509_V_ERR_HOSTNAME_MISMATCH
    64: "hostname_mismatch",  # X509_V_ERR_IP_ADDRESS_MISMATCH
}


def _classify_tls(exc: ssl.SSLError) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        code = getattr(exc, "verify_code", None)
        if code in _VERIFY_CODES:
            return _VERIFY_CODES[code]
        message = str(getattr(exc, "verify_message", "") or exc).lower()
        if "expired" in message or "not yet valid" in message:
            return "cert_expired"
        if "mismatch" in message:
            return "hostname_mismatch"
        return "cert_untrusted"
    return "handshake_failed"


# Our own error types that always mean one reason (checked before the stdlib classes).
_ONE_REASON: tuple[tuple[type[BaseException], str], ...] = (
    (StateError, "config_error"),
    (StartTLSUnavailable, "starttls_unavailable"),
    (TLSRequired, "tls_required"),
    (MechanismUnsupported, "mechanism_unsupported"),
    (ProtocolViolation, "protocol_error"),
    (CredentialError, "config_error"),
    (TriggerFailed, "trigger_failed"),
)


def exception_reason(exc: BaseException, phase: str | None) -> tuple[str, str]:
    """(reason, detail) for an exception raised in `phase`."""
    if isinstance(exc, ServerReplyError):
        if isinstance(exc, SmtpReplyError):
            return classify_smtp_reply(exc.command, exc.code or 0, exc.text), str(exc)
        if isinstance(exc, Pop3ReplyError):
            return classify_pop3_reply(exc.command, exc.text), str(exc)
        return classify_imap_reply(exc.command, exc.text), str(exc)
    if isinstance(exc, DeliveryProblem | DomainCheckFailed):
        return exc.reason, str(exc)
    if isinstance(exc, Bounced):
        return classify_smtp_reply(exc.command, exc.code, exc.reply_text), str(exc)
    for kind, reason in _ONE_REASON:
        if isinstance(exc, kind):
            return reason, str(exc)
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return "timeout", f"no answer within the timeout (phase {phase or 'unknown'})"
    if isinstance(exc, ssl.SSLError):
        reason = _classify_tls(exc)
        detail = str(getattr(exc, "verify_message", "") or "") or str(exc)
        return reason, detail if isinstance(exc, ssl.SSLCertVerificationError) else str(exc)
    if isinstance(exc, socket.gaierror):
        reason = "nxdomain" if exc.errno in _NXDOMAIN_ERRNOS else "dns_error"
        return reason, exc.strerror or str(exc)
    if isinstance(exc, ConnectionRefusedError):
        return "connection_refused", exc.strerror or str(exc) or "connection refused"
    if phase == "tls" and isinstance(
        exc, ConnectionError | asyncio.IncompleteReadError | EOFError
    ):
        return "handshake_failed", f"connection closed during the TLS handshake: {exc}"
    if isinstance(exc, ConnectionError | asyncio.IncompleteReadError | EOFError):
        return "connection_reset", str(exc) or "connection closed by the server"
    if isinstance(exc, OSError):
        if exc.errno in _UNREACHABLE_ERRNOS:
            return "unreachable", exc.strerror or str(exc)
        if exc.errno in _RESET_ERRNOS:
            return "connection_reset", exc.strerror or str(exc)
        return "unreachable" if phase == "connect" else "connection_reset", str(exc)
    if is_reply_parse_error(exc):
        return "protocol_error", f"{type(exc).__name__}: {exc}"
    return "internal_error", f"{type(exc).__name__}: {exc}"


# Libraries that parse the server's bytes: their errors mean the server's reply was odd.
_PARSER_PACKAGES = frozenset({"aioimaplib", "aiosmtplib", "email"})


def is_reply_parse_error(exc: BaseException) -> bool:
    """True for what a server's odd reply causes (our ProbeErrors, a reply library's
    exceptions, undecodable bytes); False for our own bugs (KeyError, AssertionError,
    TypeError ...), which are `internal_error` and never blamed on the server."""
    if isinstance(exc, ProbeError | UnicodeError):
        return True
    return type(exc).__module__.split(".")[0] in _PARSER_PACKAGES


def classify(exc: BaseException, phase: str | None, where: Where | None = None) -> Failure:
    if isinstance(exc, OAuthTokenError):
        return oauth_failure(exc)
    if isinstance(exc, BearerRejected):
        reason, detail = exception_reason(exc.reply, phase)
        fail = failure(reason, detail, where, phase)
        if reason == "invalid_credentials":
            return Failure(fail.cls, reason, detail, Text(BEARER_REJECTED_HINT))
        return fail
    reason, detail = exception_reason(exc, phase)
    fail = failure(reason, detail, where, phase)
    if isinstance(exc, DeliveryProblem | DomainCheckFailed) and exc.hint:
        return Failure(fail.cls, reason, detail, exc.hint)
    if isinstance(exc, Bounced):
        hint = bounce_hint(reason, exc.recipient, exc.reply_text)
        return Failure(fail.cls, reason, detail, hint or fail.hint)
    if reason == "timeout" and phase == "token":
        return Failure(fail.cls, reason, detail, Text(SLOW_ENDPOINT_HINT))
    return fail
