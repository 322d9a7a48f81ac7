"""The seeds' classifier on coin-flip labels independent of the inputs: the loss stays at ln 2."""

from __future__ import annotations

import keras
import numpy as np

from lossmon.scenarios._common import SEED, seeds_model
from lossmon.scenarios._seeds import N_TRAIN, N_VAL, fit, split

EXPECTED: tuple[str, ...] = ("chance_level",)
ONSET = 0


def train(path: str, *, epochs: int | None = None, pace: float = 0.0) -> None:
    rng = np.random.default_rng(SEED)
    x = rng.normal(size=(N_TRAIN + N_VAL, 10))
    y = rng.integers(0, 2, N_TRAIN + N_VAL)
    data, validation = split(x, y)
    fit(
        path,
        seeds_model(),
        data,
        validation,
        optimizer=keras.optimizers.Adam(0.001),
        loss="binary_crossentropy",
        metrics=["accuracy"],
        epochs=epochs or 8,
        pace=pace,
    )
