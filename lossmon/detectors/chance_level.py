"""The loss sits at the level of a model that learned nothing.

A classifier that only predicts the label frequencies scores the entropy
of the labels: ln 2 = 0.693 for balanced binary cross-entropy, ln K for K
balanced classes. A loss at that level after an epoch means the inputs are
not informing the prediction at all: labels shuffled apart from their
inputs, inputs that carry no signal, or a model that cannot learn.
"""

from __future__ import annotations

from lossmon.block import BatchBlock
from lossmon.detect.base import Clear, Detector, Finding, Severity, Verdict
from lossmon.detectors._util import (
    CAUSES,
    Order,
    RunInfo,
    epoch_label,
    finite,
    fmt,
    fresh_finite,
    median,
)
from lossmon.format import BATCH, EPOCH, HEADER, Record, json_safe


class ChanceLevel(Detector):
    """Epoch val_loss (else loss) within `margin` below chance level or up to
    `upper`x above it, while the training loss has not fallen `min_drop`
    from its start.

    Chance level comes from the header: ln 2 for binary cross-entropy, ln K
    for (sparse) categorical cross-entropy with a K-unit output layer; other
    losses are never judged. The validation loss is preferred because a big
    model can memorise random labels (its training loss falls) while
    learning nothing that generalises. The start is the median of the first
    `warmup` per-step losses (the first epoch's loss without batch
    records), so one epoch suffices to judge, once the run has taken
    `min_steps` optimizer steps: a first epoch of a few steps at chance
    says nothing yet (runs without batch records are judged from their
    first epoch). WARNING; clears when the loss leaves the band. Far above
    chance is `divergence`'s business.
    """

    id = "chance_level"
    title = "Loss at chance level"
    kinds = frozenset({HEADER, BATCH, EPOCH})
    defers_to = CAUSES["chance_level"]

    def __init__(
        self, margin: float = 0.05, upper: float = 1.5, min_drop: float = 0.05, warmup: int = 5, min_steps: int = 20
    ) -> None:
        self.margin = max(float(margin), 0.0)
        self.upper = max(float(upper), 1.0)
        self.min_drop = max(float(min_drop), 0.0)
        self.warmup = max(int(warmup), 1)
        self.min_steps = max(int(min_steps), 0)
        self.info = RunInfo()
        self.order = Order()
        self._early: list[float] = []
        self._start: float | None = None
        self._active = False
        self._since_epoch: int | None = None

    def observe(self, record: Record) -> list[Verdict]:
        self.info.update(record)
        if record.kind not in (BATCH, EPOCH) or not self.order.is_new(record):
            return []
        if record.kind == BATCH:
            loss = finite(record.values.get("loss"))
            if loss is not None and len(self._early) < self.warmup:
                self._early.append(loss)
                self._start = median(self._early)
            return []
        chance = self.info.chance_loss()
        train = finite(record.values.get("loss"))
        val = finite(record.values.get("val_loss"))
        level, name = (val, "val_loss") if val is not None else (train, "loss")
        if chance is None or level is None:
            return []
        if self._start is None and train is not None:
            self._start = train
            return []
        # With batch records, an epoch record's step counts optimizer steps.
        if self.order.seen_batches and record.step < self.min_steps and not self._active:
            return []  # a few steps in, a loss at chance says nothing yet
        in_band = (1 - self.margin) * chance <= level <= self.upper * chance
        if not in_band:
            if self._active:
                self._active = False
                self._since_epoch = None
                return [Clear()]
            return []
        if not self._active:
            start = self._start
            learning = train is not None and start is not None and train < (1 - self.min_drop) * start
            if learning:
                return []
            self._active = True
            self._since_epoch = record.epoch
        return [self._finding(record, name, level, train, chance)]

    def observe_block(self, block: BatchBlock) -> list[tuple[int, Verdict]]:
        """Batch records only give the start: the median of the first losses."""
        if len(self._early) >= self.warmup:
            return []  # the start is known: batch records have nothing more to give
        found = fresh_finite(block, self.order, "loss")
        if found is not None:
            self._early += found[1][: self.warmup - len(self._early)].tolist()
            if self._early:
                self._start = median(self._early)
        return []

    def _finding(self, record: Record, name: str, level: float, train: float | None, chance: float) -> Finding:
        info = self.info
        if (info.loss or "").lower().replace("_", "").startswith("binary"):
            why = "ln 2 for binary cross-entropy"
        else:
            why = f"ln {info.output_units} for {info.output_units} classes"
        message = (
            f"{name} {fmt(level)} at epoch {epoch_label(record.epoch)} is at chance level {fmt(chance)} "
            f"({why}): the model predicts no better than the label frequencies"
        )
        if train is not None and name != "loss":
            message += f" (training loss {fmt(train)})"
        evidence = {
            "monitor": name,
            "value": level,
            "loss": train,
            "chance_loss": chance,
            "start_loss": self._start,
            "since_epoch": self._since_epoch,
            "epoch": record.epoch,
            "loss_name": info.loss,
            "classes": info.output_units if not why.startswith("ln 2") else 2,
        }
        parts = [
            "Check that labels line up with their inputs (shuffle x and y together, same row order) "
            "and that the inputs carry the signal (the right columns, not all constant)",
            "standardise the inputs (StandardScaler)",
        ]
        too_high = info.lr_too_high()
        too_low = info.lr_too_low()
        if too_high:
            parts.append(f"the {too_high} (a rate that high can kill ReLU units for good)")
        elif too_low:
            parts.append(f"the {too_low}")
        parts.append(
            "check the output layer matches the loss (sigmoid + binary_crossentropy, "
            "softmax + categorical_crossentropy)"
        )
        return Finding(Severity.WARNING, message, "; ".join(parts) + ".", json_safe(evidence))
