"""The daemon's own alerts: a state machine per (probe, target) and one sink per [[alerts]]."""

from mailcanary.daemon.alerts.engine import AlertEngine
from mailcanary.daemon.alerts.state import AlertEvent, AlertTracker

__all__ = ["AlertEngine", "AlertEvent", "AlertTracker"]
