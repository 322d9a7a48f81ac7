"""Validation loss rising while the training loss keeps falling.

That split is the signature of memorising the training set: the model gets
better at the data it sees and worse at data it does not. Every epoch past
the best validation loss is wasted unless the run is regularised or stopped.
"""

from __future__ import annotations

from collections import deque

from lossmon.detect.base import Clear, Detector, Finding, Severity, Verdict
from lossmon.detectors._util import (
    CAUSES,
    Order,
    epoch_label,
    finite,
    fmt,
)
from lossmon.format import EPOCH, Record, json_safe


class Overfitting(Detector):
    """val_loss above its best by `margin` for `patience` epochs, loss falling;
    a WARNING once the rise gives back `share` of what validation had gained.

    Reads epoch records. It holds when `monitor` (val_loss) has gone
    `patience` epochs without a new best and is now more than `margin`
    (10%, relative) above that best, and the training loss (the same key
    without `val_`) is now at least `train_drop` (5%) lower than it was at
    that best epoch. Severity is INFO while the rise is small against the
    progress validation made (from its first epoch down to its best, or
    `margin` of its best when it never fell), judged on the lowest of the
    last `patience` epochs so one noisy epoch does not count: a
    val_loss that drifts from 0.068 to 0.09 after falling from 0.54 is the
    mild overfitting of most long runs, and EarlyStopping handles it. It
    becomes a WARNING when the rise gives back at least `share` (25%) of
    that progress, the way divergence judges a rebound, and validation
    tracked training at the best epoch (val_loss at most `gap_limit`, 3x,
    the training loss): a validation loss that was never near the training
    loss is not a model memorising its data but one measured differently
    (BatchNormalization's moving statistics still warming up, validation
    data preprocessed otherwise). Calibrated on the corpus (docs/
    detectors.md): healthy runs' validation losses rise 10-50% above their
    best and give back at most a fifth of their progress. It clears when
    val_loss returns within the margin or the training loss climbs back to
    its value at the best epoch.
    """

    id = "overfitting"
    title = "Overfitting"
    kinds = frozenset({EPOCH})
    defers_to = CAUSES["overfitting"]

    def __init__(
        self,
        monitor: str = "val_loss",
        margin: float = 0.1,
        patience: int = 3,
        train_drop: float = 0.05,
        share: float = 0.25,
        gap_limit: float = 3.0,
    ) -> None:
        self.monitor = monitor
        self.share = max(float(share), 0.0)
        self.gap_limit = max(float(gap_limit), 1.0)
        self._first: float | None = None
        self.train_drop = max(float(train_drop), 0.0)
        self.train_key = monitor[4:] if monitor.startswith("val_") else "loss"
        self.margin = max(float(margin), 0.0)
        self.patience = max(int(patience), 1)
        self._recent: deque[float] = deque(maxlen=self.patience)  # the latest val losses
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
        if self._first is None:
            self._first = val
        self._recent.append(val)
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
        # A val_loss that never fell (its best is its first epoch) is judged
        # against `margin` of its best instead: it has given nothing to give back.
        progress = max((self._first - best) if self._first is not None else 0.0, self.margin * abs(best))
        given_back = (val - best) / progress if progress > 0 else None
        # A warning needs the rise held over `patience` epochs: one bad epoch
        # of a 36-row validation set gave back 61% and was gone the next.
        held = (min(self._recent) - best) / progress if progress > 0 and self._recent else None
        tracked = self._train_at_best is not None and self._train_at_best > 0 and best <= self.gap_limit * self._train_at_best
        serious = held is not None and held >= self.share and tracked
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
            "first_val_loss": self._first,
            "given_back": given_back,
            "epoch": record.epoch,
        }
        hint = (
            f"{self.monitor} has been above {fmt(best)} (epoch {best_at}) for "
            f"{self._since_best} epochs while {train_text}: the model is memorising the "
            "training set. Add Dropout(0.2-0.5) or L2 (kernel_regularizer=l2(1e-4)), "
            "get more data or augment it, or use EarlyStopping(monitor='val_loss', "
            f"patience={self.patience}, restore_best_weights=True) to keep the epoch-{best_at} weights."
        )
        if given_back is not None:
            message += f"; it has given back {given_back:.0%} of its fall from {fmt(self._first)}"
        return Finding(Severity.WARNING if serious else Severity.INFO, message, hint, json_safe(evidence))
