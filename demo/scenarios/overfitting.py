"""Two Dense(256) layers on 100 noisy rows, no regularisation: val_loss rises from epoch 2 on."""

from __future__ import annotations

from lossmon.scenarios._seeds import OVERFIT_STEPS_PER_EPOCH, train_overfit

EXPECTED: tuple[str, ...] = ("overfitting",)
ONSET = OVERFIT_STEPS_PER_EPOCH  # val_loss is lowest after epoch 1, then climbs


def train(path: str, *, epochs: int | None = None, pace: float = 0.0) -> None:
    train_overfit(path, regularised=False, epochs=epochs or 15, pace=pace)
