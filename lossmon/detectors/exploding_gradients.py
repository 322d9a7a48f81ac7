"""Exploding gradients: the gradient norm on the probe batch runs away.

Reads the run-wide `grad_norm` and `probe_loss` of probe records. The norm
is compared with where it started (the smallest of the first `baseline`
probes), so a model whose gradients are simply large from the start
(unscaled targets, a big loss) is not called exploding, only one whose
gradients grow. AutoTrainer's depth rule is kept too: the first layer's
kernel gradient more than `ratio_above` times the last layer's
(`grad_ratio`) means the gradient grows on its way back through the layers.
Either counts only while it hurts: the probe loss well above its best. A
non-finite norm is `nonfinite`'s business.
"""

from __future__ import annotations

import math

from lossmon.detect.base import Clear, Detector, Finding, Severity, Verdict
from lossmon.detectors._probe import Streak, is_probe
from lossmon.detectors.vanishing_gradients import vanishing
from lossmon.detectors._util import (
    CAUSES,
    LOWER,
    RunInfo,
    finite,
    fmt,
    fmt_times,
    lr_advice,
    sentence,
)
from lossmon.format import EPOCH, HEADER, PROBE, Record, json_number, json_safe


class ExplodingGradients(Detector):
    """For `patience` probes in a row the probe gradient norm is `factor`x
    its starting value (WARNING; CRITICAL from `critical_factor`x) or
    `grad_ratio` exceeds `ratio_above` (WARNING), while the probe loss is
    at least `harm` (1.5x) its lowest so far (growth that costs nothing is
    a model leaving its flat start); or the norm is `absolute` (100) or
    more, whatever its start (an exploding recurrent net starts there);
    never while vanishing_gradients' rules hold on the same probe. NaN
    gradients are `nonfinite`'s."""

    id = "exploding_gradients"
    title = "Exploding gradients"
    kinds = frozenset({HEADER, EPOCH, PROBE})
    defers_to = CAUSES["exploding_gradients"]

    def __init__(
        self,
        factor: float = 100.0,
        critical_factor: float = 1e4,
        ratio_above: float = 70.0,
        patience: int = 2,
        baseline: int = 3,
        harm: float = 1.5,
        absolute: float = 100.0,
    ) -> None:
        self.absolute = float(absolute)
        self.factor = factor
        self.harm = max(float(harm), 1.0)
        self._best_loss: float | None = None  # the lowest probe loss so far
        self._first_loss: float | None = None
        self.ratio_above = ratio_above
        self.critical_factor = critical_factor
        self.baseline_probes = baseline
        self.streak = Streak(patience)
        self.start: list[float] = []
        self.info = RunInfo()
        self.active = False

    def observe(self, record: Record) -> list[Verdict]:
        self.info.update(record)
        if not is_probe(record) or "grad_norm" not in record.values:
            return []
        value = record.values["grad_norm"]
        if not math.isfinite(value):
            return []  # NaN gradients are nonfinite's: this probe says nothing about growth
        depth = finite(record.values.get("grad_ratio"))
        deep = depth is not None and depth > self.ratio_above
        loss = finite(record.values.get("probe_loss"))
        if loss is not None and self._first_loss is None:
            self._first_loss = loss
        if loss is not None and (self._best_loss is None or loss < self._best_loss):
            self._best_loss = loss
        # Growth is an explosion when it costs the loss: healthy runs of the
        # corpus grow their gradient norms 100x from a near-flat start while
        # the loss falls (and CNNs give the first layer 90x the last one's).
        harmed = loss is None or self._hurts(loss)
        starved = any(vanishing(record.values)[::2])  # vanishing_gradients' question: never both
        if len(self.start) < self.baseline_probes:
            if value > 0:
                self.start.append(value)
            ratio = 0.0
        else:
            base = min(self.start)
            ratio = value / base if base > 0 else 0.0
        huge = value >= self.absolute  # no healthy corpus run's norm passed 45 (of 440); broken ones start at 1e2-1e5
        if not self.streak.update(((ratio >= self.factor or deep) and harmed or huge) and not starved, record.step):
            return self._clear()
        self.active = True
        severity = Severity.CRITICAL if ratio >= self.critical_factor else Severity.WARNING
        return [self._finding(record, value, ratio if ratio >= self.factor else None, severity, deep, huge)]

    def _hurts(self, loss: float) -> bool:
        """The probe loss is `harm`x its best and has given back a quarter of
        the progress from the first probe (0.001 from 0.0005 hurts nothing)."""
        best, first = self._best_loss, self._first_loss
        if best is None or first is None:
            return True
        return loss >= self.harm * best and loss - best >= 0.25 * max(first - best, 0.0)

    def _clear(self) -> list[Verdict]:
        if self.active:
            self.active = False
            return [Clear()]
        return []

    def _finding(
        self, record: Record, value: float, ratio: float | None, severity: Severity, deep: bool = False, huge: bool = False
    ) -> Finding:
        base = min(self.start) if self.start else None
        if not math.isfinite(value):
            message = f"gradient norm is {json_number(value)} at step {record.step}"
        elif huge and ratio is None and not deep:
            message = (
                f"gradient norm {fmt(value)} at step {record.step}: far beyond what a working model shows "
                f"(below {fmt(self.absolute)}), for {self.streak.count} probes in a row"
            )
        elif ratio is None and deep:
            message = (
                f"the first layer's gradient is {fmt(finite(record.values.get('grad_ratio')))}x the last layer's "
                f"at step {record.step}: it grows on its way back through the layers"
            )
        else:
            message = (
                f"gradient norm {fmt(value)} at step {record.step} is {fmt_times(ratio)}x "
                f"its starting value {fmt(base)}"
            )
        first, last = finite(record.values.get("grad_first")), finite(record.values.get("grad_last"))
        evidence = {
            "grad_norm": json_number(value),
            "start_grad_norm": base,
            "ratio": ratio,
            "grad_first": first,
            "grad_last": last,
            "grad_ratio": finite(record.values.get("grad_ratio")),
            "probes": self.streak.count,
            "since_step": self.streak.since,
            "step": record.step,
        }
        hint = sentence(
            "clip gradients (optimizer clipnorm=1.0)",
            lr_advice(self.info, LOWER, seen=False),
            "scale inputs and regression targets (StandardScaler)",
            "in deep or recurrent models use He/Glorot initialisation and normalisation layers",
        )
        return Finding(severity, message, hint, json_safe(evidence))
