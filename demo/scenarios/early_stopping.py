"""The overfitting run with the seeds' EarlyStopping(patience=10, restore_best_weights=True)."""

from __future__ import annotations

import keras

from lossmon.scenarios._seeds import OVERFIT_STEPS_PER_EPOCH, train_overfit

# lossmon warns while EarlyStopping is still waiting out its patience; the
# run then ends with status "stopped_early".
EXPECTED: tuple[str, ...] = ("overfitting",)
ONSET = OVERFIT_STEPS_PER_EPOCH


def train(path: str, *, epochs: int | None = None, pace: float = 0.0) -> None:
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=10, restore_best_weights=True)
    train_overfit(path, regularised=False, epochs=epochs or 30, pace=pace, extra_callbacks=[stop])
