"""Data and models of the seed articles' examples that _common does not cover.

Everything is seeded and synthetic (no downloads) and sized so that a run
takes a second or two on a laptop CPU: 640 training and 160 validation rows,
batch size 32, so 20 steps per epoch.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from lossmon.scenarios._common import BATCH_SIZE, SEED, callbacks

N_TRAIN = 640
N_VAL = 160


def split(x: np.ndarray, y: np.ndarray, n_train: int = N_TRAIN):
    x, y = x.astype("float32"), y.astype("float32")
    return (x[:n_train], y[:n_train]), (x[n_train:], y[n_train:])


def regression(n_train: int = N_TRAIN, n_val: int = N_VAL, features: int = 10, noise: float = 0.1):
    """Uniform 0..1 features as in the seeds' `np.random.rand(100, 10)`, but a
    learnable linear target plus noise, so progress is possible."""
    rng = np.random.default_rng(SEED)
    n = n_train + n_val
    x = rng.random((n, features))
    y = x @ rng.normal(size=features) + noise * rng.normal(size=n)
    return x, y


def standardise(values: np.ndarray) -> np.ndarray:
    """What sklearn's StandardScaler().fit_transform does: zero mean, unit
    variance per column (sklearn is not a dependency)."""
    values = np.asarray(values, dtype="float64")
    std = values.std(axis=0)
    return (values - values.mean(axis=0)) / np.where(std > 0, std, 1.0)


def dense_regressor(hidden: int | None = 64, features: int = 10) -> keras.Model:
    """The seeds' regression models: Dense(64, relu) + Dense(1), or Dense(1)."""
    keras.utils.set_random_seed(SEED)
    layers: list[Any] = [keras.Input(shape=(features,))]
    if hidden:
        layers.append(keras.layers.Dense(hidden, activation="relu"))
    layers.append(keras.layers.Dense(1))
    return keras.Sequential(layers)


def fit(
    path: str,
    model: keras.Model,
    data,
    validation,
    *,
    optimizer: Any,
    loss: str,
    epochs: int,
    pace: float,
    metrics: list[str] | None = None,
    extra_callbacks: list[keras.callbacks.Callback] | None = None,
    batch_size: int = BATCH_SIZE,
) -> None:
    """Compile and fit with the run-file callback, quietly."""
    model.compile(optimizer=optimizer, loss=loss, metrics=metrics)
    x, y = data
    model.fit(
        x,
        y,
        batch_size=batch_size,
        epochs=epochs,
        validation_data=validation,
        callbacks=callbacks(path, pace) + list(extra_callbacks or []),
        verbose=0,
    )


def overfit_data(n_train: int = 100, n_val: int = 100, features: int = 20, flip: float = 0.25):
    """Few rows, many features, a quarter of the labels flipped: a big model
    memorises the noise, so val_loss turns up after the first epoch."""
    rng = np.random.default_rng(SEED)
    n = n_train + n_val
    x = rng.normal(size=(n, features))
    clean = x[:, :3].sum(axis=1) > 0
    y = clean ^ (rng.random(n) < flip)
    return split(x, y, n_train)


OVERFIT_BATCH = 16
OVERFIT_STEPS_PER_EPOCH = 7  # ceil(100 / 16)


def overfit_model(regularised: bool = False, features: int = 20) -> keras.Model:
    """Two Dense(256, relu) layers for 100 rows: far more capacity than data.
    `regularised` adds the seeds' cure: L2(0.01) on the kernels and Dropout(0.5)."""
    keras.utils.set_random_seed(SEED)
    l2 = keras.regularizers.l2(0.01) if regularised else None
    layers: list[Any] = [keras.Input(shape=(features,))]
    for _ in range(2):
        layers.append(keras.layers.Dense(256, activation="relu", kernel_regularizer=l2))
        if regularised:
            layers.append(keras.layers.Dropout(0.5))
    layers.append(keras.layers.Dense(1, activation="sigmoid"))
    return keras.Sequential(layers)


def train_overfit(path: str, *, regularised: bool, epochs: int, pace: float, extra_callbacks=None) -> None:
    data, validation = overfit_data()
    fit(
        path,
        overfit_model(regularised),
        data,
        validation,
        optimizer=keras.optimizers.Adam(0.001),
        loss="binary_crossentropy",
        metrics=["accuracy"],
        epochs=epochs,
        pace=pace,
        extra_callbacks=extra_callbacks,
        batch_size=OVERFIT_BATCH,
    )


def train_regression_lr(path: str, learning_rate: float, *, epochs: int | None, pace: float) -> None:
    """The seeds' learning-rate sweep: Dense(64, relu) + Dense(1), Adam, mse."""
    x, y = regression()
    data, validation = split(x, y)
    fit(
        path,
        dense_regressor(64),
        data,
        validation,
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss="mse",
        epochs=epochs or 10,
        pace=pace,
    )
