"""Update ratio: how far one optimizer step moves each layer's weights.

Reads `update_ratio/<layer>` of probe records: ||W_t - W_t-1|| / ||W_t||
for the kernel of each layer, over the one step just before the probe.
Healthy training moves weights by about 1e-3 of their norm per step (a few
1e-3 for Adam at its default rate early on). Far more, and each step
overshoots; far less, and the layer does not learn.
"""

from __future__ import annotations

from lossmon.detect.base import Clear, Detector, Finding, Severity, Verdict
from lossmon.detectors._probe import Streak, is_probe, per_layer
from lossmon.detectors._util import (
    CAUSES,
    LOWER,
    RAISE,
    RunInfo,
    fmt,
    lr_advice,
    median,
    sentence,
)
from lossmon.format import EPOCH, HEADER, PROBE, Record, json_safe


class UpdateRatio(Detector):
    """WARNING when the median layer's ratio is >= `high` (CRITICAL >=
    `critical`), or <= `low` while the learning rate is within `decayed`
    (10x) of its peak, on `patience` probes in a row.

    The median layer, not the extreme one: in healthy runs of the corpus a
    single layer moves far more than the rest (an Embedding's small rows
    under Adam, a final layer with a small norm) or hardly at all (a layer
    whose gradient has settled near a minimum, weights behind dead units);
    a learning rate 100x too high or 1000x too low moves every layer. A
    schedule that has decayed the rate to a tenth of its peak moves the
    weights little by design."""

    id = "update_ratio"
    title = "Update ratio out of range"
    kinds = frozenset({HEADER, EPOCH, PROBE})
    defers_to = CAUSES["update_ratio"]

    def __init__(
        self, high: float = 0.05, critical: float = 0.5, low: float = 2e-6, patience: int = 3, decayed: float = 10.0
    ) -> None:
        self.high, self.critical, self.low = high, critical, low
        self.decayed = max(float(decayed), 1.0)
        self._peak_lr: float | None = None
        self.high_streak = Streak(patience)
        self.low_streak = Streak(patience)
        self.info = RunInfo()
        self.active: set[str] = set()

    def observe(self, record: Record) -> list[Verdict]:
        self.info.update(record)
        if self.info.lr is not None:
            self._peak_lr = max(self._peak_lr or 0.0, self.info.lr)
        if not is_probe(record):
            return []
        ratios = per_layer(record, "update_ratio")
        if not ratios:
            return []
        out: list[Verdict] = []
        largest = max(ratios, key=lambda name: ratios[name])
        smallest = min(ratios, key=lambda name: ratios[name])
        typical = median(list(ratios.values()))
        if self.high_streak.update(typical >= self.high, record.step):
            severity = Severity.CRITICAL if typical >= self.critical else Severity.WARNING
            message = (
                f"one step moves the weights by {fmt(typical)} of their norm in the median layer "
                f"(layer {largest}: {fmt(ratios[largest])}; healthy: ~1e-3), {self.high_streak.count} probes in a row"
            )
            hint = sentence(lr_advice(self.info, LOWER, seen=False), "add gradient clipping (clipnorm=1.0)",
                            "warm the learning rate up over the first steps")
            out.append(Finding(severity, message, hint, json_safe(self._evidence(record, ratios, self.high_streak, self.high)), key="high"))
            self.active.add("high")
        elif "high" in self.active:
            self.active.discard("high")
            out.append(Clear(key="high"))
        decayed = self._peak_lr is not None and self.info.lr is not None and self.info.lr < self._peak_lr / self.decayed
        if self.low_streak.update(typical <= self.low and not decayed, record.step):
            moved = f"moves the weights by {fmt(typical)} of their norm in the median layer"
            if ratios[smallest] == 0 and typical == 0:
                moved = "leaves the weights unchanged"
            message = f"one step {moved}: the model is barely learning, {self.low_streak.count} probes in a row"
            hint = sentence(
                lr_advice(self.info, RAISE),
                "check that the layers get gradient (dead units, vanishing gradients), "
                "that they are meant to be trainable, that a schedule has not decayed the learning rate to nothing, "
                "and that an L2 penalty (kernel_regularizer) or weight decay is not pinning the weights near zero",
            )
            out.append(Finding(Severity.WARNING, message, hint, json_safe(self._evidence(record, ratios, self.low_streak, self.low)), key="low"))
            self.active.add("low")
        elif "low" in self.active:
            self.active.discard("low")
            out.append(Clear(key="low"))
        return out

    def _evidence(self, record: Record, ratios: dict[str, float], streak: Streak, threshold: float) -> dict:
        return {
            "update_ratios": ratios,
            "threshold": threshold,
            "learning_rate": self.info.lr,
            "optimizer": self.info.optimizer,
            "probes": streak.count,
            "since_step": streak.since,
            "step": record.step,
        }
