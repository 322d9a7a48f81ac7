"""Judging silence: the stalled detector needs a clock tick now and then.

Detectors see only records, and a stalled run writes none, so `watch` feeds
every unfinished run a synthetic tick record about once a second (see
lossmon.detectors.stalled).
"""

from __future__ import annotations

from lossmon.detect import Alert
from lossmon.monitor import Monitor


def feed_ticks(monitor: Monitor, now: float) -> list[Alert]:
    """Feed one tick per unfinished run; return the incidents that changed."""
    try:
        from lossmon.detectors.stalled import ticks
    except ImportError:  # an older detector set without the stalled detector
        return []
    with monitor.lock:  # one feed, so the engine's `news` holds what all of them opened or resolved
        return monitor.engine.feed_many(list(ticks(monitor.store.runs.values(), now)))


def stalled_runs(monitor: Monitor) -> set[str] | None:
    """The runs with an active stalled alert, so the status line agrees
    with the alert list; None when the stalled detector is switched off
    (the status line judges silence itself then)."""
    engine = monitor.engine
    if "stalled" not in getattr(engine, "classes", {}):
        return None
    return {alert.run for alert in engine.alerts if alert.detector == "stalled" and alert.active}
