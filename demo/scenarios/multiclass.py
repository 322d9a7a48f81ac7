"""A 4-class softmax classifier on learnable data with Adam(0.001) (control for the ln K chance level)."""

from __future__ import annotations

import keras
import numpy as np

from lossmon.scenarios._common import SEED
from lossmon.scenarios._seeds import N_TRAIN, N_VAL, fit, split

EXPECTED: tuple[str, ...] = ()
ONSET = 0


def train(path: str, *, epochs: int | None = None, pace: float = 0.0) -> None:
    rng = np.random.default_rng(SEED)
    x = rng.normal(size=(N_TRAIN + N_VAL, 10))
    y = np.argmax(x @ rng.normal(size=(10, 4)) + 0.3 * rng.normal(size=(N_TRAIN + N_VAL, 4)), axis=1)
    data, validation = split(x, y)
    keras.utils.set_random_seed(SEED)
    model = keras.Sequential(
        [keras.Input(shape=(10,)), keras.layers.Dense(64, activation="relu"), keras.layers.Dense(4, activation="softmax")]
    )
    fit(
        path,
        model,
        data,
        validation,
        optimizer=keras.optimizers.Adam(0.001),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        epochs=epochs or 8,
        pace=pace,
    )
