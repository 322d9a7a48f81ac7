"""The seeds' learning-rate sweep at Adam(0.01) on a learnable regression (control)."""

from __future__ import annotations

from lossmon.scenarios._seeds import train_regression_lr

EXPECTED: tuple[str, ...] = ()
ONSET = 0


def train(path: str, *, epochs: int | None = None, pace: float = 0.0) -> None:
    train_regression_lr(path, 0.01, epochs=epochs, pace=pace)
