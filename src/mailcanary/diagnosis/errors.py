"""What probes raise on purpose.

Each type subclasses our base *and* the stdlib class it resembles (as aiosmtplib's errors
do), so the classifier's one `isinstance` ladder handles ours and the library's alike.
"""

from __future__ import annotations

import ssl


class ProbeError(Exception):
    """Base of everything a probe raises on purpose."""


class ServerReplyError(ProbeError):
    """The server answered, and the answer was not the one a working account gets."""

    protocol = "?"

    def __init__(self, command: str, text: str, code: int | None = None) -> None:
        self.command = command.upper()
        self.text = text.strip()
        self.code = code
        super().__init__(self.text)


class SmtpReplyError(ServerReplyError):
    protocol = "smtp"

    def __init__(self, command: str, code: int, text: str) -> None:
        super().__init__(command, text, code)

    def __str__(self) -> str:
        return f"{self.code} {self.text}" if not self.text.startswith(str(self.code)) else self.text


class ImapReplyError(ServerReplyError):
    protocol = "imap"

    def __str__(self) -> str:
        return self.text


class Pop3ReplyError(ServerReplyError):
    """A POP3 ``-ERR`` (the text keeps the status word and any RFC 2449 response code)."""

    protocol = "pop3"

    def __str__(self) -> str:
        return self.text


class StartTLSUnavailable(ProbeError, ssl.SSLError):
    """The server did not offer STARTTLS, so the session would stay in clear text."""


class TLSRequired(ProbeError, PermissionError):
    """The server refuses to authenticate before TLS (LOGINDISABLED, 530 5.7.0)."""


class MechanismUnsupported(ProbeError, NotImplementedError):
    """No SASL mechanism both sides speak."""


class ProtocolViolation(ProbeError, ValueError):
    """A reply that does not follow the protocol; the reply text is the message."""


class ConnectionClosed(ProbeError, ConnectionResetError):
    """The server closed the connection while we waited for it."""


class StateError(ProbeError):
    """The state directory (in-flight canaries) cannot be used: a configuration problem."""


class DeliveryProblem(ProbeError):
    """A canary that was accepted but not delivered as it should be (spam, lost, delayed)."""

    def __init__(self, reason: str, detail: str, hint: str | None = None) -> None:
        self.reason = reason
        self.hint = hint  # replaces the reason's general hint (e.g. why it landed in spam)
        super().__init__(detail)


class Bounced(ProbeError):
    """The receiving side refused a canary that the sender's server had accepted: its
    bounce (DSN) came back. Classified as the SMTP reply it quotes; the message is the
    remote server's words."""

    def __init__(
        self, command: str, code: int, status: str, diagnostic: str, recipient: str = ""
    ) -> None:
        self.command = command
        self.code = code
        self.status = status
        self.recipient = recipient
        super().__init__(diagnostic)

    @property
    def reply_text(self) -> str:
        """The diagnostic with the bounce's status code, for the SMTP classifier."""
        text = str(self)
        return text if not self.status or self.status in text else f"{self.status} {text}"


class DomainCheckFailed(ProbeError):
    """A domain check found the domain's DNS, MX or reputation wrong (the reason says what);
    `hint`, when given, replaces the reason's general hint (e.g. a blocklist that refused)."""

    def __init__(self, reason: str, detail: str, hint: str | None = None) -> None:
        self.reason = reason
        self.hint = hint
        super().__init__(detail)


class TriggerFailed(ProbeError):
    """An inbound watch's HTTP trigger failed (status >= 400, refused, timed out)."""


class OAuthTokenError(ProbeError):
    """The OAuth2 token endpoint gave no access token.

    `error` is the endpoint's RFC 6749 error code (``invalid_grant`` ...) or one of ours:
    ``network`` (not reachable), ``bad_reply`` (not a token response). The message holds the
    endpoint's own words; it never holds a token or secret.
    """

    def __init__(self, account: str, error: str, message: str, description: str = "") -> None:
        self.account = account
        self.error = error
        self.description = description
        super().__init__(message)


class TokenEndpointTimeout(ProbeError, TimeoutError):
    """The token endpoint did not answer in time: class timeout, phase token."""


class BearerRejected(ProbeError):
    """The mail server refused an access token that the token endpoint had issued."""

    def __init__(self, reply: ServerReplyError) -> None:
        self.reply = reply
        super().__init__(str(reply))
