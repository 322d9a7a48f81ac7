"""The same 5% positives with class_weight='balanced' (control)."""

from __future__ import annotations

from lossmon.scenarios import imbalanced

EXPECTED: tuple[str, ...] = ()
ONSET = 0


def train(path: str, *, epochs: int | None = None, pace: float = 0.0) -> None:
    imbalanced.train(path, epochs=epochs, pace=pace, weighted=True)
