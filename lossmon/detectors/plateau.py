"""The epoch loss has stopped improving.

Two very different situations look the same here: a run stuck at a high
loss that learned little (worth a warning: something is wrong with the data,
the learning rate or the model) and a run that has converged (worth a note:
the remaining epochs are wasted). The severity tells them apart.
"""

from __future__ import annotations

from lossmon.detect.base import Clear, Detector, Finding, Severity, Verdict
from lossmon.detectors._util import (
    CAUSES,
    LOWER,
    RAISE,
    Order,
    RunInfo,
    epoch_label,
    finite,
    fmt,
    lr_advice,
)
from lossmon.block import BatchBlock
from lossmon.detectors._start import RunStart
from lossmon.format import BATCH, EPOCH, HEADER, Record, json_safe


class Plateau(Detector):
    """No relative improvement of `min_delta` in `patience` epochs.

    Reads the epoch records' `monitor` value (training `loss` by default,
    since a plateau of the training loss means the optimizer itself is
    stuck; use `monitor="val_loss"` to watch generalisation instead). As in
    Keras' ReduceLROnPlateau, an epoch counts as an improvement only if it
    beats the value at the last improvement by more than `min_delta`, here
    relative (1%) so that the same default works for a loss of 2.3 and one
    of 0.02; a slow creep of 0.1% an epoch is therefore a plateau too.

    Severity is WARNING when the plateau is high, i.e. the best value is
    still >= `high_fraction` (90%) of where the run started (the median of
    its first per-step losses, lossmon/detectors/_start.py), or within
    `chance_margin` of the chance-level loss or above it (ln 2 for binary
    cross-entropy, ln K for K-class categorical cross-entropy when the
    header tells the output width): the model learned little. Otherwise
    INFO: the run has probably converged. A loss that has come down to half
    its first epoch's and stays there is a noisy task's floor, not a fault
    (calibrated on the corpus: many healthy runs end at 50-70% of their
    first epoch's loss). It clears at the next improvement.
    """

    id = "plateau"
    title = "Loss plateau"
    kinds = frozenset({HEADER, BATCH, EPOCH})
    defers_to = CAUSES["plateau"]

    def __init__(
        self,
        monitor: str = "loss",
        patience: int = 5,
        min_delta: float = 0.01,
        high_fraction: float = 0.9,
        chance_margin: float = 0.05,
    ) -> None:
        self.monitor = monitor
        self.patience = max(int(patience), 1)
        self.min_delta = max(float(min_delta), 0.0)
        self.high_fraction = float(high_fraction)
        self.chance_margin = float(chance_margin)
        self.info = RunInfo()
        self.order = Order()
        self.start = RunStart(monitor)
        self._first: float | None = None
        self._ref: float | None = None  # value at the last improvement
        self._ref_epoch: int | None = None
        self._best: float | None = None
        self._best_epoch: int | None = None
        self._wait = 0
        self._active = False

    def observe_block(self, block: BatchBlock) -> list[tuple[int, Verdict]]:
        """Batch records only give the start."""
        self.start.observe_block(block)
        return []

    def observe(self, record: Record) -> list[Verdict]:
        self.info.update(record)
        self.start.observe(record)
        if record.kind != EPOCH or not self.order.is_new(record):
            return []
        value = finite(record.values.get(self.monitor))
        if value is None:
            return []
        if self._first is None or self._ref is None or self._best is None:
            self._first = self._ref = self._best = value
            self._ref_epoch = self._best_epoch = record.epoch
            return []

        if value < self._best:
            self._best, self._best_epoch = value, record.epoch
        if value < self._ref - self.min_delta * abs(self._ref):
            self._ref, self._ref_epoch = value, record.epoch
            self._wait = 0
            if self._active:
                self._active = False
                return [Clear()]
            return []
        self._wait += 1
        if self._wait < self.patience:
            return []
        self._active = True
        return [self._finding(value, record)]

    def _finding(self, value: float, record: Record) -> Finding:
        first = self._first if self._first is not None else value
        start = self.start.value if self.start.value is not None else first
        best = self._best if self._best is not None else value
        chance = self.info.chance_loss()
        near_chance = chance is not None and abs(best - chance) <= self.chance_margin * chance
        above_chance = chance is not None and best > chance * (1 + self.chance_margin)
        high = near_chance or above_chance or (start > 0 and best >= self.high_fraction * start)
        name = self.monitor
        evidence = {
            "monitor": name,
            "best": best,
            "best_epoch": self._best_epoch,
            "last_improvement_epoch": self._ref_epoch,
            "epochs_without_improvement": self._wait,
            "current": value,
            "first": first,
            "start": start,
            "min_delta": self.min_delta,
            "patience": self.patience,
            "epoch": record.epoch,
        }
        if chance is not None:
            evidence["chance_loss"] = chance
        if self.info.lr is not None:
            evidence["learning_rate"] = self.info.lr
        evidence = json_safe(evidence)

        stalled = (
            f"no {self.min_delta:.0%} improvement in {self._wait} epochs "
            f"(best {fmt(best)} at epoch {epoch_label(self._best_epoch)}, now {fmt(value)})"
        )
        if not high:
            message = f"{name} has converged: {stalled}"
            return Finding(Severity.INFO, message, self._converged_hint(), evidence)
        if near_chance or above_chance:
            where = "near" if near_chance else "above"
            message = f"{name} stuck {where} chance level {fmt(chance)} ({self.info.loss}): {stalled}"
        else:
            message = f"{name} stuck at {best / start:.0%} of the {fmt(start)} it started from: {stalled}"
        return Finding(Severity.WARNING, message, self._stuck_hint(near_chance or above_chance), evidence)

    def _stuck_hint(self, chance: bool) -> str:
        info = self.info
        parts = []
        if chance:
            parts.append(
                "The model predicts little more than the label frequencies: check that "
                "labels line up with the inputs and that the inputs are scaled "
                "(StandardScaler)"
            )
        else:
            parts.append("Check that the inputs are scaled (StandardScaler) and the labels are right")
        parts.append(
            lr_advice(info, LOWER, seen=False) or lr_advice(info, RAISE)
            or "ReduceLROnPlateau(monitor='loss', factor=0.5, patience=3) tries smaller steps"
        )
        parts.append("if all that is right, the model may be too small: add units or layers")
        return "; ".join(parts) + "."

    def _converged_hint(self) -> str:
        return (
            "Further epochs gain little: EarlyStopping(monitor='val_loss', patience=5, "
            "restore_best_weights=True) ends the run at its best, and "
            "ReduceLROnPlateau(monitor='loss', factor=0.5, patience=3) may squeeze out "
            "a little more."
        )
