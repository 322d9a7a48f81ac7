"""The per-step loss swings up and down by large factors instead of falling.

A learning rate (or momentum) too high for the curvature makes each step
overshoot: the loss zig-zags, step after step, between a low and a high
value. Unlike divergence it need not grow; unlike batch noise the swings
are several-fold and alternate in sign.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence

import numpy as np

from lossmon.block import BatchBlock
from lossmon.detect.base import Clear, Detector, Finding, Severity, Verdict
from lossmon.detectors._util import (
    CLEAR,
    CAUSES,
    Order,
    RunInfo,
    epoch_label,
    finite,
    fmt,
    fmt_lr,
    fresh_finite,
    hysteresis,
    log_each,
    median,
    row_medians,
    window_counts,
    windows,
)
from lossmon.format import BATCH, EPOCH, HEADER, Record, json_safe


class Oscillation(Detector):
    """Median step-to-step change of the loss >= `factor`x, alternating.

    Reads the per-step `loss` of batch records (not Keras' running means,
    which smooth a zig-zag away). Over the last `window` steps it takes the
    log of each loss and the changes between consecutive steps: the
    oscillation is the median absolute change (a robust "typical swing",
    untouched by a single spike) and the share of sign reversals. It fires
    when the typical swing is at least `factor` (3x: ordinary batch noise
    is 1.2-1.6x) and at least `alternation` (50%) of consecutive changes
    reverse direction. WARNING. It clears when the typical swing stays
    below half the threshold in log terms (sqrt(3) = 1.7x) for `window`
    steps in a row.
    """

    id = "oscillation"
    title = "Loss oscillating"
    kinds = frozenset({HEADER, BATCH, EPOCH})
    defers_to = CAUSES["oscillation"]
    peak_key = "typical_swing"

    def __init__(self, monitor: str = "loss", factor: float = 3.0, alternation: float = 0.5, window: int = 12) -> None:
        self.monitor = monitor
        self.factor = max(float(factor), 1.01)
        self.alternation = min(max(float(alternation), 0.0), 1.0)
        self.window = max(int(window), 6)
        self.info = RunInfo()
        self.order = Order()
        self._logs: deque[float] = deque(maxlen=self.window)
        self._values: deque[float] = deque(maxlen=self.window)
        self._active = False
        self._calm = 0  # steps in a row below the clearing threshold

    def observe(self, record: Record) -> list[Verdict]:
        self.info.update(record)
        if record.kind != BATCH or not self.order.is_new(record):
            return []
        loss = finite(record.values.get(self.monitor))
        if loss is None or loss <= 0:
            return []
        self._logs.append(float(log_each(np.array([loss]))[0]))  # as observe_block takes them
        self._values.append(loss)
        if len(self._logs) < self.window:
            return []
        logs = list(self._logs)
        deltas = [b - a for a, b in zip(logs, logs[1:])]
        swing = median([abs(d) for d in deltas])
        turns = sum(1 for a, b in zip(deltas, deltas[1:]) if a * b < 0) / max(len(deltas) - 1, 1)
        threshold = math.log(self.factor)
        if swing >= threshold and turns >= self.alternation:
            self._active, self._calm = True, 0
        elif self._active and swing < threshold / 2:
            # Calm for a whole window before clearing, so a run that keeps
            # zig-zagging is one alert, not a string of them.
            self._calm += 1
            if self._calm >= self.window:
                self._active, self._calm = False, 0
                return [Clear()]
        elif self._active:
            self._calm = 0
        if not self._active:
            return []
        return [self._finding(record, list(self._values), math.exp(swing), turns)]

    def observe_block(self, block: BatchBlock) -> list[tuple[int, Verdict]]:
        """`observe` over many rows as column arithmetic (long blocks)."""
        found = fresh_finite(block, self.order, self.monitor, positive=True)
        if found is None:
            return []
        rows, values = found
        seen = len(self._values)
        earlier = np.asarray(self._values)
        logs = np.concatenate((np.asarray(self._logs), log_each(values)))
        self._values.extend(values[-self.window :].tolist())  # the deques keep the last `window`
        self._logs.extend(logs[max(seen, len(logs) - self.window) :].tolist())
        # Row k of the block is judged over the `window` values ending at it.
        first = max(self.window - 1 - seen, 0)
        if first >= len(rows):
            return []
        rows = rows[first:]
        n = len(rows)
        deltas = logs[1:] - logs[:-1]  # np.diff's arithmetic, without its checks
        size = self.window - 1
        threshold = math.log(self.factor)
        # A window with fewer than half its moves at half the threshold has
        # its median below that: calm, not firing. Only the other rows need
        # the median; in a healthy run that is hardly any.
        moves = np.abs(deltas)
        big = moves >= threshold / 2
        if np.count_nonzero(big) < size // 2:  # too few for any window (the usual block): none open
            open_rows = np.empty(0, np.intp)
        else:
            open_rows = np.flatnonzero(window_counts(big, size)[-n:] >= size // 2)
        if not len(open_rows) and not self._active:
            return []  # all calm, no alert on: nothing to say
        moves = windows(moves, size)[-n:]
        turns = window_counts(deltas[:-1] * deltas[1:] < 0, self.window - 2)[-n:] / max(self.window - 2, 1)
        swing = np.full(n, -np.inf)
        if len(open_rows):
            swing[open_rows] = row_medians(moves[open_rows])
        # Calm for a whole window before clearing, so a run that keeps
        # zig-zagging is one alert, not a string of them.
        fire = (swing >= threshold) & (turns >= self.alternation)
        calm = swing < threshold / 2

        def finding(k: int) -> tuple[int, Verdict]:
            median = float(swing[k]) if k in open_rows else float(row_medians(moves[k : k + 1])[0])
            ends = windows(np.concatenate((earlier, values)), self.window)[-n:]
            return int(rows[k]), self._finding(block.record(int(rows[k])), ends[k], math.exp(median), float(turns[k]))

        def peak(first: int, last: int) -> np.ndarray:  # the swings (logs) of rows first..last, for the incident's peak
            out = swing[first : last + 1].copy()
            unknown = np.flatnonzero(np.isneginf(out))
            if len(unknown):
                out[unknown] = row_medians(moves[unknown + first])
            return out

        events, self._active, self._calm = hysteresis(fire, fire | ~calm, self.window, self._active, self._calm, peak=peak)
        return [(int(rows[k]), Clear()) if what == CLEAR else finding(k) for k, what in events]

    def _finding(self, record: Record, window: Sequence[float], swing: float, turns: float) -> Finding:
        values = sorted(float(v) for v in window)
        low, high = values[len(values) // 10], values[-1 - len(values) // 10]
        message = (
            f"{self.monitor} oscillating at step {record.step} (epoch {epoch_label(record.epoch)}): "
            f"over the last {self.window} steps it swings {swing:.1f}x from one step to the next "
            f"(between about {fmt(low)} and {fmt(high)}), reversing direction {turns:.0%} of the time"
        )
        evidence = {
            "typical_swing": swing,
            "reversals": turns,
            "low": low,
            "high": high,
            "window": self.window,
            "step": record.step,
            "epoch": record.epoch,
        }
        info = self.info
        evidence.update(info.optimizer_evidence())
        too_high = info.lr_too_high(3.0)
        if too_high:
            head = f"Each step overshoots: the {too_high}"
        elif info.lr is not None:
            head = f"Each step overshoots: lower the learning rate 3-10x ({fmt_lr(info.lr)} -> {fmt_lr(info.lr / 3)} or {fmt_lr(info.lr / 10)})"
        else:
            head = "Each step overshoots: lower the learning rate 3-10x"
        hint = (
            head
            + "; with SGD lower the momentum (0.9 -> 0.5) or switch to Adam; a decaying schedule "
            "(ExponentialDecay, ReduceLROnPlateau) calms it later in the run; standardise inputs "
            "(StandardScaler) so no direction is much steeper than the others."
        )
        return Finding(Severity.WARNING, message, hint, json_safe(evidence))
