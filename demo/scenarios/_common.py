"""Shared pieces of the demo scenarios: seeded synthetic data and pacing."""

from __future__ import annotations

import time

import keras
import numpy as np

from lossmon.keras import LossmonCallback

SEED = 7
BATCH_SIZE = 32


class Pace(keras.callbacks.Callback):
    """Sleeps after each batch so a human can watch a tiny run live."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        time.sleep(self.seconds)


def callbacks(path: str, pace: float) -> list[keras.callbacks.Callback]:
    """The run-file callback, then the pacing (so records are not delayed)."""
    out: list[keras.callbacks.Callback] = [LossmonCallback(path)]
    if pace > 0:
        out.append(Pace(pace))
    return out


def classification(n_train: int = 640, n_val: int = 160):
    """Ten standard-normal features, labels from a linear rule plus noise.

    Learnable (about 95% accuracy is reachable), so a failing run is the
    optimiser's fault, not the data's.
    """
    rng = np.random.default_rng(SEED)
    n = n_train + n_val
    x = rng.normal(size=(n, 10)).astype("float32")
    w = rng.normal(size=10)
    y = ((x @ w + 0.5 * rng.normal(size=n)) > 0).astype("float32")
    return (x[:n_train], y[:n_train]), (x[n_train:], y[n_train:])


def seeds_model() -> keras.Model:
    """The model of the Keras examples our users copy: 10 -> 128 relu -> 1."""
    keras.utils.set_random_seed(SEED)
    return keras.Sequential(
        [
            keras.Input(shape=(10,)),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )


def train_classifier(path: str, learning_rate: float, *, epochs: int | None, pace: float) -> None:
    """The seeds' classifier with Adam at `learning_rate`, with validation."""
    (x, y), validation = classification()
    model = seeds_model()
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss="binary_crossentropy",
        metrics=["accuracy"],
    )
    model.fit(
        x,
        y,
        batch_size=BATCH_SIZE,
        epochs=epochs or 10,
        validation_data=validation,
        callbacks=callbacks(path, pace),
        verbose=0,
    )
