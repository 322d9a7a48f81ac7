"""The seeds' feature * 1000: one input column dwarfs the others."""

from __future__ import annotations

import keras

from lossmon.scenarios._common import classification, seeds_model
from lossmon.scenarios._probing import fit_probed, standardise

EXPECTED: tuple[str, ...] = ("unscaled_inputs",)
ONSET = 0
BIG_FEATURE = 1


def data(scaled: bool = False):
    """The learnable classification data with feature 1 multiplied by 1000,
    as in the seeds' `X_train_unscaled[:, 1] *= 1000`; or standardised."""
    (x, y), (x_val, y_val) = classification()
    x, x_val = x.copy(), x_val.copy()
    x[:, BIG_FEATURE] *= 1000
    x_val[:, BIG_FEATURE] *= 1000
    if scaled:
        # StandardScaler fitted on the training rows, applied to both splits.
        mean, std = x.mean(axis=0), x.std(axis=0)
        x, x_val = (x - mean) / std, (x_val - mean) / std
        assert abs(standardise(x).std() - 1.0) < 1e-3
    return (x.astype("float32"), y), (x_val.astype("float32"), y_val)


def train(path: str, *, epochs: int | None = None, pace: float = 0.0, scaled: bool = False) -> None:
    train_data, validation = data(scaled)
    fit_probed(path, seeds_model(), train_data, validation, optimizer=keras.optimizers.Adam(0.001), loss="binary_crossentropy",
               metrics=["accuracy"], epochs=epochs or 5, pace=pace)
