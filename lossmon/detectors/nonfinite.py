"""NaN or infinite metric values.

Once the loss is NaN every later step is wasted: the weights are NaN too and
training cannot recover on its own. So there is no threshold and no
smoothing here: one non-finite value in a batch or epoch record is enough.
"""

from __future__ import annotations

import math
from typing import Iterable

import numpy as np

from lossmon.block import BatchBlock
from lossmon.detect.base import Clear, Detector, Finding, Severity, Verdict
from lossmon.detectors._util import (
    CAUSES,
    RunInfo,
    epoch_label,
    finite,
    fmt,
    fmt_lr,
)
from lossmon.format import BATCH, EPOCH, HEADER, Record, json_number, json_safe


class NonFinite(Detector):
    """Any metric of a batch or epoch record is NaN or +/-inf: CRITICAL.

    The usual causes are a learning rate far too high (weights overflow),
    bad inputs (a NaN or inf in the data), or a custom loss taking log(0) or
    dividing by zero. The finding clears at the next record whose values are
    all finite again (rare, but it happens when only a validation metric or
    a single batch was hit).

    Options:
        monitor: the training-loss key whose last finite value is reported.
        ignore: metric names never checked (a custom metric that is
            legitimately infinite, say).
    """

    id = "nonfinite"
    title = "NaN / inf values"
    kinds = frozenset({HEADER, BATCH, EPOCH})
    defers_to = CAUSES["nonfinite"]

    def __init__(self, monitor: str = "loss", ignore: Iterable[str] = ()) -> None:
        self.monitor = monitor
        self.ignore = frozenset(ignore) if not isinstance(ignore, str) else frozenset([ignore])
        self.info = RunInfo()
        self._last_finite: float | None = None
        self._last_finite_step: int | None = None
        self._since: int | None = None  # step of the first bad record of this episode

    def observe(self, record: Record) -> list[Verdict]:
        self.info.update(record)
        if record.kind not in (BATCH, EPOCH):
            return []
        bad = {
            name: value
            for name, value in record.values.items()
            if name not in self.ignore and isinstance(value, float) and not math.isfinite(value)
        }
        loss = finite(record.values.get(self.monitor))
        if loss is not None:
            self._last_finite, self._last_finite_step = loss, record.step
        if bad:
            return [self._finding(record, bad)]
        return self._clear() if record.values else []

    def observe_block(self, block: BatchBlock) -> list[tuple[int, Verdict]]:
        """Bad rows come in episodes: a Finding where each starts and where it
        ends (or the block ends), a Clear at the first good row after it."""
        if not block.names:
            return []
        names = sorted(block.names - self.ignore)
        columns = {name: block.column(name) for name in names}
        bad = np.zeros(len(block), dtype=bool)
        for column in columns.values():
            bad |= ~np.isfinite(column)
        monitor = block.column(self.monitor)
        verdicts: list[tuple[int, Verdict]] = []
        row = 0
        for start, stop in _episodes(bad):
            if start > row:  # good rows before this episode
                verdicts += [(row, v) for v in self._clear()]
            for at in sorted({start, stop - 1}):
                self._note_last_finite(block, monitor, at)
                record = block.record(at)
                verdicts.append((at, self._finding(record, {n: float(columns[n][at]) for n in names if not math.isfinite(columns[n][at])})))
            row = stop
        if row < len(block):
            verdicts += [(row, v) for v in self._clear()]
        self._note_last_finite(block, monitor, len(block) - 1)
        return verdicts

    def _note_last_finite(self, block: BatchBlock, monitor: np.ndarray | None, row: int) -> None:
        """Remembers the last finite `monitor` value at or before `row`, if any."""
        if monitor is None:
            return
        if math.isfinite(monitor[row]):
            at = row  # the usual case: no search
        else:
            good = np.flatnonzero(np.isfinite(monitor[: row + 1]))
            if not len(good):
                return
            at = int(good[-1])
        self._last_finite, self._last_finite_step = float(monitor[at]), int(block.steps[at])

    def _clear(self) -> list[Verdict]:
        if self._since is None:
            return []
        self._since = None
        return [Clear()]

    def _finding(self, record: Record, bad: dict[str, float]) -> Finding:
        if self._since is None:
            self._since = record.step
        names = sorted(bad)
        shown = ", ".join(f"{name}={json_number(bad[name])}" for name in names)
        where = f"step {record.step}"
        if record.kind == EPOCH:
            where += f" (end of epoch {epoch_label(record.epoch)})"
        elif record.epoch is not None:
            where += f" (epoch {epoch_label(record.epoch)})"
        message = f"non-finite {shown} at {where}; last finite {self.monitor} {fmt(self._last_finite)}"
        evidence = {
            "metrics": names,
            "values": {name: json_number(bad[name]) for name in names},
            "step": record.step,
            "epoch": record.epoch,
            "record": record.kind,
            "since_step": self._since,
            "last_finite_loss": self._last_finite,
            "last_finite_step": self._last_finite_step,
        }
        evidence.update(self.info.optimizer_evidence())
        return Finding(Severity.CRITICAL, message, self._hint(names), json_safe(evidence))

    def _hint(self, names: list[str]) -> str:
        if all(name.startswith("val_") for name in names):
            return (
                "Only validation metrics are non-finite: check the validation data "
                "for NaN/inf (np.isfinite(x_val).all()) and that it is not empty; "
                "if the weights blew up the training loss will follow, so lower the "
                "learning rate and add clipnorm=1.0."
            )
        steps = []
        too_high = self.info.lr_too_high()
        if too_high:
            steps.append(too_high[0].upper() + too_high[1:])
        elif self.info.lr is not None:
            lr = self.info.lr
            steps.append(f"Lower the learning rate 10x ({fmt_lr(lr)} -> {fmt_lr(lr / 10)})")
        else:
            steps.append("Lower the learning rate 10x")
        steps.append("add gradient clipping (clipnorm=1.0 in the optimizer)")
        steps.append("check the inputs and labels for NaN/inf (np.isfinite(x).all())")
        steps.append("guard log() and division in a custom loss with a small epsilon")
        return (
            "; ".join(steps)
            + ". keras.callbacks.TerminateOnNaN() stops a run at the first NaN loss "
            "instead of training on NaN weights."
        )


def _episodes(mask: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) of each run of True in `mask`."""
    if not mask.any():
        return []  # the usual block
    edges = np.flatnonzero(np.diff(np.concatenate(([0], mask.view(np.int8), [0]))))
    return list(zip(edges[0::2].tolist(), edges[1::2].tolist()))
