"""When an inbound watch may call its app's trigger again, and how long a run may take.

Light on purpose: the kind (inbound/kind.py) needs the timeout without loading the probe.
"""

from __future__ import annotations

from mailcanary.config import Config, InboundConfig

GRACE_SHARE = 0.1  # a run due slightly early waits up to this share of the interval...
GRACE_MAX = 60.0  # ...at most this long; earlier than that, the last verdict is reported


def interval_of(config: Config, watch: InboundConfig) -> float:
    return watch.interval or config.defaults.interval


def grace(config: Config, watch: InboundConfig) -> float:
    return min(GRACE_SHARE * interval_of(config, watch), GRACE_MAX)


def timeout(config: Config, target: str) -> float:
    """Login, trigger and final search each get the account's timeout, plus the deadline."""
    watch = config.inbound_watch(target)
    limit = config.timeout_of(config.account(watch.account))
    return watch.deadline + 3 * limit + grace(config, watch)
