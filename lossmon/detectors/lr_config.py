"""A learning rate far outside the optimizer's usual range, at train begin.

Reads the header's `optimizer` (class and learning rate; for a schedule,
its value at step 0, or for a warm-up the rate it climbs to: a warm-up
that starts from 0 is not a zero learning rate). Compared with the Keras default of that optimizer
(0.01 for SGD, 0.001 for Adam and the other adaptive ones): 300x the
default or more (Adam >= 0.3, SGD >= 3.0) is almost never right, and the
seeds' Adam(learning_rate=1.0) is 1000x. 10x-100x (Adam 0.01-0.1, SGD
0.1-1.0) is seen in working setups, so it is left to the dynamic detectors
(divergence, update_ratio) to judge from the run itself.
"""

from __future__ import annotations

import math

from lossmon.detect.base import Detector, Finding, Severity, Verdict
from lossmon.detectors._util import RunInfo, fmt_lr, fmt_times, schedule_peak
from lossmon.format import HEADER, Record, json_safe


class LrConfig(Detector):
    """At train begin: WARNING for lr >= `high` x or <= `low` x the
    optimizer's default; CRITICAL for a learning rate <= 0 or non-finite."""

    id = "lr_config"
    title = "Learning rate out of range"
    kinds = frozenset({HEADER})

    def __init__(self, high: float = 300.0, low: float = 1e-3) -> None:
        self.high, self.low = high, low

    def observe(self, record: Record) -> list[Verdict]:
        if record.kind != HEADER:
            return []
        optimizer = record.data.get("optimizer")
        raw = optimizer.get("learning_rate") if isinstance(optimizer, dict) else None
        peak = schedule_peak(optimizer)
        if peak is not None and peak > 0:
            raw = peak  # a warm-up starts from 0 by design: judge the rate it climbs to
        if isinstance(raw, str) or (isinstance(raw, float) and not math.isfinite(raw)) or (
            isinstance(raw, (int, float)) and not isinstance(raw, bool) and raw <= 0
        ):
            message = f"learning rate is {raw}: the optimizer cannot make progress"
            return [Finding(Severity.CRITICAL, message, "set a positive, finite learning rate", json_safe({"learning_rate": raw}))]
        info = RunInfo()
        info.update(record)
        ratio, lr, default = info.lr_ratio(), info.lr, info.default_lr
        if ratio is None or lr is None or default is None:
            return []
        evidence = {
            "learning_rate": lr,
            "optimizer": info.optimizer,
            "default": default,
            "ratio": ratio,
            "schedule": optimizer.get("schedule") if isinstance(optimizer, dict) else None,
        }
        if ratio >= self.high:
            message = f"learning rate {fmt_lr(lr)} is {fmt_times(ratio)}x {info.optimizer}'s default {fmt_lr(default)}"
            hint = (
                f"start from {fmt_lr(default)} (or 3x either side); a rate this high makes the "
                "loss jump and can kill ReLU units for good"
            )
            return [Finding(Severity.WARNING, message, hint, json_safe(evidence))]
        if ratio <= self.low:
            message = f"learning rate {fmt_lr(lr)} is {fmt_times(1 / ratio)}x below {info.optimizer}'s default {fmt_lr(default)}"
            hint = f"start from {fmt_lr(default)}; a rate this low barely moves the weights"
            return [Finding(Severity.WARNING, message, hint, json_safe(evidence))]
        return []
