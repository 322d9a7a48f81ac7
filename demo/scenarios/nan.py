"""SGD(3e-4) on unscaled regression features: the loss explodes, then turns NaN."""

from __future__ import annotations

import keras
import numpy as np

from lossmon.scenarios._common import BATCH_SIZE, SEED, callbacks

# Feature scales from 1 to 100, as in raw tabular data nobody standardised.
# The largest curvature of the MSE is then about 2 * 100**2, so plain SGD is
# stable only below a learning rate of ~1e-4: at 3e-4 every step overshoots
# further, the loss grows over 10x per step, overflows to inf in epoch 1 and the
# weights become NaN in epoch 2 (20 steps per epoch).
SCALES = np.array([1, 3, 10, 30, 100, 1, 3, 10, 30, 100], dtype="float64")


def regression(n_train: int = 640, n_val: int = 160):
    """A linear target plus noise, on features that were never scaled."""
    rng = np.random.default_rng(SEED)
    n = n_train + n_val
    x = rng.normal(size=(n, 10)) * SCALES
    y = x @ rng.normal(size=10) / 10 + rng.normal(size=n)
    x, y = x.astype("float32"), y.astype("float32")
    return (x[:n_train], y[:n_train]), (x[n_train:], y[n_train:])


EXPECTED: tuple[str, ...] = ("nonfinite",)
ONSET = 0


def train(path: str, *, epochs: int | None = None, pace: float = 0.0) -> None:
    (x, y), validation = regression()
    keras.utils.set_random_seed(SEED)
    model = keras.Sequential([keras.Input(shape=(10,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=3e-4), loss="mse")
    model.fit(
        x,
        y,
        batch_size=BATCH_SIZE,
        epochs=epochs or 6,
        validation_data=validation,
        callbacks=callbacks(path, pace),
        verbose=0,
    )
