"""The training loss climbs far above the best it reached.

Per-step losses are noisy, so raw values are never compared: a rolling
median drops lone spikes, an EMA smooths what is left, and both the rise and
the drop that came before it must be large before anything is said.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np

from lossmon.block import BatchBlock
from lossmon.detect.base import Clear, Detector, Finding, Severity, Verdict
from lossmon.detectors._util import (
    CAUSES,
    CLEAR,
    EMA,
    LOWER,
    OPEN,
    Order,
    RunInfo,
    epoch_label,
    finite,
    finite_row_medians,
    fmt,
    fmt_times,
    fresh_finite,
    hysteresis,
    lr_advice,
    median,
    sentence,
    beyond_noise,
    windows,
)
from lossmon.format import BATCH, EPOCH, HEADER, Record, json_safe


class Divergence(Detector):
    """Training loss diverging: smoothed loss far above its best.

    Smoothing: per-step losses pass through a rolling median of `window`
    steps (a spike of one or two steps never moves it), then an EMA with
    `alpha`. During the first `warmup` points the smoothed value is the plain
    median of what has been seen; the EMA is then seeded with that median,
    so one lucky first batch cannot drag the smoothed curve down for long.
    Runs without batch records use the epoch losses instead (no median,
    `epoch_alpha`, `epoch_warmup`).

    After `warmup` points, either of these starts an alert:

    - rebound: smoothed >= `factor` x best, best being the lowest smoothed
      value since warm-up, and the rise gives back at least `share` of the
      progress made (first loss - best). The second part keeps runs near zero
      quiet: 0.004 -> 0.009 doubles the loss but gives back nothing of the
      0.69 -> 0.004 drop.
    - blow-up: smoothed >= `critical_factor` x the lowest smoothed value seen
      at all, the very first batch included (same `share` condition). Batch
      noise does not do 10x; this catches a learning rate so high that the
      loss explodes on step 2, before there is any history to smooth.

    Severity is CRITICAL while the blow-up holds and the smoothed loss is
    also above the first loss (everything learned is gone), else WARNING.
    An alert stays on while the smoothed loss is above 1.5x the first loss, and
    until both conditions fail at half their excess (1.5x best, 5.5x the
    lowest value, share / 2) for `window` points in a row (one point for
    epoch losses); then it clears. Both halves keep a
    loss that hovers at a threshold from flapping. A loss that reaches zero or
    below is not judged: a ratio to it means nothing.
    """

    id = "divergence"
    title = "Loss diverging"
    kinds = frozenset({HEADER, BATCH, EPOCH})
    defers_to = CAUSES["divergence"]
    peak_key = "smoothed_loss"

    def __init__(
        self,
        monitor: str = "loss",
        factor: float = 2.0,
        share: float = 0.25,
        critical_factor: float = 10.0,
        alpha: float = 0.1,
        window: int = 5,
        warmup: int = 5,
        epoch_alpha: float = 0.5,
        epoch_warmup: int = 2,
        noise: float = 1.5,
        history: int = 100,
    ) -> None:
        self.monitor = monitor
        self.noise = max(float(noise), 0.0)
        self.history = max(int(history), 3)
        self.factor = float(factor)
        self.share = float(share)
        self.critical_factor = max(float(critical_factor), self.factor)
        self.alpha = float(alpha)
        self.window = max(int(window), 1)
        self.warmup = max(int(warmup), 1)
        self.epoch_alpha = float(epoch_alpha)
        self.epoch_warmup = max(int(epoch_warmup), 1)
        self.info = RunInfo()
        self.order = Order()
        self._source: str | None = None  # "batch" or "epoch"
        self._reset()

    def _reset(self) -> None:
        self._recent: deque[float] = deque(maxlen=self.window)
        self._steps: deque[float] = deque(maxlen=self.history + 1)  # the latest raw per-step losses, this one too
        self._early: list[float] = []  # raw values of the warm-up
        self._ema: EMA | None = None
        self._n = 0
        self._start: float | None = None  # first raw loss
        self._smoothed: float | None = None
        self._best_any: float | None = None  # lowest smoothed value, warm-up included
        self._best_any_step = 0
        self._best: float | None = None  # lowest smoothed value since warm-up
        self._best_step = 0
        self._active = False
        self._calm = 0  # points in a row below the hold thresholds

    def observe(self, record: Record) -> list[Verdict]:
        self.info.update(record)
        if record.kind not in (BATCH, EPOCH) or not self.order.is_new(record):
            return []
        if record.kind == EPOCH and self._source == "batch":
            return []
        loss = finite(record.values.get(self.monitor))
        if loss is None:
            return []
        verdicts: list[Verdict] = []
        if record.kind == EPOCH:
            self._source = "epoch"
        elif self._source != "batch":
            # Per-step values beat epoch means: start over with them.
            verdicts = self._clear()
            self._source = "batch"
            self._reset()
        return verdicts + self._feed(loss, record)

    def observe_block(self, block: BatchBlock) -> list[tuple[int, Verdict]]:
        """`observe` over many rows as column arithmetic (long blocks)."""
        found = fresh_finite(block, self.order, self.monitor)
        if found is None or not len(found[0]):
            return []
        rows, losses = found
        verdicts: list[tuple[int, Verdict]] = []
        if self._source != "batch":
            # Per-step values beat epoch means: start over with them.
            verdicts += [(int(rows[0]), v) for v in self._clear()]
            self._source = "batch"
            self._reset()
        k = 0
        while k < len(rows) and (self._n < self.warmup or len(self._recent) < self.window):
            row = int(rows[k])  # warm-up, and filling the median window: one by one
            verdicts += [(row, v) for v in self._feed(float(losses[k]), block.record(row))]
            k += 1
        if k < len(rows):
            verdicts += self._feed_block(block, rows[k:], losses[k:])
        return verdicts

    # ------------------------------------------------------------ smoothing

    def _feed(self, loss: float, record: Record) -> list[Verdict]:
        batch = self._source == "batch"
        warmup = self.warmup if batch else self.epoch_warmup
        self._n += 1
        if self._start is None:
            self._start = loss
        if batch:
            self._steps.append(loss)
        self._recent.append(loss)
        if self._n <= warmup:
            self._early.append(loss)
            smoothed = median(self._early)
            if self._n == warmup:
                self._ema = EMA(self.alpha if batch else self.epoch_alpha)
                self._ema.update(smoothed)
        else:
            if self._ema is None:  # unreachable: seeded at the end of warm-up
                self._ema = EMA(self.alpha if batch else self.epoch_alpha)
            point = median(self._recent) if batch else loss
            smoothed = self._ema.update(point)
        self._smoothed = smoothed

        if self._best_any is None or smoothed < self._best_any:
            self._best_any, self._best_any_step = smoothed, record.step
        if self._n >= warmup and (self._best is None or smoothed < self._best):
            self._best, self._best_step = smoothed, record.step
        if self._n < warmup:
            return []
        return self._judge(record)

    def _feed_block(self, block: BatchBlock, rows: np.ndarray, losses: np.ndarray) -> list[tuple[int, Verdict]]:
        """`_feed` and `_judge` for many rows after warm-up, as column arithmetic."""
        ema = self._ema
        if ema is None or self._start is None or self._best is None or self._best_any is None:
            return []  # unreachable after warm-up
        history = np.concatenate((np.asarray(self._recent), losses))
        points = finite_row_medians(windows(history, self.window))[1:]  # losses are finite here
        self._recent.extend(losses[-self.window :].tolist())
        seen = np.asarray(self._steps)
        everything = np.concatenate((seen, losses))  # row k's noise: the `history` steps before it
        self._steps.extend(losses[-(self.history + 1) :].tolist())
        self._n += len(rows)
        smoothed = ema.run(points)
        self._smoothed = float(smoothed[-1])
        first_best_any, first_best_any_step = self._best_any, self._best_any_step
        first_best, first_best_step = self._best, self._best_step
        # The new minimum, if any, was reached at its first row: no later row is lower.
        low = int(smoothed.argmin())
        if smoothed[low] < first_best_any:
            self._best_any, self._best_any_step = float(smoothed[low]), int(block.steps[rows[low]])
        if smoothed[low] < first_best:
            self._best, self._best_step = float(smoothed[low]), int(block.steps[rows[low]])
        if not self._active and self._cannot_fire(float(smoothed.max())):
            return []  # the usual block: no alert on, and no row near a threshold
        best_any, lowered_any = self._running_min(smoothed, first_best_any)
        best, lowered = self._running_min(smoothed, first_best)

        def best_any_step(k: int) -> int:
            return self._step_at(block, rows, lowered_any, k, first_best_any_step)

        def best_step(k: int) -> int:
            return self._step_at(block, rows, lowered, k, first_best_step)

        start, s = self._start, smoothed
        with np.errstate(all="ignore"):
            unjudged = (best <= 0) | (best_any <= 0)  # a ratio to zero means nothing
            blow_up, rebound = self._holds(1.0, s, start, best, best_any)
            for k in np.flatnonzero(rebound & ~blow_up).tolist():
                at = len(seen) + k
                rebound[k] = beyond_noise(everything[max(at - self.history, 0) : at], float(s[k] / best[k]), self.noise)
            fire = (blow_up | rebound) & ~unjudged
            if not self._active and not fire.any():
                return []  # nothing fires, no alert on
            blow_up_held, rebound_held = self._holds(0.5, s, start, best, best_any)
            # A loss still well above where the run started has not
            # recovered, however it wobbles: keep the alert, don't flap.
            held = blow_up_held | rebound_held | (s > (1 + (self.factor - 1) * 0.5) * start)
        critical = blow_up & (s >= start)

        def finding(k: int, worst: bool) -> tuple[int, Verdict]:
            if fire[k]:
                rule = "blow-up" if blow_up[k] else "rebound"
            else:
                rule = "rebound" if rebound_held[k] and not blow_up_held[k] else "blow-up"
            ref, ref_step = (best_any[k], best_any_step(k)) if rule == "blow-up" else (best[k], best_step(k))
            severity = Severity.CRITICAL if worst else Severity.WARNING
            return int(rows[k]), self._finding(block.record(int(rows[k])), float(s[k]), rule, float(ref), ref_step, severity)

        events, self._active, self._calm = hysteresis(
            fire, held, self.window, self._active, self._calm, stop=unjudged, peak=lambda first, last: s[first : last + 1]
        )
        verdicts: list[tuple[int, Verdict]] = []
        opened = 0
        for k, what in events:
            if what == CLEAR:
                verdicts.append((int(rows[k]), Clear()))
                continue
            opened = k if what == OPEN else opened
            # CRITICAL: a 10x blow-up that also wiped out everything learned.
            verdicts.append(finding(k, bool(critical[opened : k + 1].any())))
        return verdicts

    @staticmethod
    def _running_min(values: np.ndarray, best: float) -> tuple[np.ndarray, np.ndarray]:
        """The lowest value so far at each row, and the rows that lowered it."""
        lowest = np.minimum.accumulate(np.concatenate(([best], values)))
        return lowest[1:], np.flatnonzero(values < lowest[:-1])

    @staticmethod
    def _step_at(block: BatchBlock, rows: np.ndarray, lowered: np.ndarray, k: int, before: int) -> int:
        """The step of the last row at or before row `k` that lowered the
        minimum (`before`: where it was reached, if no row did)."""
        i = int(np.searchsorted(lowered, k, side="right"))
        return int(block.steps[rows[lowered[i - 1]]]) if i else before

    def _thresholds(self, level: float) -> tuple[float, float, float]:
        """The rebound factor, the blow-up factor and the share at `level`
        of each threshold's excess (see `_holds`)."""
        return 1 + (self.factor - 1) * level, 1 + (self.critical_factor - 1) * level, self.share * level

    def _cannot_fire(self, highest: float) -> bool:
        """Whether no row of a block can start an alert, seen from its
        `highest` smoothed value and the lowest bests after it: the best
        values only fall, so a row's thresholds are at least the final ones.
        A check of two numbers that spares the usual block the arrays."""
        factor, critical, _ = self._thresholds(1.0)
        best, best_any = self._best, self._best_any
        if best is None or best_any is None or not (factor > 0 and critical > 0 and best > 0 and best_any > 0):
            return False
        return highest < factor * best and highest < critical * best_any

    def _holds(self, level: float, s: Any, start: float, best: Any, best_any: Any) -> tuple[Any, Any]:
        """(blow-up, rebound) at `level` of each threshold's excess.

        level 1 is the full threshold, to start an alert; level 0.5 is half
        of it, to keep one going (hysteresis). Works on floats and arrays.
        """
        factor, critical, share = self._thresholds(level)
        blow_up = (s >= critical * best_any) & (s - best_any >= share * np.maximum(start - best_any, 0.0))
        rebound = (s >= factor * best) & (s - best >= share * np.maximum(start - best, 0.0))
        return blow_up, rebound

    # ------------------------------------------------------------ verdict

    def _judge(self, record: Record) -> list[Verdict]:
        s, start = self._smoothed, self._start
        best, best_any = self._best, self._best_any
        if s is None or start is None or best is None or best_any is None:
            return []
        if best <= 0 or best_any <= 0:
            return self._clear()
        blow_up, rebound = (bool(x) for x in self._holds(1.0, s, start, best, best_any))
        # The noise of the `history` steps before this one (the deque ends with it).
        rebound = rebound and (self._source != "batch" or beyond_noise(np.asarray(self._steps)[:-1], s / best, self.noise))
        if blow_up or rebound:
            rule = "blow-up" if blow_up else "rebound"
            self._calm = 0
        elif not self._active:
            return []
        else:
            blow_up_held, rebound_held = (bool(x) for x in self._holds(0.5, s, start, best, best_any))
            # A loss still well above where the run started has not
            # recovered, however it wobbles: keep the alert, don't flap.
            if blow_up_held or rebound_held or s > (1 + (self.factor - 1) * 0.5) * start:
                self._calm = 0
            else:
                # Below the hold thresholds for a whole median window
                # (batches) or one epoch: clear.
                self._calm += 1
                if self._calm >= (self.window if self._source == "batch" else 1):
                    return self._clear()
            rule = "rebound" if rebound_held and not blow_up_held else "blow-up"

        self._active = True
        ref, ref_step = (best_any, self._best_any_step) if rule == "blow-up" else (best, self._best_step)
        # CRITICAL: a 10x blow-up that also wiped out everything learned.
        severity = Severity.CRITICAL if blow_up and s >= start else Severity.WARNING
        return [self._finding(record, s, rule, ref, ref_step, severity)]

    def _finding(self, record: Record, s: float, rule: str, ref: float, ref_step: int, severity: Severity) -> Finding:
        where = f"step {record.step}"
        if record.epoch is not None:
            where += f" (epoch {epoch_label(record.epoch)})"
        ratio = s / ref
        message = (
            f"{self.monitor} diverging at {where}: smoothed {fmt(s)} is {fmt_times(ratio)}x "
            f"its best {fmt(ref)} (step {ref_step}); first value {fmt(self._start)}"
        )
        evidence = {
            "smoothed_loss": s,
            "best_loss": ref,
            "best_step": ref_step,
            "ratio": ratio,
            "start_loss": self._start,
            "step": record.step,
            "source": self._source,
            "rule": rule,
        }
        evidence.update(self.info.optimizer_evidence())
        return Finding(severity, message, self._hint(), json_safe(evidence))

    def _clear(self) -> list[Verdict]:
        if not self._active:
            return []
        self._active = False
        self._calm = 0
        return [Clear()]

    def _hint(self) -> str:
        return sentence(
            lr_advice(self.info, LOWER),
            "add gradient clipping (clipnorm=1.0 in the optimizer)",
            "warm the learning rate up over the first steps with a schedule",
            "check the inputs for outliers and scale them (StandardScaler)",
        )
