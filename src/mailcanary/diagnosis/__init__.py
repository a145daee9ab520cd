"""Diagnosis: what went wrong, in the contract's words, and what a person should do.

`errors` holds what probes raise; `smtp`, `imap` and `words` read server replies;
`classify` turns any exception into a `Failure` (class, reason, detail, hint);
`taxonomy` and `hints` are the contract's classes and the prose for each reason.
"""

from mailcanary.diagnosis.classify import classify, exception_reason, oauth_failure
from mailcanary.diagnosis.errors import (
    BearerRejected,
    Bounced,
    ConnectionClosed,
    DeliveryProblem,
    DomainCheckFailed,
    ImapReplyError,
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
    TokenEndpointTimeout,
    TriggerFailed,
)
from mailcanary.diagnosis.hints import HINTS
from mailcanary.diagnosis.imap import classify_imap_reply
from mailcanary.diagnosis.pop3 import classify_pop3_reply
from mailcanary.diagnosis.smtp import classify_smtp_reply
from mailcanary.diagnosis.taxonomy import CLASS_OF, LOGIN_REASONS, TAXONOMY, Failure, Where, failure

__all__ = [
    "CLASS_OF", "HINTS", "LOGIN_REASONS", "TAXONOMY", "BearerRejected", "Bounced",
    "ConnectionClosed", "DeliveryProblem", "DomainCheckFailed", "Failure", "ImapReplyError",
    "MechanismUnsupported", "OAuthTokenError",
    "Pop3ReplyError", "ProbeError", "ProtocolViolation", "ServerReplyError", "SmtpReplyError",
    "StartTLSUnavailable", "StateError", "TLSRequired", "TokenEndpointTimeout", "TriggerFailed",
    "Where", "classify", "classify_imap_reply", "classify_pop3_reply", "classify_smtp_reply",
    "exception_reason", "failure", "oauth_failure",
]
