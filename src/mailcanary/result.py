"""What one probe run produced: the contract's JSON object, plus the transcript.

`ProbeContext` is handed to every probe. The probe marks its phases with
``async with ctx.phase("auth"):``; the runner reads ``ctx.current_phase`` when something
goes wrong, so probes never decide their own success, duration or phase of failure.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, quote_plus

from mailcanary.credentials import MASK
from mailcanary.diagnosis import Where

PHASES = (
    "dns",
    "connect",
    "tls",
    "greeting",
    "starttls",
    "token",
    "auth",
    "select",
    "trigger",
    "send",
    "deliver",
    "cleanup",
)


@dataclass(slots=True, frozen=True)  # one shared per certificate and version (tls_info)
class TLSInfo:
    version: str | None = None
    not_after: str | None = None  # RFC 3339, UTC
    not_after_timestamp: float | None = None
    issuer: str | None = None
    subject: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"version": self.version, "not_after": self.not_after, "issuer": self.issuer}


def _base64_cores(raw: bytes) -> set[str]:
    """The base64 text of `raw` wherever it sits in a longer blob (SASL PLAIN's
    ``\0user\0pass``, XOAUTH2's ``auth=Bearer tok``): for each of the three alignments,
    the characters made of `raw`'s bytes alone, in standard and URL-safe alphabets."""
    whole = base64.b64encode(raw).decode()
    cores = {whole, whole.translate(_URLSAFE), whole.rstrip("=")}
    for shift in range(3):
        padded = b"\0" * shift + raw
        text = base64.b64encode(padded).decode()
        core = text[4: 4 * (len(padded) // 3) - 4]  # groups of `raw` bytes, both sides cut
        if len(core) >= 4:
            cores.update((core, core.translate(_URLSAFE)))
    return cores


_URLSAFE = str.maketrans("+/", "-_")


def encoded_forms(value: str) -> set[str]:
    """Every way a secret is written out that we know of: itself, base64 (alone or inside
    a SASL blob), percent-encoding, and Python/JSON escapes (``repr``, httpx's errors)."""
    raw = value.encode()
    forms = {value, quote(value, safe=""), quote_plus(value, safe=""), quote(value),
             repr(value)[1:-1], repr(raw)[2:-1], json.dumps(value)[1:-1]}
    forms |= _base64_cores(raw)
    return {form for form in forms if len(form) >= 3}


class Redactor:
    """Replaces every registered secret (and its encodings) with ``***`` in any text.

    The encoded forms are worked out when a text first needs redacting, not when a secret is
    added: a healthy probe of the daemon redacts nothing but empty strings."""

    def __init__(self) -> None:
        self._raw: list[str] = []
        self._forms: list[str] | None = []

    def add(self, *values: str) -> None:
        for value in values:
            if value and len(value) >= 3:
                self._raw.append(value)
                self._forms = None

    def _all_forms(self) -> list[str]:
        if self._forms is None:
            forms: set[str] = set()
            for value in self._raw:
                forms |= encoded_forms(value)
            self._forms = sorted(forms, key=len, reverse=True)
        return self._forms

    def __call__(self, text: str) -> str:
        if not text or not self._raw:
            return text
        for value in self._all_forms():
            if value in text:
                text = text.replace(value, MASK)
        return text


# A hostile server must not grow the transcript without bound (an endless reply, a 20 MB
# line): each line is cut, and after so many lines only a marker is kept.
TRANSCRIPT_LINE = 1000
TRANSCRIPT_LINES = 2000


@dataclass
class Transcript:
    redact: Redactor
    lines: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    enabled: bool = True  # the daemon's scheduled probes keep none: nobody reads them

    def note(self, direction: str, text: str) -> None:
        """direction: "C" (client), "S" (server) or "*" (what the prober did)."""
        if not self.enabled:
            return
        elapsed = time.monotonic() - self.started
        for raw in text.splitlines() or [""]:
            if len(self.lines) >= TRANSCRIPT_LINES:
                self.lines[-1] = f"{elapsed:8.3f} *: ... (transcript cut after "\
                    f"{TRANSCRIPT_LINES} lines)"
                return
            line = self.redact(raw)  # before cutting: no half secret is left
            if len(line) > TRANSCRIPT_LINE:
                line = f"{line[:TRANSCRIPT_LINE]}... ({len(line)} characters)"
            self.lines.append(f"{elapsed:8.3f} {direction}: {line}")


@dataclass
class ProbeContext:
    probe: str
    target: str
    redact: Redactor = field(default_factory=Redactor)
    phases: dict[str, float] = field(default_factory=dict)
    current_phase: str | None = None
    tls: TLSInfo | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    where: Where | None = None  # the endpoint, for hints ("nothing listens on HOST:PORT")
    keep_transcript: bool = True
    # The daemon's or the `check` run's shared services (protocols/runtime.py's `Runtime`:
    # resolver cache, connection slots, HELO name, token sources). Typed there: this layer
    # may not import the protocol layer. None: the protocols give the context its own.
    runtime: object | None = None
    transcript: Transcript = field(init=False)

    def __post_init__(self) -> None:
        self.transcript = Transcript(self.redact, enabled=self.keep_transcript)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Time a phase; on failure it stays current so the runner reports it."""
        assert name in PHASES, name
        self.current_phase = name
        start = time.perf_counter()
        try:
            yield
        finally:
            self.phases[name] = self.phases.get(name, 0.0) + time.perf_counter() - start
        self.current_phase = None


@dataclass(slots=True)  # the last of each of 20,000 targets is kept: no __dict__ each
class ProbeResult:
    probe: str
    target: str
    ok: bool
    cls: str
    reason: str
    phase: str | None
    detail: str
    hint: str
    duration_seconds: float
    phases: dict[str, float]
    tls: TLSInfo | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    transcript: list[str] = field(default_factory=list)
    finished_at: float = field(default_factory=time.time)

    def as_json(self, *, transcript: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "probe": self.probe,
            "target": self.target,
            "ok": self.ok,
            "class": self.cls,
            "reason": self.reason,
            "phase": self.phase,
            "detail": self.detail,
            "hint": self.hint,
            "duration_seconds": round(self.duration_seconds, 6),
            "phases": {k: round(v, 6) for k, v in self.phases.items()},
        }
        if self.tls is not None:
            out["tls"] = self.tls.as_json()
        out.update(self.extra)
        if transcript:
            out["transcript"] = self.transcript
        return out
