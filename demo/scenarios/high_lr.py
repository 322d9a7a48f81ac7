"""Adam(learning_rate=1.0) on the seeds' model: the loss leaps from 0.69 to ~15."""

from __future__ import annotations

from lossmon.scenarios._common import train_classifier


EXPECTED: tuple[str, ...] = ("divergence", "lr_config")
ONSET = 0


def train(path: str, *, epochs: int | None = None, pace: float = 0.0) -> None:
    train_classifier(path, learning_rate=1.0, epochs=epochs, pace=pace)
