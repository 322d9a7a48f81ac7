"""Exploding gradients: the gradient norm on the probe batch runs away.

Reads the run-wide `grad_norm` of probe records. A non-finite gradient norm
is critical at once; otherwise the norm is compared with where it started
(the smallest of the first `baseline` probes), so a model whose gradients
are simply large from the start (unscaled targets, a big loss) is not
called exploding, only one whose gradients grow. AutoTrainer's depth rule
is kept too: the first layer's kernel gradient more than `ratio_above`
times the last layer's (`grad_ratio`) means the gradient grows on its way
back through the layers.
"""

from __future__ import annotations

import math

from lossmon.detect.base import Clear, Detector, Finding, Severity, Verdict
from lossmon.detectors._probe import Streak, is_probe
from lossmon.detectors._util import (
    CORRUPT,
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
    """The probe gradient norm is non-finite (CRITICAL), or for `patience`
    probes in a row it is `factor`x its starting value (WARNING; CRITICAL
    from `critical_factor`x) or `grad_ratio` exceeds `ratio_above` (WARNING)."""

    id = "exploding_gradients"
    title = "Exploding gradients"
    kinds = frozenset({HEADER, EPOCH, PROBE})
    defers_to = CORRUPT

    def __init__(
        self, factor: float = 100.0, critical_factor: float = 1e4, ratio_above: float = 70.0, patience: int = 2, baseline: int = 3
    ) -> None:
        self.factor = factor
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
        if len(self.start) < self.baseline_probes:
            if value > 0:
                self.start.append(value)
            ratio = 0.0
        else:
            base = min(self.start)
            ratio = value / base if base > 0 else 0.0
        if not self.streak.update(ratio >= self.factor or deep, record.step):
            return self._clear()
        self.active = True
        severity = Severity.CRITICAL if ratio >= self.critical_factor else Severity.WARNING
        return [self._finding(record, value, ratio if ratio >= self.factor else None, severity, deep)]

    def _clear(self) -> list[Verdict]:
        if self.active:
            self.active = False
            return [Clear()]
        return []

    def _finding(self, record: Record, value: float, ratio: float | None, severity: Severity, deep: bool = False) -> Finding:
        base = min(self.start) if self.start else None
        if not math.isfinite(value):
            message = f"gradient norm is {json_number(value)} at step {record.step}"
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
