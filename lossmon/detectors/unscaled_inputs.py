"""Unscaled inputs: features far larger than the rest.

Reads the header's `data.inputs` (from the probe batch at train begin). A
feature's scale is its root mean square. Standardised features have scale
1 and [0, 1] features about 0.6; raw pixels (0-255), money or years have
scales of 100 or more, and with the usual initialisations their
pre-activations are then tens to thousands: sigmoids and tanhs saturate,
ReLU outputs blow up, and one feature's gradient swamps the others'.
Small features are not judged: a rare one-hot column has a tiny scale and
is harmless.
"""

from __future__ import annotations

from lossmon.detect.base import Detector, Finding, Severity, Verdict
from lossmon.detectors._probe import header_data
from lossmon.detectors._util import finite, fmt, fmt_times
from lossmon.format import HEADER, Record, json_safe


def _embeds(model: object) -> bool:
    """Whether the model's first layer after its input is an Embedding: its
    inputs are token ids, whose size means nothing."""
    layers = model.get("layers") if isinstance(model, dict) else None
    for layer in layers if isinstance(layers, list) else []:
        kind = layer.get("class") if isinstance(layer, dict) else None
        if kind != "InputLayer":
            return kind == "Embedding"
    return False


class UnscaledInputs(Detector):
    """At train begin: WARNING when the largest feature scale is >=
    `warn_scale` or >= `warn_ratio` x the median feature's; INFO from
    `info_scale` / `info_ratio`. NaN/inf inputs are `nonfinite`'s."""

    id = "unscaled_inputs"
    title = "Unscaled inputs"
    kinds = frozenset({HEADER})

    def __init__(self, warn_scale: float = 100.0, warn_ratio: float = 100.0, info_scale: float = 10.0, info_ratio: float = 10.0) -> None:
        self.warn_scale, self.warn_ratio = warn_scale, warn_ratio
        self.info_scale, self.info_ratio = info_scale, info_ratio

    def observe(self, record: Record) -> list[Verdict]:
        if record.kind != HEADER:
            return []
        inputs = header_data(record, "inputs")
        if not inputs or _embeds(record.data.get("model")):
            return []
        largest, median = finite(inputs.get("scale_max")), finite(inputs.get("scale_median"))
        if largest is None or median is None:
            return []
        ratio = largest / median if median > 0 else None
        if largest >= self.warn_scale or (ratio is not None and ratio >= self.warn_ratio):
            severity = Severity.WARNING
        elif largest >= self.info_scale or (ratio is not None and ratio >= self.info_ratio):
            severity = Severity.INFO
        else:
            return []
        worst = inputs.get("worst") if isinstance(inputs.get("worst"), list) else []
        top = worst[0] if worst and isinstance(worst[0], dict) else {}
        which = f"feature {top.get('index')}" if "index" in top else "the largest feature"
        message = f"{which} has scale {fmt(largest)}"
        if ratio is not None:
            message += f", {fmt_times(ratio)}x the median feature's {fmt(median)}"
        evidence = {
            "scale_max": largest,
            "scale_median": median,
            "scale_min": finite(inputs.get("scale_min")),
            "ratio": ratio,
            "worst": worst,
            "features": inputs.get("features"),
            "rows": inputs.get("rows"),
        }
        hint = (
            "standardise the inputs: fit sklearn's StandardScaler on the training set "
            "(or a keras.layers.Normalization layer with adapt()) and apply it to every split; "
            "divide pixel values by 255"
        )
        return [Finding(severity, message, hint, json_safe(evidence), key="scale")]
