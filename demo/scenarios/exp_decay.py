"""The seeds' Adam(ExponentialDecay(0.1, 1000, 0.96)) on the seeds' classifier: 100x Adam's default, barely decaying."""

from __future__ import annotations

import keras

from lossmon.scenarios._common import classification, seeds_model
from lossmon.scenarios._seeds import fit

EXPECTED: tuple[str, ...] = ("oscillation",)
ONSET = 0


def train(path: str, *, epochs: int | None = None, pace: float = 0.0) -> None:
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=1000, decay_rate=0.96)
    data, validation = classification()
    fit(
        path,
        seeds_model(),
        data,
        validation,
        optimizer=keras.optimizers.Adam(learning_rate=schedule),
        loss="binary_crossentropy",
        metrics=["accuracy"],
        epochs=epochs or 10,
        pace=pace,
    )
