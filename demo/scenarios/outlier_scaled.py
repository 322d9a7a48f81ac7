"""The same outlier data after StandardScaler on inputs and targets (control)."""

from __future__ import annotations

from lossmon.scenarios import outlier

EXPECTED: tuple[str, ...] = ()
ONSET = 0


def train(path: str, *, epochs: int | None = None, pace: float = 0.0) -> None:
    outlier.train(path, epochs=epochs, pace=pace, scaled=True)
