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
from typing import NamedTuple

import numpy as np

from lossmon.block import BatchBlock
from lossmon.detect.base import Clear, Detector, Finding, Severity, Verdict
from lossmon.detectors._util import (
    CAUSES,
    CLEAR,
    LOWER,
    Order,
    RunInfo,
    epoch_label,
    finite,
    fmt,
    fresh_finite,
    hysteresis,
    log_each,
    lr_advice,
    median,
    row_medians,
    sentence,
    window_counts,
    windows,
)
from lossmon.detectors._start import RunStart
from lossmon.format import BATCH, EPOCH, HEADER, Record, json_safe


class _Windows(NamedTuple):
    """What the rule says of each window (one per row)."""

    swing: np.ndarray  # log of the typical step-to-step swing
    zigzag: np.ndarray  # lag-1 autocorrelation of the window's log losses
    share: np.ndarray  # zig-zagging windows among the last `window`
    fire: np.ndarray
    calm: np.ndarray


class Oscillation(Detector):
    """The per-step loss zig-zags by `factor`x, sustained, at a loss that has
    not converged.

    Reads the per-step `loss` of batch records (not Keras' running means,
    which smooth a zig-zag away). Each window of `window` steps is judged
    on the log of the losses: the typical swing (the median absolute
    change from one step to the next, untouched by a single spike), the
    zig-zag (the lag-1 autocorrelation of the window's values: near -1 when
    high and low steps alternate, near 0 for independent batch noise) and
    the level (the window's median against the run's start, the median of
    its first five steps). A window zig-zags when its swing is at least
    `factor` (3x), its autocorrelation at most `zigzag` (-0.3) and its
    level at least `level` (30%) of the start; the alert fires once
    `persist` (8) of the last `window` windows zig-zag.

    Calibrated on the corpus (docs/detectors.md): small batches (4-8
    rows) make per-step losses swing 3-5x from batch to batch on healthy
    runs, and near zero a converged classifier's batch loss is a handful of
    hard examples; such noise zig-zags in a window now and then (at most 5
    windows in 12 on any healthy run of the tuning corpus) while a loss
    that overshoots does so in every window. WARNING. It clears when the
    typical swing stays below half the threshold in log terms (sqrt(3) =
    1.7x), or the loss below the level, for `window` steps in a row.
    """

    id = "oscillation"
    title = "Loss oscillating"
    kinds = frozenset({HEADER, BATCH, EPOCH})
    defers_to = CAUSES["oscillation"]
    peak_key = "typical_swing"

    def __init__(
        self,
        monitor: str = "loss",
        factor: float = 3.0,
        zigzag: float = -0.3,
        window: int = 12,
        level: float = 0.3,
        persist: int = 8,
        alternation: float | None = None,  # superseded by `zigzag`; accepted so older configs still load
    ) -> None:
        self.monitor = monitor
        self.factor = max(float(factor), 1.01)
        self.zigzag = min(max(float(zigzag), -1.0), 1.0)
        self.window = max(int(window), 6)
        self.level = max(float(level), 0.0)
        self.persist = min(max(int(persist), 1), self.window)
        self.info = RunInfo()
        self.order = Order()
        self._logs: deque[float] = deque(maxlen=self.window)
        self._values: deque[float] = deque(maxlen=self.window)
        self._zigzags: deque[bool] = deque([False] * (self.window - 1), maxlen=self.window - 1)  # earlier windows'
        self.start = RunStart(monitor)  # positive, finite per-step losses only
        self._active = False
        self._calm = 0  # steps in a row below the clearing threshold

    def observe(self, record: Record) -> list[Verdict]:
        self.info.update(record)
        if record.kind != BATCH or not self.order.is_new(record):
            return []
        loss = finite(record.values.get(self.monitor))
        if loss is None or loss <= 0:
            return []
        self.start.take([loss])
        self._logs.append(float(log_each(np.array([loss]))[0]))  # as observe_block takes them
        self._values.append(loss)
        if len(self._logs) < self.window:
            return []
        judged = self._judge(np.array([self._logs]), np.array([self._values]))
        events, self._active, self._calm = hysteresis(judged.fire, ~judged.calm, self.window, self._active, self._calm)
        if not events:
            return []
        if events[-1][1] == CLEAR:
            return [Clear()]
        return [self._finding(record, list(self._values), judged, 0)]

    def observe_block(self, block: BatchBlock) -> list[tuple[int, Verdict]]:
        """`observe` over many rows as column arithmetic (long blocks)."""
        found = fresh_finite(block, self.order, self.monitor, positive=True)
        if found is None:
            return []
        rows, values = found
        if not self.start.complete:
            self.start.take(values[: self.start.steps].tolist())
        seen = len(self._values)
        logs = np.concatenate((np.asarray(self._logs), log_each(values)))
        values = np.concatenate((np.asarray(self._values), values))
        self._values.extend(values[-self.window :].tolist())  # the deques keep the last `window`
        self._logs.extend(logs[max(seen, len(logs) - self.window) :].tolist())
        # Row k of the block is judged over the `window` values ending at it.
        first = max(self.window - 1 - seen, 0)
        if first >= len(rows):
            return []
        rows = rows[first:]
        n = len(rows)
        if not self._active and not any(self._zigzags):
            # A window's swing reaches the threshold only if half its moves
            # do: a block without such a window (the usual one) says nothing.
            size = self.window - 1
            big = np.abs(logs[1:] - logs[:-1]) >= math.log(self.factor)
            if np.count_nonzero(big) < size // 2 or window_counts(big, size).max() < size // 2:
                self._zigzags.extend([False] * min(n, self.window - 1))
                return []
        judged = self._judge(windows(logs, self.window)[-n:], windows(values, self.window)[-n:])
        events, self._active, self._calm = hysteresis(
            judged.fire, ~judged.calm, self.window, self._active, self._calm,
            peak=lambda first, last: judged.swing[first : last + 1],  # the incident's worst swing
        )
        ends = windows(values, self.window)[-n:]
        return [
            (int(rows[k]), Clear()) if what == CLEAR else (int(rows[k]), self._finding(block.record(int(rows[k])), ends[k], judged, k))
            for k, what in events
        ]

    def _judge(self, logs: np.ndarray, values: np.ndarray) -> _Windows:
        """The rule, for windows given one per row (their logs and values):
        the one place it is written; both paths call it, observe with one row."""
        threshold = math.log(self.factor)
        swing = row_medians(np.abs(logs[:, 1:] - logs[:, :-1]))
        centred = logs - logs.mean(axis=1, keepdims=True)
        spread = (centred * centred).sum(axis=1)
        zigzag = (centred[:, 1:] * centred[:, :-1]).sum(axis=1) / np.where(spread > 0, spread, 1.0)
        high = row_medians(values) >= self.level * (self.start.value or 0.0)
        flags = np.concatenate((np.array(self._zigzags, dtype=bool), (swing >= threshold) & (zigzag <= self.zigzag) & high))
        self._zigzags.extend(flags[-(self.window - 1) :].tolist())
        share = window_counts(flags, self.window)
        return _Windows(swing, zigzag, share, share >= self.persist, (swing < threshold / 2) | ~high)

    def _finding(self, record: Record, window: Sequence[float], judged: _Windows, k: int) -> Finding:
        values = sorted(float(v) for v in window)
        low, high = values[len(values) // 10], values[-1 - len(values) // 10]
        swing = math.exp(float(judged.swing[k]))
        message = (
            f"{self.monitor} oscillating at step {record.step} (epoch {epoch_label(record.epoch)}): "
            f"it swings {swing:.1f}x from one step to the next (between about {fmt(low)} and {fmt(high)}), "
            f"high and low steps alternating, in {int(judged.share[k])} of the last {self.window} windows "
            f"of {self.window} steps"
        )
        evidence = {
            "typical_swing": swing,
            "zigzag": float(judged.zigzag[k]),
            "zigzag_windows": int(judged.share[k]),
            "low": low,
            "high": high,
            "window": self.window,
            "start_loss": self.start.value,
            "step": record.step,
            "epoch": record.epoch,
        }
        info = self.info
        evidence.update(info.optimizer_evidence())
        hint = sentence(
            "each step overshoots: " + (lr_advice(info, LOWER, times=3.0) or "the rate is low already, so look at the momentum"),
            "with SGD lower the momentum (0.9 -> 0.5) or switch to Adam",
            "a decaying schedule (ExponentialDecay, ReduceLROnPlateau) calms it later in the run",
            "standardise inputs (StandardScaler) so no direction is much steeper than the others",
        )
        return Finding(Severity.WARNING, message, hint, json_safe(evidence))
