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
    LOWER,
    RAISE,
    Order,
    RunInfo,
    epoch_label,
    finite,
    fmt,
    fresh_finite,
    lr_advice,
    sentence,
)
from lossmon.detectors._start import RunStart
from lossmon.format import BATCH, EPOCH, HEADER, Record, json_safe


class ChanceLevel(Detector):
    """Epoch val_loss (else loss) within `margin` below chance level or up to
    `upper`x above it for `patience` epochs in a row, without gaining
    `min_gain` over them.

    Chance level comes from the header: ln 2 for binary cross-entropy, ln K
    for (sparse) categorical cross-entropy with a K-unit output layer; other
    losses are never judged. The validation loss is preferred because a big
    model can memorise random labels (its training loss falls) while
    learning nothing that generalises. It judges once the run has taken
    `min_steps` optimizer steps (runs without batch records from their
    first epoch). Calibrated on the corpus: healthy runs that start slowly
    (a warm-up from 0, a small learning rate, a recurrent net) sit at
    chance for an epoch or two but gain a few percent an epoch from the
    first; random labels gain nothing for as long as they train. WARNING;
    clears when the loss leaves the band. Far above chance is
    `divergence`'s business.
    """

    id = "chance_level"
    title = "Loss at chance level"
    kinds = frozenset({HEADER, BATCH, EPOCH})
    defers_to = CAUSES["chance_level"]

    def __init__(
        self,
        margin: float = 0.05,
        upper: float = 1.5,
        min_gain: float = 0.01,
        patience: int = 3,
        min_steps: int = 60,
        learning: float = 0.7,
        min_drop: float | None = None,  # superseded by `min_gain` and `learning`; accepted so older configs load
        warmup: int | None = None,  # the start is the shared RunStart now; likewise accepted
    ) -> None:
        self.learning = max(float(learning), 0.0)
        self.margin = max(float(margin), 0.0)
        self.upper = max(float(upper), 1.0)
        self.min_gain = max(float(min_gain), 0.0)
        self.patience = max(int(patience), 1)
        self.min_steps = max(int(min_steps), 0)
        self.info = RunInfo()
        self.order = Order()
        self.start = RunStart()
        self._band: list[float] = []  # the levels of the latest epochs in a row in the band
        self._active = False
        self._since_epoch: int | None = None

    def observe(self, record: Record) -> list[Verdict]:
        self.info.update(record)
        if record.kind not in (BATCH, EPOCH) or not self.order.is_new(record):
            return []
        self.start.observe(record)
        if record.kind != EPOCH:
            return []
        chance = self.info.chance_loss()
        train = finite(record.values.get("loss"))
        val = finite(record.values.get("val_loss"))
        level, name = (val, "val_loss") if val is not None else (train, "loss")
        if chance is None or level is None:
            return []
        in_band = (1 - self.margin) * chance <= level <= self.upper * chance
        if not in_band:
            self._band = []
            if self._active:
                self._active = False
                self._since_epoch = None
                return [Clear()]
            return []
        self._band.append(level)
        if not self._active:
            # With batch records, an epoch record's step counts optimizer steps.
            if self.order.seen_batches and record.step < self.min_steps:
                return []  # a few steps in, a loss at chance says nothing yet
            if len(self._band) < self.patience:
                return []
            recent = self._band[-self.patience :]
            if recent[-1] < (1 - self.min_gain) * recent[0] or (
                len(recent) > 1 and all(b < a for a, b in zip(recent, recent[1:]))
            ):
                return []  # at chance but gaining (or falling every epoch): a slow start, not a dead end
            start = self.start.value
            if (
                name != "loss" and train is not None and start is not None
                and train < self.learning * start and train < (1 - self.margin) * chance
            ):
                return []  # training learns while validation lags (BatchNormalization warming up): not chance
            self._active = True
            self._since_epoch = record.epoch
        return [self._finding(record, name, level, train, chance)]

    def observe_block(self, block: BatchBlock) -> list[tuple[int, Verdict]]:
        """Batch records only give the start (and the order their steps)."""
        found = fresh_finite(block, self.order, "loss")
        if found is not None and not self.start.complete:
            self.start.take(found[1][: self.start.steps].tolist())
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
            "start_loss": self.start.value,
            "epochs_at_chance": len(self._band),
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
        parts.append(lr_advice(info, LOWER, seen=False) or lr_advice(info, RAISE) or "")
        parts.append(
            "check the output layer matches the loss (sigmoid + binary_crossentropy, "
            "softmax + categorical_crossentropy)"
        )
        return Finding(Severity.WARNING, message, sentence(*parts), json_safe(evidence))
