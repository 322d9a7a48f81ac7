"""The built-in detectors, one module each; ids are a public interface."""

from __future__ import annotations

from lossmon.detect.base import Detector
from lossmon.detectors.chance_level import ChanceLevel
from lossmon.detectors.class_imbalance import ClassImbalance
from lossmon.detectors.dead_relu import DeadRelu
from lossmon.detectors.divergence import Divergence
from lossmon.detectors.exploding_gradients import ExplodingGradients
from lossmon.detectors.loss_mismatch import LossMismatch
from lossmon.detectors.lr_config import LrConfig
from lossmon.detectors.nonfinite import NonFinite
from lossmon.detectors.oscillation import Oscillation
from lossmon.detectors.overfitting import Overfitting
from lossmon.detectors.plateau import Plateau
from lossmon.detectors.saturation import Saturation
from lossmon.detectors.slow_convergence import SlowConvergence
from lossmon.detectors.spike import Spike
from lossmon.detectors.stalled import Stalled
from lossmon.detectors.unscaled_inputs import UnscaledInputs
from lossmon.detectors.unscaled_targets import UnscaledTargets
from lossmon.detectors.update_ratio import UpdateRatio
from lossmon.detectors.vanishing_gradients import VanishingGradients

# Probe and train-begin detectors (issue 3): they read probe records and the header.
PROBE_DETECTORS: tuple[type[Detector], ...] = (
    LrConfig, LossMismatch, UnscaledInputs, UnscaledTargets, ClassImbalance, ExplodingGradients,
    VanishingGradients, DeadRelu, Saturation, UpdateRatio,
)

BUILTIN: dict[str, type[Detector]] = {
    cls.id: cls
    for cls in (
        NonFinite, Divergence, Oscillation, Spike, Plateau, SlowConvergence, Overfitting, ChanceLevel, Stalled,
        *PROBE_DETECTORS,
    )
}

__all__ = [
    "BUILTIN", "ChanceLevel", "Divergence", "NonFinite", "Oscillation", "Overfitting", "Plateau",
    "SlowConvergence", "Spike", "Stalled",
    "ClassImbalance", "DeadRelu", "ExplodingGradients", "LossMismatch", "LrConfig", "Saturation",
    "UnscaledInputs", "UnscaledTargets", "UpdateRatio", "VanishingGradients", "PROBE_DETECTORS",
]
