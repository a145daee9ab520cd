"""The one place that turns exceptions and server replies into class, reason and hint.

Probes raise; they never classify. The runner calls `classify(exc, phase)`. Structured
parts of a reply are read first (IMAP response codes of RFC 5530, SMTP reply codes and the
enhanced status codes of RFC 3463), then the words big providers are known to use, because
the same code can mean "wrong password" at one provider and "basic auth switched off" at
another. Each error type below subclasses our base *and* the stdlib class it resembles, so
one `isinstance` ladder handles both ours and the library's.
"""

from __future__ import annotations

import asyncio
import errno
import re
import socket
import ssl
from dataclasses import dataclass

from .credentials import CredentialError

# --------------------------------------------------------------------------- exceptions


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

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        super().__init__(detail)


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


# --------------------------------------------------------------------------- outcomes


@dataclass(frozen=True)
class Failure:
    cls: str
    reason: str
    detail: str
    hint: str


TAXONOMY: dict[str, tuple[str, ...]] = {
    "ok": ("ok",),
    "dns": ("nxdomain", "dns_error"),
    "network": ("connection_refused", "unreachable", "connection_reset"),
    "timeout": ("timeout",),
    "tls": (
        "cert_expired",
        "cert_untrusted",
        "hostname_mismatch",
        "handshake_failed",
        "starttls_unavailable",
        "tls_required",
    ),
    "auth": (
        "invalid_credentials",
        "app_password_required",
        "basic_auth_disabled",
        "web_login_required",
        "account_locked",
        "mechanism_unsupported",
        "oauth_token_error",
        "protocol_disabled",
    ),
    "rejected": (
        "recipient_rejected",
        "sender_rejected",
        "relay_denied",
        "policy_rejected",
        "message_rejected",
    ),
    "quota": ("mailbox_full", "sending_limit"),
    "rate_limited": ("rate_limited", "too_many_connections"),
    "server": ("unavailable", "server_error"),
    "protocol": ("protocol_error",),
    "spam": ("spam_folder",),
    "delivery": ("lost", "delayed"),
    "config": ("config_error",),
}

CLASS_OF: dict[str, str] = {r: c for c, reasons in TAXONOMY.items() for r in reasons}

# What a login probe (imap, smtp) can produce: used to pre-create failure series at zero.
LOGIN_REASONS: tuple[str, ...] = tuple(
    reason
    for cls, reasons in TAXONOMY.items()
    if cls not in ("ok", "spam", "delivery")
    for reason in reasons
)


HINTS: dict[str, str] = {
    "ok": "",
    "nxdomain": "The host name {host} does not exist in DNS. Check the spelling of the host in "
    "the config, or the domain's DNS records.",
    "dns_error": "The DNS lookup of {host} failed. Check this machine's resolver "
    "(/etc/resolv.conf) and that the DNS server answers.",
    "connection_refused": "Nothing accepts connections on {host}:{port}. Check the port number, "
    "that the mail service runs, and any firewall in between.",
    "unreachable": "There is no network route to {host}. Check this machine's network, routes "
    "and firewall (IPv6 without a route is a common cause).",
    "connection_reset": "The server closed the connection unexpectedly. It may be overloaded, "
    "blocking this client's IP, or a firewall or proxy may be cutting the session.",
    "timeout": "No answer within the timeout during {phase}. Check that {host}:{port} is "
    "reachable and that the port's security setting (tls or starttls) matches the server.",
    "cert_expired": "The server's TLS certificate has expired (or is not yet valid). Renew the "
    "certificate on {host}, or check this machine's clock.",
    "cert_untrusted": "The server's TLS certificate is not signed by a trusted CA (self-signed or "
    "unknown issuer). Install a publicly trusted certificate or point ca_file at the CA.",
    "hostname_mismatch": "The TLS certificate is not valid for {host}. Connect using a name the "
    "certificate lists, or reissue the certificate with this name.",
    "handshake_failed": "The TLS handshake failed. Check that this port speaks TLS as configured "
    "(security = \"tls\" for implicit TLS, \"starttls\" otherwise) and that the server allows "
    "TLS 1.2 or newer.",
    "starttls_unavailable": "The server did not offer STARTTLS, so the password would go in clear "
    "text. Enable STARTTLS on the server or use the implicit-TLS port.",
    "tls_required": "The server refuses to log in without TLS. Set security = \"starttls\" or "
    "\"tls\" for this endpoint.",
    "invalid_credentials": "The server rejected the username or password. Check whether the "
    "password was changed, and that the username is the full address if the provider expects it.",
    "app_password_required": "The provider requires an app password (or OAuth2) for mail "
    "programs. Create an app password in the account's security settings and use it here, "
    "or configure oauth2.",
    "basic_auth_disabled": "The provider has disabled password (basic) authentication for this "
    "protocol. Use oauth2, or ask the tenant admin to re-enable SMTP AUTH / basic auth for "
    "this mailbox.",
    "web_login_required": "The provider wants a sign-in through a web browser first (security "
    "check). Log in to webmail once from this network, confirm the prompt, then retry.",
    "account_locked": "The account is locked or throttled after too many failed logins. Wait, "
    "unlock it at the provider, and fix the password before the next attempts.",
    "mechanism_unsupported": "The server and mailcanary share no authentication mechanism. "
    "Check which AUTH mechanisms the server offers (the transcript shows them).",
    "oauth_token_error": "The OAuth2 token endpoint refused to issue a token (see detail). "
    "Re-authorize the account (mailcanary oauth2 authorize) or fix the client id/secret.",
    "protocol_disabled": "{proto_upper} access is disabled for this account. Enable it in the "
    "mailbox settings (or the tenant's admin center) and retry.",
    "recipient_rejected": "The server refused the recipient address. Check that the receiving "
    "mailbox exists and accepts mail.",
    "sender_rejected": "The server refused the sender address. The account may not be allowed to "
    "send as this address.",
    "relay_denied": "The server refused to relay to this recipient. Authenticate before sending "
    "(submission port with AUTH) or allow relaying for this account.",
    "policy_rejected": "The message was refused by a policy (blocklist, SPF/DKIM/DMARC or content "
    "rule). The detail names the rule; fix the sender's DNS records or reputation.",
    "message_rejected": "The server refused the message itself. The detail says why (size, "
    "content or format).",
    "mailbox_full": "The mailbox is over its quota. Free space or raise the quota.",
    "sending_limit": "The account hit its sending limit. Lower the canary rate or raise the "
    "account's limit.",
    "rate_limited": "The server is throttling this client. Probe less often or ask the provider "
    "to raise the limit.",
    "too_many_connections": "The server refuses more simultaneous connections from this account "
    "or IP. Close other clients' idle sessions or raise the server's connection limit.",
    "unavailable": "The server says it is temporarily unavailable. If this lasts, check the "
    "server's health and logs.",
    "server_error": "The server reported an internal error. Check the server's logs.",
    "protocol_error": "The server's reply did not follow the protocol (see detail). Check that "
    "the port really speaks {proto_upper}.",
    "config_error": "mailcanary's configuration cannot be used as it is (see detail). Fix it and "
    "run `mailcanary validate`.",
    "spam_folder": "The canary was delivered to the Junk/Spam folder. Check the SPF, DKIM and "
    "DMARC results and the sender's reputation.",
    "lost": "The canary was accepted by the sending server but not seen by the deadline. Check the "
    "mail queue and logs of the servers in between.",
    "delayed": "The canary arrived, but later than the route's SLO. Check queues and greylisting "
    "between the servers.",
}


# The token endpoint's error code decides what a person must do about oauth_token_error.
OAUTH_HINTS: dict[str, str] = {
    "invalid_grant": "The refresh token was revoked or has expired (password change, consent "
    "withdrawn, unused for months, or Google's 7-day limit for apps in testing). Get a new one "
    "with `mailcanary oauth2 authorize --account {account}`.",
    "consent_required": "The user or tenant admin has not consented to the app's mail "
    "permissions. Grant admin consent for the app in Entra ID (API permissions), or run "
    "`mailcanary oauth2 authorize --account {account}` and accept the prompt.",
    "invalid_client": "The token endpoint does not accept the client id or secret. Check "
    "client_id, and put the app's current client secret into the secret file (secrets expire: "
    "create a new one in the app registration).",
    "unauthorized_client": "This app may not use this grant. In the app registration allow it "
    "(Microsoft: 'Allow public client flows' for device code; application permissions "
    "IMAP.AccessAsApp / SMTP.SendAsApp with admin consent for client_credentials).",
    "invalid_scope": "The requested scope is not valid for this app. Check oauth2.scope; "
    "Microsoft client_credentials needs https://outlook.office365.com/.default and the "
    "permissions granted with admin consent.",
    "access_denied": "The authorization server denied access. Grant the app the mailbox "
    "permission (admin consent), then run `mailcanary oauth2 authorize --account {account}`.",
    "network": "The OAuth2 token endpoint cannot be reached. Check token_url, DNS, firewall "
    "and proxy settings of this machine, and ca_file if the endpoint uses a private CA.",
    "bad_reply": "The token endpoint's reply is not an OAuth2 token response. Check that "
    "token_url is the provider's token endpoint (not its authorization page).",
    "missing_refresh_token": "There is no refresh token yet. Run `mailcanary oauth2 authorize "
    "--account {account}` once to sign in and store it.",
}

SLOW_ENDPOINT_HINT = (
    "The OAuth2 token endpoint did not answer within the account's timeout. Check that this "
    "machine reaches token_url (proxy, firewall) and the provider's status page."
)

BEARER_REJECTED_HINT = ("The mail server refused the access token the token endpoint issued "
                        "(the detail has its status). Check that oauth2.scope covers IMAP/SMTP, "
                        "that username is the mailbox the token belongs to, and for app-only "
                        "(client_credentials) access that the app was granted this mailbox.")


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
        hint.format(account=exc.account),
    )


@dataclass(frozen=True)
class Where:
    """What the classifier may mention in a hint."""

    host: str = "the server"
    port: int | str = "?"
    protocol: str = "imap"


def failure(
    reason: str, detail: str, where: Where | None = None, phase: str | None = None
) -> Failure:
    where = where or Where()
    hint = HINTS[reason].format(
        host=where.host,
        port=where.port,
        phase=phase or "the probe",
        proto_upper=where.protocol.upper(),
    )
    return Failure(CLASS_OF[reason], reason, detail, hint)


# --------------------------------------------------------------------------- server replies

_ENHANCED = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_IMAP_CODE = re.compile(r"\[([A-Z-]+)(?:[ \]])")

# Provider words, most specific first. Each entry: (regex on the lowercased reply, reason).
_PROVIDER_WORDS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), reason)
    for pattern, reason in (
        (r"application-specific password|app password", "app_password_required"),
        (r"please log ?in via your web browser|web login required|weblogin", "web_login_required"),
        (r"basic authentication is disabled|smtpclientauthentication is disabled|basic auth",
         "basic_auth_disabled"),
        (r"security defaults policy|did not meet the criteria to be authenticated",
         "basic_auth_disabled"),
        (r"not enabled for (imap|pop|smtp)|(imap|pop) access is disabled|"
         r"(imap|pop3?) (is )?disabled|user is authenticated but not connected",
         "protocol_disabled"),
        (r"too many bad auth attempts|too many (failed )?login (attempts|failures)|"
         r"account (is )?(locked|disabled|suspended)|temporarily (locked|blocked)",
         "account_locked"),
        (r"too many (simultaneous |concurrent )?connections|maximum number of connections|"
         r"connection limit", "too_many_connections"),
    )
)


def _provider_reason(text: str) -> str | None:
    # Multi-line replies break phrases across lines ("534-5.7.14 Please log in\n534-5.7.14
    # via your web browser"): drop the continuation prefixes and fold the whitespace.
    low = " ".join(re.sub(r"(?m)^(\d{3}[ -])?(\d\.\d{1,3}\.\d{1,3} )?", "", text).lower().split())
    for pattern, reason in _PROVIDER_WORDS:
        if pattern.search(low):
            return reason
    return None


def _enhanced(text: str) -> tuple[int, int, int] | None:
    match = _ENHANCED.search(text)
    if match is None:
        return None
    return int(match.group(1)), int(match.group(2)), int(match.group(3))


def classify_smtp_reply(command: str, code: int, text: str) -> str:
    """Reason for an SMTP reply that was not the expected one at `command`."""
    command = command.upper()
    low = text.lower()
    enhanced = _enhanced(text)
    words = _provider_reason(text)
    if words is not None and (command in ("AUTH", "EHLO", "GREETING") or code in (421, 454)):
        return words
    if enhanced is not None:
        _, subject, detail = enhanced
        if (subject, detail) == (7, 8):
            return "invalid_credentials"
        if (subject, detail) == (7, 14):
            return "web_login_required"
        if (subject, detail) == (7, 9):
            return "mechanism_unsupported"
        if (subject, detail) in ((7, 11),) or (
            (subject, detail) == (7, 0) and ("starttls" in low or "tls" in low)
        ):
            return "tls_required"
        if (subject, detail) == (2, 2):
            return "mailbox_full"
        if re.search(r"sending limit|sending quota|quota exceeded|limit exceeded", low):
            return "sending_limit"
        if (subject, detail) == (7, 1) and ("relay" in low):
            return "relay_denied"
        if (subject, detail) in ((1, 1), (1, 2), (1, 3), (1, 6), (1, 10), (2, 1)):
            return "recipient_rejected" if command != "MAIL" else "sender_rejected"
        if (subject, detail) in ((1, 7), (1, 8)):
            return "sender_rejected"
        if (subject, detail) == (7, 0) and code // 100 == 4:
            if re.search(r"rate|too many|limit|try again later", low):
                return "rate_limited"
            return "unavailable"
        if subject == 7 and command in ("MAIL", "RCPT", "DATA", "GREETING", "EHLO"):
            if command == "MAIL" and detail == 1 and "sender" in low:
                return "sender_rejected"
            return "policy_rejected"
        if subject == 6 or (subject, detail) == (3, 4):
            return "message_rejected"
    if words is not None:
        return words
    if "relay" in low and ("denied" in low or "not permitted" in low):
        return "relay_denied"
    if code == 535:
        return "invalid_credentials"
    if code == 534:
        return "mechanism_unsupported"
    if code in (504, 502) and command == "AUTH":
        return "mechanism_unsupported"
    if code == 530 and ("tls" in low):
        return "tls_required"
    if code == 530:
        return "invalid_credentials" if command != "AUTH" else "tls_required"
    if code in (452, 552) and ("full" in low or "quota" in low or "storage" in low):
        return "mailbox_full"
    if code == 421 or (code == 450 and command == "GREETING"):
        if re.search(r"rate|too many (messages|requests)|limit", low):
            return "rate_limited"
        return "unavailable"
    if code in {450, 451, 452, 454}:
        if re.search(r"rate|too many|limit", low):
            return "rate_limited"
        return "unavailable"
    if command == "RCPT" and code // 100 == 5:
        return "recipient_rejected"
    if command == "MAIL" and code // 100 == 5:
        return "sender_rejected"
    if command == "DATA" and code // 100 == 5:
        return "message_rejected"
    if command == "GREETING" and code == 554:
        return "unavailable"
    if code // 100 == 4:
        return "unavailable"
    if code in (500, 501, 502, 503):
        return "protocol_error"
    if code // 100 == 5:
        return "server_error"
    return "protocol_error"


def classify_imap_reply(command: str, text: str) -> str:
    """Reason for an IMAP NO/BAD/BYE (the text includes the status word)."""
    command = command.upper()
    match = _IMAP_CODE.search(text)
    code = match.group(1) if match else None
    words = _provider_reason(text)
    if code == "WEBALERT":
        return "web_login_required"
    if words is not None and code in (None, "ALERT", "AUTHENTICATIONFAILED", "LIMIT",
                                      "CONTACTADMIN", "UNAVAILABLE", "AUTHORIZATIONFAILED"):
        return words
    if code in ("AUTHENTICATIONFAILED", "AUTHORIZATIONFAILED", "EXPIRED"):
        return "invalid_credentials"
    if code == "PRIVACYREQUIRED":
        return "tls_required"
    if code == "CONTACTADMIN":
        return "account_locked"
    if code == "OVERQUOTA":
        return "mailbox_full"
    if code == "LIMIT":
        return "rate_limited"
    if code in ("UNAVAILABLE", "INUSE"):
        return "unavailable"
    if code == "SERVERBUG":
        return "server_error"
    status = text.split(" ", 1)[0].upper()
    if status == "BAD":
        return "protocol_error"
    if command in ("LOGIN", "AUTHENTICATE"):
        if status == "BYE":
            return "unavailable"
        return "invalid_credentials"
    if status == "BYE":
        return "unavailable"
    return "protocol_error" if command in ("GREETING", "CAPABILITY") else "server_error"


# --------------------------------------------------------------------------- exceptions

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


def exception_reason(exc: BaseException, phase: str | None) -> tuple[str, str]:
    """(reason, detail) for an exception raised in `phase`."""
    if isinstance(exc, ServerReplyError):
        if isinstance(exc, SmtpReplyError):
            return classify_smtp_reply(exc.command, exc.code or 0, exc.text), str(exc)
        return classify_imap_reply(exc.command, exc.text), str(exc)
    if isinstance(exc, DeliveryProblem):
        return exc.reason, str(exc)
    if isinstance(exc, StateError):
        return "config_error", str(exc)
    if isinstance(exc, StartTLSUnavailable):
        return "starttls_unavailable", str(exc)
    if isinstance(exc, TLSRequired):
        return "tls_required", str(exc)
    if isinstance(exc, MechanismUnsupported):
        return "mechanism_unsupported", str(exc)
    if isinstance(exc, ProtocolViolation):
        return "protocol_error", str(exc)
    if isinstance(exc, CredentialError):
        return "config_error", str(exc)
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
    return "protocol_error", f"{type(exc).__name__}: {exc}"


def classify(exc: BaseException, phase: str | None, where: Where | None = None) -> Failure:
    if isinstance(exc, OAuthTokenError):
        return oauth_failure(exc)
    if isinstance(exc, BearerRejected):
        reason, detail = exception_reason(exc.reply, phase)
        fail = failure(reason, detail, where, phase)
        if reason == "invalid_credentials":
            return Failure(fail.cls, reason, detail, BEARER_REJECTED_HINT)
        return fail
    reason, detail = exception_reason(exc, phase)
    fail = failure(reason, detail, where, phase)
    if reason == "timeout" and phase == "token":
        return Failure(fail.cls, reason, detail, SLOW_ENDPOINT_HINT)
    return fail
