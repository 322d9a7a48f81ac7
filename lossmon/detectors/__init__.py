"""The built-in detectors, one module each; ids are a public interface."""

from __future__ import annotations

from lossmon.detect.base import Detector
from lossmon.detectors.divergence import Divergence
from lossmon.detectors.nonfinite import NonFinite
from lossmon.detectors.overfitting import Overfitting
from lossmon.detectors.plateau import Plateau

BUILTIN: dict[str, type[Detector]] = {
    cls.id: cls for cls in (NonFinite, Divergence, Plateau, Overfitting)
}

__all__ = ["BUILTIN", "Divergence", "NonFinite", "Overfitting", "Plateau"]
