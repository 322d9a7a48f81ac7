"""Adam(0.001) on the seeds' model: training and validation loss fall together."""

from __future__ import annotations

from lossmon.scenarios._common import train_classifier


EXPECTED: tuple[str, ...] = ()
ONSET = 0


def train(path: str, *, epochs: int | None = None, pace: float = 0.0) -> None:
    train_classifier(path, learning_rate=0.001, epochs=epochs, pace=pace)
