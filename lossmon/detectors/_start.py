"""Where a run's loss started: the reference for "has it learned anything".

The first epoch's loss is a poor reference: it is a mean over a whole
epoch of learning, and a model that learns fast has already halved its
loss by then. The loss the run started from is the median of its first
few per-step losses (one bad first batch cannot move it); a run without
batch records falls back to its first epoch's loss.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from lossmon.detectors._util import finite, median
from lossmon.format import BATCH, EPOCH, Record

if TYPE_CHECKING:
    from lossmon.block import BatchBlock

START_STEPS = 5


class RunStart:
    """The start of one run's `monitor` loss, fed by a detector's records."""

    def __init__(self, monitor: str = "loss", steps: int = START_STEPS) -> None:
        self.monitor = monitor
        self.steps = max(int(steps), 1)
        self._early: list[float] = []
        self._from_epoch: float | None = None

    @property
    def value(self) -> float | None:
        if self._early:
            return median(self._early)
        return self._from_epoch

    @property
    def complete(self) -> bool:
        """Whether batch records can add nothing more."""
        return len(self._early) >= self.steps

    def take(self, losses: Iterable[float]) -> None:
        """Per-step losses in step order (finite ones only count)."""
        for loss in losses:
            if len(self._early) >= self.steps:
                return
            if finite(loss) is not None:
                self._early.append(float(loss))

    def observe_block(self, block: BatchBlock) -> None:
        """The first per-step losses of a block of batch records."""
        if not self.complete:
            column = block.column(self.monitor)
            if column is not None:
                self.take(column[: self.steps].tolist())

    def observe(self, record: Record) -> None:
        if record.kind == BATCH and not self.complete:
            loss = record.values.get(self.monitor)
            if loss is not None:
                self.take([loss])
        elif record.kind == EPOCH and self._from_epoch is None:
            self._from_epoch = finite(record.values.get(self.monitor))
