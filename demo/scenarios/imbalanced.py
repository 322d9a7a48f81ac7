"""5% positives, no class_weight: the classifier learns to say "negative"."""

from __future__ import annotations

import keras
import numpy as np

from lossmon.scenarios._common import seeds_model
from lossmon.scenarios._probing import fit_probed, rng, split

EXPECTED: tuple[str, ...] = ("class_imbalance",)
ONSET = 1
POSITIVE_SHARE = 0.05


def data():
    """A noisy linear rule whose top 5% are the positive class: the
    positives overlap the negatives, so an unweighted model does best by
    predicting the majority."""
    r = rng()
    x = r.normal(size=(800, 10))
    score = x @ r.normal(size=10) / np.sqrt(10) + 1.0 * r.normal(size=800)
    y = (score > np.quantile(score, 1 - POSITIVE_SHARE)).astype("float32")
    return split(x, y)


def balanced_weights(y: np.ndarray) -> dict[int, float]:
    """sklearn's compute_class_weight('balanced'): n / (classes * count)."""
    counts = np.bincount(y.astype(int))
    return {c: len(y) / (len(counts) * n) for c, n in enumerate(counts)}


def train(path: str, *, epochs: int | None = None, pace: float = 0.0, weighted: bool = False) -> None:
    (x, y), validation = data()
    fit_probed(path, seeds_model(), (x, y), validation, optimizer=keras.optimizers.Adam(0.001),
               loss="binary_crossentropy", metrics=["accuracy"], epochs=epochs or 5, pace=pace,
               class_weight=balanced_weights(y) if weighted else None)
