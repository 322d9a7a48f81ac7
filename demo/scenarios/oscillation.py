"""SGD(0.36, momentum=0.9) on a linear regression: every step overshoots, the loss zig-zags 1x-20x."""

from __future__ import annotations

import keras

from lossmon.scenarios._seeds import dense_regressor, fit, regression, split

EXPECTED: tuple[str, ...] = ("oscillation",)
ONSET = 0


def train(path: str, *, epochs: int | None = None, pace: float = 0.0) -> None:
    data, validation = split(*regression())
    fit(
        path,
        dense_regressor(None),
        data,
        validation,
        optimizer=keras.optimizers.SGD(learning_rate=0.36, momentum=0.9),
        loss="mse",
        epochs=epochs or 8,
        pace=pace,
    )
