"""Dead ReLUs: hidden ReLU units that output zero for every probe row.

A unit that is zero for every input gets no gradient and never recovers.
Reads `dead_fraction/<layer>` of probe records (ReLU layers only; the
output layer is not probed).
"""

from __future__ import annotations

from lossmon.detectors._layer_share import LayerShareDetector
from lossmon.detectors._util import (
    CAUSES,
)
from lossmon.format import EPOCH, HEADER, PROBE


class DeadRelu(LayerShareDetector):
    """WARNING when 60% of a layer's units are dead on 2 probes in a row (healthy
    runs of the tuning corpus reach 50%, the faults 100%);
    CRITICAL when the whole layer is dead (nothing passes it any more)."""

    id = "dead_relu"
    title = "Dead ReLU units"
    kinds = frozenset({HEADER, EPOCH, PROBE})
    defers_to = CAUSES["dead_relu"]
    measure = "dead_fraction"
    what = "dead ReLU"
    advice = (
        "use LeakyReLU or gelu, He initialisation (kernel_initializer='he_normal') and a non-negative bias start",
        "scale the inputs (StandardScaler): large inputs push units negative for good",
        "a strong L2 penalty (kernel_regularizer) or weight decay pulls the weights to zero: try 1e-4",
    )

    def __init__(self, warn_at: float = 0.6, critical_at: float | None = 0.999, patience: int = 2) -> None:
        super().__init__(warn_at, critical_at, patience)
