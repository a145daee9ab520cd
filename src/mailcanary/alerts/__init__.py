"""The daemon's own alerts: a state machine per (probe, target) and one sink per [[alerts]]."""

from .engine import AlertEngine
from .state import AlertEvent, AlertTracker

__all__ = ["AlertEngine", "AlertEvent", "AlertTracker"]
