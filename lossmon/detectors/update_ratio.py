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
from lossmon.detectors._util import CAUSES, RunInfo, fmt
from lossmon.format import EPOCH, HEADER, PROBE, Record, json_safe


class UpdateRatio(Detector):
    """WARNING when the largest layer ratio is >= `high` (CRITICAL >=
    `critical`), or some layer's is <= `low`, on `patience` probes in a row."""

    id = "update_ratio"
    title = "Update ratio out of range"
    kinds = frozenset({HEADER, EPOCH, PROBE})
    defers_to = CAUSES["update_ratio"]

    def __init__(self, high: float = 0.05, critical: float = 0.5, low: float = 1e-5, patience: int = 3) -> None:
        self.high, self.critical, self.low = high, critical, low
        self.high_streak = Streak(patience)
        self.low_streak = Streak(patience)
        self.info = RunInfo()
        self.active: set[str] = set()

    def observe(self, record: Record) -> list[Verdict]:
        self.info.update(record)
        if not is_probe(record):
            return []
        ratios = per_layer(record, "update_ratio")
        if not ratios:
            return []
        out: list[Verdict] = []
        largest = max(ratios, key=lambda name: ratios[name])
        smallest = min(ratios, key=lambda name: ratios[name])
        if self.high_streak.update(ratios[largest] >= self.high, record.step):
            severity = Severity.CRITICAL if ratios[largest] >= self.critical else Severity.WARNING
            message = (
                f"one step moves layer {largest}'s weights by {fmt(ratios[largest])} of their norm "
                f"(healthy: ~1e-3), {self.high_streak.count} probes in a row"
            )
            lr = self.info.lr_too_high()
            hint = (lr + "; " if lr else "lower the learning rate 3-10x; ") + "or add gradient clipping (clipnorm=1.0)"
            out.append(Finding(severity, message, hint, json_safe(self._evidence(record, ratios, self.high_streak, self.high)), key="high"))
            self.active.add("high")
        elif "high" in self.active:
            self.active.discard("high")
            out.append(Clear(key="high"))
        if self.low_streak.update(ratios[smallest] <= self.low, record.step):
            moved = f"moves layer {smallest}'s weights by {fmt(ratios[smallest])} of their norm"
            if ratios[smallest] == 0:
                moved = f"leaves layer {smallest}'s weights unchanged"
            message = f"one step {moved}: it is barely learning, {self.low_streak.count} probes in a row"
            lr = self.info.lr_too_low()
            hint = (
                (lr + "; " if lr else "")
                + "check that the layer gets gradient (dead units, vanishing gradients), "
                "that it is meant to be trainable, and that a schedule has not decayed the learning rate to nothing"
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
