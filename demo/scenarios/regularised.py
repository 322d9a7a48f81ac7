"""The overfitting model with the seeds' L2(0.01) and Dropout(0.5): val_loss keeps falling (control)."""

from __future__ import annotations

from lossmon.scenarios._seeds import train_overfit

EXPECTED: tuple[str, ...] = ()
ONSET = 0


def train(path: str, *, epochs: int | None = None, pace: float = 0.0) -> None:
    train_overfit(path, regularised=True, epochs=epochs or 15, pace=pace)
