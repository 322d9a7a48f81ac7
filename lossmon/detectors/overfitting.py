"""Validation loss rising while the training loss keeps falling.

That split is the signature of memorising the training set: the model gets
better at the data it sees and worse at data it does not. Every epoch past
the best validation loss is wasted unless the run is regularised or stopped.
"""

from __future__ import annotations

from lossmon.detect.base import Clear, Detector, Finding, Severity, Verdict
from lossmon.detectors._util import CAUSES, Order, epoch_label, finite, fmt
from lossmon.format import EPOCH, Record, json_safe


class Overfitting(Detector):
    """val_loss above its best by `margin` for `patience` epochs, loss falling.

    Reads epoch records. Fires when `monitor` (val_loss) has gone
    `patience` epochs without a new best and is now more than `margin`
    (10%, relative) above that best, and the training loss (the same key without `val_`)
    is now at least `train_drop` (5%) lower than it was at that best epoch.
    It clears when val_loss returns within the margin or the training loss
    climbs back to its value at the best epoch. The margin keeps epoch-to-
    epoch jitter of the validation loss quiet; patience 3 matches a common
    EarlyStopping setting. Severity WARNING. It clears once val_loss comes
    back within the margin of its best (or sets a new best).
    """

    id = "overfitting"
    title = "Overfitting"
    kinds = frozenset({EPOCH})
    defers_to = CAUSES["overfitting"]

    def __init__(self, monitor: str = "val_loss", margin: float = 0.1, patience: int = 3, train_drop: float = 0.05) -> None:
        self.monitor = monitor
        self.train_drop = max(float(train_drop), 0.0)
        self.train_key = monitor[4:] if monitor.startswith("val_") else "loss"
        self.margin = max(float(margin), 0.0)
        self.patience = max(int(patience), 1)
        self.order = Order()
        self._best: float | None = None
        self._best_epoch: int | None = None
        self._train_at_best: float | None = None
        self._since_best = 0
        self._active = False

    def observe(self, record: Record) -> list[Verdict]:
        if record.kind != EPOCH or not self.order.is_new(record):
            return []
        val = finite(record.values.get(self.monitor))
        if val is None:
            return []
        train = finite(record.values.get(self.train_key))
        if self._best is None or val < self._best:
            self._best, self._best_epoch, self._train_at_best = val, record.epoch, train
            self._since_best = 0
        else:
            self._since_best += 1

        limit = self._best + self.margin * abs(self._best)
        # Overfitting means the training loss goes on improving; when it
        # rises again the run has another problem (divergence, noise).
        improving = train is not None and self._train_at_best is not None and train < self._train_at_best
        if val <= limit or not improving:
            if self._active:
                self._active = False
                return [Clear()]
            return []
        if not self._active:
            # `patience` epochs without a new best, the latest above the margin:
            # "val_loss rose 3 epochs in a row" without waiting for three
            # epochs that are each 10% above (which costs two more epochs).
            risen = self._since_best >= self.patience and val > limit
            falling = train is not None and train <= (1 - self.train_drop) * self._train_at_best
            if not (risen and falling):
                return []
            self._active = True
        return [self._finding(val, train, record)]

    def _finding(self, val: float, train: float | None, record: Record) -> Finding:
        best = self._best if self._best is not None else val
        rise = (val - best) / abs(best) if best != 0 else None
        above = f"{rise:.0%} above" if rise is not None else "above"
        best_at = epoch_label(self._best_epoch)
        t_best, t_now = self._train_at_best, train
        if t_best is not None and t_now is not None:
            train_text = f"{self.train_key} {fmt(t_best)} -> {fmt(t_now)}"
        else:
            train_text = f"{self.train_key} n/a"
        message = (
            f"{self.monitor} {fmt(val)} is {above} its best {fmt(best)} "
            f"(epoch {best_at}, {self._since_best} epochs ago) while {train_text}"
        )
        evidence = {
            "best_val_loss": best,
            "best_epoch": self._best_epoch,
            "val_loss": val,
            "loss_at_best": t_best,
            "loss": t_now,
            "gap": val - t_now if t_now is not None else None,
            "gap_at_best": best - t_best if t_best is not None else None,
            "epochs_since_best": self._since_best,
            "rise": rise,
            "epoch": record.epoch,
        }
        hint = (
            f"{self.monitor} has been above {fmt(best)} (epoch {best_at}) for "
            f"{self._since_best} epochs while {train_text}: the model is memorising the "
            "training set. Add Dropout(0.2-0.5) or L2 (kernel_regularizer=l2(1e-4)), "
            "get more data or augment it, or use EarlyStopping(monitor='val_loss', "
            f"patience={self.patience}, restore_best_weights=True) to keep the epoch-{best_at} weights."
        )
        return Finding(Severity.WARNING, message, hint, json_safe(evidence))
