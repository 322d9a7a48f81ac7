"""The seeds' tanh(x * 0.01) activation: the weights get almost no gradient."""

from __future__ import annotations

import keras
import tensorflow as tf

from lossmon.scenarios._common import SEED
from lossmon.scenarios._probing import fit_probed, rng, split

EXPECTED: tuple[str, ...] = ("vanishing_gradients",)
ONSET = 1


def my_bad_activation(x):
    """The seeds' custom activation: tanh squeezed by 0.01, slope ~0.01."""
    return tf.math.tanh(x * 0.01)


def data():
    """Uniform 0..1 features as in the seeds, with a learnable linear target."""
    r = rng()
    x = r.random((800, 10))
    y = x @ r.normal(size=10) + 0.1 * r.normal(size=800)
    return split(x, y[:, None])


def model(activation=my_bad_activation) -> keras.Model:
    keras.utils.set_random_seed(SEED)
    return keras.Sequential(
        [keras.Input(shape=(10,)), keras.layers.Dense(16, activation=activation), keras.layers.Dense(1)]
    )


def train(path: str, *, epochs: int | None = None, pace: float = 0.0) -> None:
    train_data, validation = data()
    fit_probed(path, model(), train_data, validation, optimizer=keras.optimizers.Adam(0.001),
               loss="mse", epochs=epochs or 5, pace=pace)
