"""Raw positive inputs (0-300) into ReLU layers with SGD: the units die."""

from __future__ import annotations

import keras

from lossmon.scenarios._common import SEED, classification
from lossmon.scenarios._probing import fit_probed

EXPECTED: tuple[str, ...] = ("dead_relu", "unscaled_inputs")
ONSET = 0  # the inputs are unscaled from the first step
SCALE = 50.0


def data():
    """The learnable classification data shifted to start at 0 and scaled
    by 50, like raw pixel values: every input is positive and large. The
    first SGD steps are huge, push the first layer's biases and weights
    negative for every input, and those units never come back."""
    (x, y), (x_val, y_val) = classification()
    low = x.min(axis=0)
    return ((x - low) * SCALE, y), ((x_val - low) * SCALE, y_val)


def train(path: str, *, epochs: int | None = None, pace: float = 0.0) -> None:
    train_data, validation = data()
    keras.utils.set_random_seed(SEED)
    model = keras.Sequential(
        [
            keras.Input(shape=(10,)),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    fit_probed(path, model, train_data, validation, optimizer=keras.optimizers.SGD(0.01),
               loss="binary_crossentropy", metrics=["accuracy"], epochs=epochs or 4, pace=pace)
