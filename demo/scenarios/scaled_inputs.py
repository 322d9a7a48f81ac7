"""The feature * 1000 data after StandardScaler (control)."""

from __future__ import annotations

from lossmon.scenarios import unscaled_inputs

EXPECTED: tuple[str, ...] = ()
ONSET = 0


def train(path: str, *, epochs: int | None = None, pace: float = 0.0) -> None:
    unscaled_inputs.train(path, epochs=epochs, pace=pace, scaled=True)
