"""A canary's verdict given by a sweep, when its own probe never gave one (cancelled by a
SIGTERM, or the daemon died or was killed): a result like any other round trip's, so it is
counted once in `mailcanary_canaries_total` and the delivery histogram, and alerted on."""

from __future__ import annotations

from mailcanary.config import Config
from mailcanary.diagnosis import failure
from mailcanary.probes.roundtrip.state import Record
from mailcanary.probes.roundtrip.sweep import LateCanary
from mailcanary.result import ProbeResult


def _result(route: str, reason: str, detail: str, extra: dict[str, object]) -> ProbeResult:
    fail = failure(reason, detail)
    ok = reason == "ok"
    return ProbeResult(
        probe="roundtrip", target=route, ok=ok, cls=fail.cls, reason=reason,
        phase=None if ok else "deliver", detail=detail, hint=fail.hint,
        duration_seconds=0.0, phases={}, extra={**extra, "verdict_after_restart": True},
    )


def found_verdict(config: Config, canary: LateCanary) -> ProbeResult | None:
    """A canary found by a sweep: delivered (in time, late, to spam) or lost (too late)."""
    routes = {r.route_name: r for r in config.routes}
    route = routes.get(canary.route)
    if route is None:
        return None
    delivery = canary.delivery_seconds
    extra: dict[str, object] = {"placement": canary.placement, "folder": canary.folder,
                                "delivery_seconds": delivery}
    where = f"in folder {canary.folder!r}"
    if canary.placement == "other" or (delivery is not None and delivery > route.deadline):
        return _result(route.route_name, "lost", f"not seen within {route.deadline:g} s; "
                       f"found afterwards {where} (verdict after a restart)", extra)
    if canary.placement == "spam":
        return _result(route.route_name, "spam_folder", f"delivered to the junk folder "
                       f"{canary.folder!r} (verdict after a restart)", extra)
    if delivery is not None and delivery > route.slo:
        return _result(route.route_name, "delayed", f"delivered after {delivery:.3f} s; the "
                       f"route's slo is {route.slo:g} s (verdict after a restart)", extra)
    return _result(route.route_name, "ok", "", extra)


def lost_verdict(config: Config, record: Record) -> ProbeResult | None:
    """An in-flight canary that no sweep found by its original deadline."""
    routes = {r.route_name: r for r in config.routes}
    route = routes.get(record.route)
    if route is None:
        return None
    return _result(route.route_name, "lost", "not seen in any folder by its deadline "
                   f"({route.deadline:g} s after the SMTP accept; verdict after a restart)",
                   {"placement": "missing", "delivery_seconds": None})
