"""Unscaled regression targets: the model must output values in the thousands.

Reads the header's `data.labels` (the probe sample's labels at train
begin) when they are regression targets. A target's scale is its root mean
square, sqrt(mean^2 + std^2), as for the inputs. Layers start near unit
scale and an optimizer moves each weight by about its learning rate per
step, so a model whose targets sit at 1e4 spends thousands of steps only
moving its output bias, and an MSE loss of 1e8-1e15 stays flat on the
plot: the run looks like a plateau while the cause is in the data. Both
seed articles' regressions fix this with `StandardScaler` on y.
"""

from __future__ import annotations

import math

from lossmon.detect.base import Detector, Finding, Severity, Verdict
from lossmon.detectors._probe import header_data
from lossmon.detectors._util import finite, fmt
from lossmon.format import HEADER, Record, json_safe


class UnscaledTargets(Detector):
    """At train begin: WARNING when the regression targets' scale is >=
    `warn_scale` (100: a linear output would need hundreds of steps per
    unit of bias at Adam's default); INFO from `info_scale` (10)."""

    id = "unscaled_targets"
    title = "Unscaled targets"
    kinds = frozenset({HEADER})

    def __init__(self, warn_scale: float = 100.0, info_scale: float = 10.0) -> None:
        self.warn_scale, self.info_scale = float(warn_scale), float(info_scale)

    def observe(self, record: Record) -> list[Verdict]:
        if record.kind != HEADER:
            return []
        labels = header_data(record, "labels")
        if labels.get("task") != "regression":
            return []
        mean, std = finite(labels.get("mean")), finite(labels.get("std"))
        if mean is None or std is None:
            return []
        scale = math.hypot(mean, std)
        if scale >= self.warn_scale:
            severity = Severity.WARNING
        elif scale >= self.info_scale:
            severity = Severity.INFO
        else:
            return []
        message = (
            f"regression targets have scale {fmt(scale)} (mean {fmt(mean)}, std {fmt(std)}, "
            f"{fmt(finite(labels.get('min')))} to {fmt(finite(labels.get('max')))}): the output must reach "
            f"{fmt(scale)} from a start near 0"
        )
        evidence = {
            "scale": scale,
            "mean": mean,
            "std": std,
            "min": finite(labels.get("min")),
            "max": finite(labels.get("max")),
            "rows": labels.get("rows"),
        }
        hint = (
            "standardise the targets: fit sklearn's StandardScaler on y_train (y.reshape(-1, 1)) and "
            "invert it on predictions, or wrap the model's regressor in sklearn's "
            "TransformedTargetRegressor; a log transform (np.log1p) suits positive, skewed targets"
        )
        return [Finding(severity, message, hint, json_safe(evidence))]
