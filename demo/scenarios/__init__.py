"""Demo runs: real small Keras trainings that show what `lossmon watch` sees.

Each scenario is a module with a `train(path, *, epochs=None, pace=0.0)`
function; `python -m lossmon.scenarios NAME PATH` runs one from the shell.
Modules are imported only when run, so listing them does not load Keras.
"""

from __future__ import annotations

import importlib
from typing import Any

SCENARIOS: dict[str, str] = {
    "healthy": "Adam(0.001) on a learnable binary task: loss and val_loss fall.",
    "high_lr": "The same model with Adam(learning_rate=1.0): the loss jumps from 0.69 to ~15.",
    "nan": "SGD on an unscaled regression, learning rate too high: loss explodes, then NaN.",
}


def run(name: str, path: str, **kw: Any) -> None:
    """Train scenario `name`, writing its run file to `path`."""
    if name not in SCENARIOS:
        known = ", ".join(sorted(SCENARIOS))
        raise ValueError(f"unknown scenario {name!r}; known: {known}")
    module = importlib.import_module(f"{__name__}.{name}")
    module.train(path, **kw)
