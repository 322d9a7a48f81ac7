"""The loss falls, but so slowly that the run will end having learned little.

Unlike a plateau the loss does improve every epoch; at its pace, though,
the remaining epochs cannot bring it far below where it started. The usual
cause is a learning rate far below what the optimizer expects.
"""

from __future__ import annotations

from lossmon.detect.base import Clear, Detector, Finding, Severity, Verdict
from lossmon.detectors._util import (
    CAUSES,
    RAISE,
    Order,
    RunInfo,
    epoch_label,
    finite,
    fmt,
    lr_advice,
    sentence,
)
from lossmon.block import BatchBlock
from lossmon.detectors._start import RunStart
from lossmon.format import BATCH, EPOCH, HEADER, Record, json_safe


class SlowConvergence(Detector):
    """The epoch loss falls, but at `min_rate` per epoch or less while it is
    still at least `high_fraction` of where the run started, with no
    prospect of getting far below it.

    Reads the epoch `monitor` value (training loss by default) and the
    run's start (the median of its first per-step losses, lossmon/
    detectors/_start.py; the first epoch's loss without batch records).
    The rate is the geometric mean decrease per epoch over the last
    `window` epochs. It judges from `min_epochs` epochs and `min_steps`
    optimizer steps on (a first epoch of a few steps says nothing), and
    fires when the loss is still at least `high_fraction` (90%) of the
    start, it is falling (by at least `falling`, 0.2% an epoch: slower is a
    plateau) but by less than `min_rate` (2%) an epoch, and, when the header
    gives the number of epochs, the rate projected to the last epoch would
    still leave it above `end_fraction` (75%) of the start. Calibrated on
    the corpus: a healthy run, however slow, has left 90% of its start
    behind after 100 steps and 3 epochs; a learning rate 1000x too low has
    not. Runs whose learning rate is above `max_lr_ratio` (1) times the
    optimizer's default are not judged: a slow start there is not a rate
    too low (healthy Adagrad runs at 16-54x Keras' default crawl for
    epochs, then take off), nor is a rate that doubled since the window
    before. WARNING. It clears once the rate picks up or the loss drops
    below the fraction.
    """

    id = "slow_convergence"
    title = "Slow convergence"
    kinds = frozenset({HEADER, BATCH, EPOCH})
    defers_to = CAUSES["slow_convergence"]

    def __init__(
        self,
        monitor: str = "loss",
        min_rate: float = 0.02,
        high_fraction: float = 0.9,
        end_fraction: float = 0.75,
        falling: float = 0.002,
        min_epochs: int = 3,
        min_steps: int = 100,
        window: int = 3,
        max_lr_ratio: float = 1.0,
    ) -> None:
        self.max_lr_ratio = float(max_lr_ratio)
        self.monitor = monitor
        self.min_rate = float(min_rate)
        self.high_fraction = float(high_fraction)
        self.end_fraction = float(end_fraction)
        self.falling = float(falling)
        self.min_epochs = max(int(min_epochs), 2)
        self.min_steps = max(int(min_steps), 0)
        self.window = max(int(window), 1)
        self.info = RunInfo()
        self.order = Order()
        self.start = RunStart(monitor)
        self._values: list[float] = []
        self._epochs_total: int | None = None
        self._active = False

    def observe_block(self, block: BatchBlock) -> list[tuple[int, Verdict]]:
        """Batch records only give the start."""
        self.start.observe_block(block)
        return []

    def observe(self, record: Record) -> list[Verdict]:
        self.info.update(record)
        self.start.observe(record)
        if record.kind == "header" and isinstance(record.data, dict):
            total = record.data.get("epochs")
            self._epochs_total = total if type(total) is int and total > 0 else None
        if record.kind != EPOCH or not self.order.is_new(record):
            return []
        value = finite(record.values.get(self.monitor))
        start = self.start.value
        if value is None or value <= 0 or start is None or start <= 0:
            return []
        self._values.append(value)
        done = len(self._values)
        if done < self.min_epochs or record.step < self.min_steps:
            return []
        span = min(self.window, done - 1)
        rate = 1 - (value / self._values[-1 - span]) ** (1 / span)
        before = self._values[-1 - span]
        earlier = self._values[-1 - 2 * span] if done > 2 * span else None
        previous = 1 - (before / earlier) ** (1 / span) if earlier else None
        # A rate that has doubled since the window before is a slow start
        # taking off (symmetry breaking, a warm-up), not a rate too low.
        accelerating = previous is not None and previous > 0 and rate >= 2 * previous
        remaining = max((self._epochs_total or done) - done, 0)
        projected = value * (1 - max(rate, 0.0)) ** remaining
        ratio = self.info.lr_ratio()
        slow = (
            not accelerating
            and (ratio is None or ratio <= self.max_lr_ratio)
            and self.falling <= rate < self.min_rate
            and value >= self.high_fraction * start
            and projected >= self.end_fraction * start
        )
        if not slow:
            if self._active:
                self._active = False
                return [Clear()]
            return []
        self._active = True
        return [self._finding(record, value, start, rate, projected, remaining)]

    def _finding(self, record: Record, value: float, first: float, rate: float, projected: float, remaining: int) -> Finding:
        name = self.monitor
        pace = f"falling {rate:.2%} per epoch" if rate > 0 else "not falling"
        message = (
            f"{name} {fmt(value)} at epoch {epoch_label(record.epoch)} is still {value / first:.0%} of the "
            f"{fmt(first)} it started from, {pace}"
        )
        if remaining:
            message += f"; at that pace it ends near {fmt(projected)} after {remaining} more epochs"
        evidence = {
            "monitor": name,
            "value": value,
            "start": first,
            "rate_per_epoch": rate,
            "projected_final": projected,
            "remaining_epochs": remaining,
            "epoch": record.epoch,
        }
        info = self.info
        if info.lr is not None:
            evidence["learning_rate"] = info.lr
        hint = sentence(
            lr_advice(info, RAISE),
            "standardise inputs and regression targets (StandardScaler) so the loss surface is not stretched",
            "check that a schedule has not already decayed the rate to nothing",
            "a model this slow may also be too small or too regularised (dropout, L2)",
        )
        return Finding(Severity.WARNING, message, hint, json_safe(evidence))
