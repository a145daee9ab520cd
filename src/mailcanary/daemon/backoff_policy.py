"""Auth backoff: probing an account less often after auth or rate-limit failures.

Repeated failed logins get accounts locked (Microsoft, Yahoo, fail2ban). After an ``auth``
or ``rate_limited`` failure a probe's interval doubles per consecutive such failure, up to
8x; one result of another class restores it. Kept in one small class (get / record /
forget); daemon/backoff.py keeps it in `state_dir` across reloads and restarts.
"""

from __future__ import annotations

BACKOFF_CLASSES = ("auth", "rate_limited")
MAX_BACKOFF = 8


class Backoff:
    def __init__(self) -> None:
        self.failures: dict[tuple[str, str], int] = {}  # (probe, target) -> streak

    def get(self, probe: str, target: str) -> int:
        """Consecutive auth/rate-limited failures of this probe."""
        return self.failures.get((probe, target), 0)

    def factor(self, probe: str, target: str) -> int:
        return min(1 << min(self.get(probe, target), 8), MAX_BACKOFF)

    def active(self, probe: str, target: str) -> bool:
        return self.get(probe, target) > 0

    def record(self, probe: str, target: str, cls: str) -> tuple[int, int]:
        """Count one result of class `cls`: (factor before, factor after)."""
        before = self.factor(probe, target)
        if cls in BACKOFF_CLASSES:
            self.failures[probe, target] = self.get(probe, target) + 1
        else:
            self.failures.pop((probe, target), None)
        return before, self.factor(probe, target)

    def set(self, probe: str, target: str, exponent: int) -> None:
        """A saved streak (restored after a restart); 0 clears it."""
        if exponent > 0:
            self.failures[probe, target] = exponent
        else:
            self.failures.pop((probe, target), None)

    def forget(self, probe: str, target: str) -> None:
        self.failures.pop((probe, target), None)
