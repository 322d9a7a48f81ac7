"""Saturated sigmoid/tanh units: stuck in the flat part of their curve.

A unit counts as saturated when at least 90% of its outputs on the probe
rows are below 0.01 or above 0.99 (sigmoid), or beyond +/-0.99 (tanh):
its slope there is under 4% of its peak, so it passes almost no gradient.
Reads `saturated_fraction/<layer>` of probe records (hidden layers only: a
confident output layer is the goal, not a fault).
"""

from __future__ import annotations

from lossmon.detectors._layer_share import LayerShareDetector
from lossmon.detectors._util import (
    CAUSES,
)
from lossmon.format import EPOCH, HEADER, PROBE


class Saturation(LayerShareDetector):
    """WARNING when half a layer's units are saturated on 2 probes in a row."""

    id = "saturation"
    title = "Saturated activations"
    kinds = frozenset({HEADER, EPOCH, PROBE})
    defers_to = CAUSES["saturation"]
    measure = "saturated_fraction"
    what = "saturated"
    advice = (
        "scale the inputs (StandardScaler)",
        "use Glorot initialisation and BatchNormalization before the activation, or relu in hidden layers",
    )
