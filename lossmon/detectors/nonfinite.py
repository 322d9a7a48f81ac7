"""NaN or infinite metric values.

Once the loss is NaN every later step is wasted: the weights are NaN too and
training cannot recover on its own. So there is no threshold and no
smoothing here: one non-finite value in a batch or epoch record is enough.
"""

from __future__ import annotations

import math
from typing import Iterable

from lossmon.detect.base import Clear, Detector, Finding, Severity, Verdict
from lossmon.detectors._util import RunInfo, epoch_label, finite, fmt, fmt_lr
from lossmon.format import BATCH, EPOCH, Record, json_number, json_safe


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
            self._last_finite = loss
            self._last_finite_step = record.step
        if not bad:
            if self._since is not None and record.values:
                self._since = None
                return [Clear()]
            return []

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
        return [Finding(Severity.CRITICAL, message, self._hint(names), json_safe(evidence))]

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
