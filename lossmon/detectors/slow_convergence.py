"""The loss falls, but so slowly that the run will end having learned little.

Unlike a plateau the loss does improve every epoch; at its pace, though,
the remaining epochs cannot bring it far below where it started. The usual
cause is a learning rate far below what the optimizer expects.
"""

from __future__ import annotations

from lossmon.detect.base import Clear, Detector, Finding, Severity, Verdict
from lossmon.detectors._util import CAUSES, Order, RunInfo, epoch_label, finite, fmt, fmt_lr
from lossmon.format import EPOCH, HEADER, Record, json_safe


class SlowConvergence(Detector):
    """Epoch loss falling less than `min_rate` per epoch while still above
    `high_fraction` of the first epoch's, with no prospect of halving.

    Reads the epoch `monitor` value (training loss by default). The rate is
    the geometric mean decrease per epoch over the last `window` epochs
    (after at least `min_epochs`), so one noisy epoch does not decide. It
    fires when the rate is below `min_rate` (2% per epoch), the loss is
    still at least `high_fraction` (50%) of the first epoch's, and, when
    the header gives the number of epochs, the rate projected to the last
    epoch would still leave it there. WARNING. It clears once the rate
    picks up or the loss drops below the fraction.
    """

    id = "slow_convergence"
    title = "Slow convergence"
    kinds = frozenset({HEADER, EPOCH})
    defers_to = CAUSES["slow_convergence"]

    def __init__(
        self,
        monitor: str = "loss",
        min_rate: float = 0.02,
        high_fraction: float = 0.5,
        min_epochs: int = 2,
        window: int = 3,
    ) -> None:
        self.monitor = monitor
        self.min_rate = float(min_rate)
        self.high_fraction = float(high_fraction)
        self.min_epochs = max(int(min_epochs), 2)
        self.window = max(int(window), 1)
        self.info = RunInfo()
        self.order = Order()
        self._values: list[float] = []
        self._epochs_total: int | None = None
        self._active = False

    def observe(self, record: Record) -> list[Verdict]:
        self.info.update(record)
        if record.kind == "header" and isinstance(record.data, dict):
            total = record.data.get("epochs")
            self._epochs_total = total if type(total) is int and total > 0 else None
        if record.kind != EPOCH or not self.order.is_new(record):
            return []
        value = finite(record.values.get(self.monitor))
        if value is None or value <= 0:
            return []
        self._values.append(value)
        if len(self._values) < self.min_epochs:
            return []
        first = self._values[0]
        span = min(self.window, len(self._values) - 1)
        past = self._values[-1 - span]
        rate = 1 - (value / past) ** (1 / span)
        done = len(self._values)
        remaining = max((self._epochs_total or done) - done, 0)
        projected = value * (1 - max(rate, 0.0)) ** remaining
        slow = rate < self.min_rate and value >= self.high_fraction * first and projected >= self.high_fraction * first
        if not slow:
            if self._active:
                self._active = False
                return [Clear()]
            return []
        self._active = True
        return [self._finding(record, value, first, rate, projected, remaining)]

    def _finding(self, record: Record, value: float, first: float, rate: float, projected: float, remaining: int) -> Finding:
        name = self.monitor
        pace = f"falling {rate:.2%} per epoch" if rate > 0 else "not falling"
        message = (
            f"{name} {fmt(value)} at epoch {epoch_label(record.epoch)} is still {value / first:.0%} of the first "
            f"epoch's {fmt(first)}, {pace}"
        )
        if remaining:
            message += f"; at that pace it ends near {fmt(projected)} after {remaining} more epochs"
        evidence = {
            "monitor": name,
            "value": value,
            "first": first,
            "rate_per_epoch": rate,
            "projected_final": projected,
            "remaining_epochs": remaining,
            "epoch": record.epoch,
        }
        info = self.info
        if info.lr is not None:
            evidence["learning_rate"] = info.lr
        too_low = info.lr_too_low(10.0)
        if too_low:
            head = f"The {too_low}"
        elif info.lr is not None:
            head = f"Try a 3-10x higher learning rate ({fmt_lr(info.lr)} -> {fmt_lr(info.lr * 3)} or {fmt_lr(info.lr * 10)})"
        else:
            head = "Try a 3-10x higher learning rate"
        hint = (
            head
            + "; standardise inputs and regression targets (StandardScaler) so the loss surface is "
            "not stretched; check that a schedule has not already decayed the rate to nothing."
        )
        return Finding(Severity.WARNING, message, hint, json_safe(evidence))
