"""The seeds' outlier, X[0, 0] = 100 among 0..1 features, unscaled: one batch spikes every epoch."""

from __future__ import annotations

import keras

from lossmon.scenarios._seeds import dense_regressor, fit, regression, split

EXPECTED: tuple[str, ...] = ("spike",)
ONSET = 0


def data(scaled: bool):
    x, y = regression()
    x[0, 0] = 100.0  # the seeds' outlier
    if scaled:
        from lossmon.scenarios._seeds import standardise

        x, y = standardise(x), standardise(y)
    return split(x, y)


def train(path: str, *, epochs: int | None = None, pace: float = 0.0, scaled: bool = False) -> None:
    train_data, validation = data(scaled)
    fit(
        path,
        dense_regressor(None),
        train_data,
        validation,
        optimizer=keras.optimizers.Adam(),
        loss="mse",
        epochs=epochs or 10,
        pace=pace,
    )
