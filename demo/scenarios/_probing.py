"""Shared pieces of the probe scenarios: fit with probe data, seeded data sets.

Each probe scenario hands LossmonCallback a fixed sample of its training
rows as `probe_data`, so the gradient, activation and data detectors see
the problem, and probes every 10 steps (twice per 20-step epoch) so they
can speak within the first epoch or two.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from lossmon.keras import LossmonCallback
from lossmon.scenarios._common import BATCH_SIZE, SEED, Pace

PROBE_ROWS = 256
PROBE_EVERY = 10


def fit_probed(
    path: str,
    model: keras.Model,
    data: tuple[np.ndarray, np.ndarray],
    validation: tuple[np.ndarray, np.ndarray] | None,
    *,
    optimizer: Any,
    loss: Any,
    epochs: int,
    pace: float,
    metrics: list[str] | None = None,
    class_weight: dict[int, float] | None = None,
) -> None:
    """Compile and fit quietly, recording probes of the first training rows."""
    x, y = data
    model.compile(optimizer=optimizer, loss=loss, metrics=metrics)
    callbacks: list[keras.callbacks.Callback] = [
        LossmonCallback(path, probe_data=(x[:PROBE_ROWS], y[:PROBE_ROWS]), probe_every=PROBE_EVERY)
    ]
    if pace > 0:
        callbacks.append(Pace(pace))
    model.fit(
        x,
        y,
        batch_size=BATCH_SIZE,
        epochs=epochs,
        validation_data=validation,
        class_weight=class_weight,
        callbacks=callbacks,
        verbose=0,
    )


def split(x: np.ndarray, y: np.ndarray, n_train: int = 640):
    x, y = x.astype("float32"), y.astype("float32")
    return (x[:n_train], y[:n_train]), (x[n_train:], y[n_train:])


def standardise(x: np.ndarray) -> np.ndarray:
    """sklearn's StandardScaler().fit_transform, without sklearn."""
    std = x.std(axis=0)
    return (x - x.mean(axis=0)) / np.where(std > 0, std, 1.0)


def rng() -> np.random.Generator:
    return np.random.default_rng(SEED)
