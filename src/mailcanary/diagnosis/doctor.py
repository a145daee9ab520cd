"""The settings doctor's decisions: which failures a wrong port or security can explain,
which other settings to try, which working one to suggest, and the words of the suggestion.

Pure logic (the network part is probes/doctor.py), so every case is a unit test. A failure
qualifies only when it happened before a login could be tried and looks like a port or
security mismatch: nothing listening, silence before the greeting (plaintext to an implicit
TLS port), a TLS handshake that read a plaintext greeting, STARTTLS not offered, a login
refused before TLS, or another protocol's greeting. A wrong password or a bad certificate
never qualifies: no other setting would fix it.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailcanary.i18n import N_, Text

# (reason, phases) pairs that a wrong port or security setting explains.
_QUALIFYING: dict[str, tuple[str, ...]] = {
    "connection_refused": ("connect",),
    "timeout": ("connect", "tls", "greeting"),
    "handshake_failed": ("tls",),
    "starttls_unavailable": ("starttls", "greeting"),
    "tls_required": ("auth", "greeting", "starttls"),
    "protocol_error": ("greeting",),  # another protocol's greeting: the wrong port
}

# The contract's standard ports per protocol, in its order.
STANDARD: dict[str, tuple[tuple[int, str], ...]] = {
    "imap": ((993, "tls"), (143, "starttls")),
    "smtp": ((465, "tls"), (587, "starttls"), (25, "starttls")),
    "pop3": ((995, "tls"), (110, "starttls")),
}

_WORDS = {"tls": N_("implicit TLS"), "starttls": N_("STARTTLS")}


@dataclass(frozen=True)
class Candidate:
    port: int
    security: str  # "tls" or "starttls"

    def as_json(self) -> dict[str, int | str]:
        return {"port": self.port, "security": self.security}


def qualifies(reason: str, phase: str | None) -> bool:
    """True when a wrong port or security setting could explain this failure."""
    return phase is not None and phase in _QUALIFYING.get(reason, ())


def candidates(protocol: str, port: int, security: str) -> list[Candidate]:
    """Settings to try, in the contract's order: the other security mode(s) on the configured
    port, then the protocol's standard ports; never the configured setting itself."""
    out: list[Candidate] = []
    for other in ("tls", "starttls"):
        if other != security:
            out.append(Candidate(port, other))
    for std_port, std_security in STANDARD.get(protocol, ()):
        cand = Candidate(std_port, std_security)
        if cand not in out and (std_port, std_security) != (port, security):
            out.append(cand)
    return out


def rank(cand: Candidate, order: list[Candidate]) -> tuple[int, int]:
    """Implicit TLS before STARTTLS (RFC 8314), then the contract's order."""
    return (0 if cand.security == "tls" else 1, order.index(cand))


def best(working: list[Candidate], order: list[Candidate]) -> Candidate | None:
    return min(working, key=lambda c: rank(c, order)) if working else None


def suggestion_hint(protocol: str, host: str, cand: Candidate) -> Text:
    """The sentence a person can act on, with the line to paste into the account."""
    line = f'{protocol} = {{ host = "{host}", port = {cand.port}, security = "{cand.security}" }}'
    return Text(
        "{host} answers {protocol} with {security} on port {port} (checked without logging "
        "in): in this account set {line}.",
        host=host, protocol=protocol.upper(), security=Text(_WORDS[cand.security]),
        port=cand.port, line=line,
    )
