"""Sigmoid hidden layers with a huge kernel initializer: the units saturate."""

from __future__ import annotations

from typing import Any

import keras

from lossmon.scenarios._common import SEED, classification
from lossmon.scenarios._probing import fit_probed

EXPECTED: tuple[str, ...] = ("saturation",)
ONSET = 0  # saturated from the initial weights
STDDEV = 10.0


def huge_initializer() -> keras.initializers.Initializer:
    """RandomNormal(stddev=10), 60-80x Glorot's scale for these layers: the
    pre-activations are tens, far out in the sigmoid's flat tails."""
    return keras.initializers.RandomNormal(stddev=STDDEV)


def model(initializer: Any = None) -> keras.Model:
    """10 -> 64 sigmoid -> 64 sigmoid -> 1 sigmoid; `initializer` for the
    hidden kernels (default: the huge one; "glorot_uniform" is the cure)."""
    keras.utils.set_random_seed(SEED)
    init = huge_initializer() if initializer is None else initializer
    return keras.Sequential(
        [
            keras.Input(shape=(10,)),
            keras.layers.Dense(64, activation="sigmoid", kernel_initializer=init),
            keras.layers.Dense(64, activation="sigmoid", kernel_initializer=init),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )


def train(path: str, *, epochs: int | None = None, pace: float = 0.0, initializer: Any = None) -> None:
    """The learnable, standardised classification data: the inputs are fine,
    the weights are not. About 80% of the second layer's units sit at 0 or
    1 on at least 90% of the probe rows, and the accuracy creeps from 40%
    to 55% where the same model with Glorot weights passes 90%."""
    train_data, validation = classification()
    fit_probed(path, model(initializer), train_data, validation, optimizer=keras.optimizers.Adam(0.001),
               loss="binary_crossentropy", metrics=["accuracy"], epochs=epochs or 4, pace=pace)
