"""The seeds' regression model with Adam(1e-5), 100x below the default: the loss creeps down 0.5% an epoch."""

from __future__ import annotations

from lossmon.scenarios._seeds import train_regression_lr

EXPECTED: tuple[str, ...] = ("slow_convergence",)
ONSET = 0


def train(path: str, *, epochs: int | None = None, pace: float = 0.0) -> None:
    train_regression_lr(path, 1e-5, epochs=epochs or 8, pace=pace)
