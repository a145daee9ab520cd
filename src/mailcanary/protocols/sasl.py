"""The SASL messages that carry a bearer token: XOAUTH2 (Google) and OAUTHBEARER (RFC 7628)."""

from __future__ import annotations

import base64

MECHANISMS = ("xoauth2", "oauthbearer")


def _gs2_name(user: str) -> str:
    # RFC 5801 saslname: "," and "=" are escaped.
    return user.replace("=", "=3D").replace(",", "=2C")


def initial_response(mechanism: str, user: str, token: str, host: str, port: int) -> str:
    """Base64 client first message for `mechanism` (the caller registers it as a secret)."""
    if mechanism == "xoauth2":
        raw = f"user={user}\x01auth=Bearer {token}\x01\x01"
    elif mechanism == "oauthbearer":
        raw = (f"n,a={_gs2_name(user)},\x01host={host}\x01port={port}\x01"
               f"auth=Bearer {token}\x01\x01")
    else:
        raise ValueError(f"unknown SASL mechanism {mechanism!r}")
    return base64.b64encode(raw.encode()).decode()


def error_answer(mechanism: str) -> str:
    """What the client sends after the server's error challenge to get the final reply:
    an empty line for XOAUTH2, a base64 ``\\x01`` ("AQ==") for OAUTHBEARER (RFC 7628 3.2.3)."""
    return "AQ==" if mechanism == "oauthbearer" else ""


def decode_challenge(challenge: str) -> str:
    """The server's error status (base64 JSON) as text, or the raw challenge if not base64."""
    text = challenge.strip()
    try:
        return base64.b64decode(text, validate=True).decode("utf-8", "replace")
    except ValueError:
        return text
