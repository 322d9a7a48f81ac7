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
    "regression_lr_0_1": "The seeds' lr sweep: Adam(0.1) on a Dense(64)+Dense(1) regression (control).",
    "regression_lr_0_01": "The seeds' lr sweep: Adam(0.01) on the same regression (control).",
    "regression_lr_0_001": "The seeds' lr sweep: Adam(0.001) on the same regression (control).",
    "low_lr": "Adam(1e-5), 100x below the default, on that regression: the loss creeps down.",
    "outlier": "The seeds' outlier X[0, 0] = 100, unscaled: one batch spikes every epoch.",
    "outlier_scaled": "The same data after StandardScaler (control).",
    "overfitting": "Two Dense(256) on 100 noisy rows, no regularisation: val_loss climbs.",
    "regularised": "The same with L2(0.01) and Dropout(0.5) (control).",
    "early_stopping": "The overfitting run with EarlyStopping(patience=10, restore_best_weights=True).",
    "exp_decay": "Adam(ExponentialDecay(0.1, 1000, 0.96)): 100x Adam's default, the loss jumps around.",
    "oscillation": "SGD(0.36, momentum=0.9) on a regression: the loss zig-zags step to step.",
    "random_labels": "Coin-flip labels independent of the inputs: the loss stays at ln 2.",
    "multiclass": "A 4-class softmax classifier that learns (control for the ln 4 chance level).",
    "killed": "The classifier killed by SIGKILL after epoch 2: no end record, the file goes silent.",
    "vanishing_tanh": "The seeds' tanh(x * 0.01) activation: the weights get ~3% of the gradient.",
    "dead_relu": "Raw positive inputs (0-300) into ReLU layers with SGD: 97% of the first layer dies.",
    "saturated_sigmoid": "Sigmoid hidden layers with RandomNormal(stddev=10) kernels: 80% of a layer saturates.",
    "unscaled_inputs": "The seeds' feature * 1000 on the binary classifier.",
    "scaled_inputs": "The same data after StandardScaler (control).",
    "imbalanced": "5% positives without class_weight: the model predicts only the majority class.",
    "imbalanced_weighted": "The same labels with class_weight='balanced' (control).",
}


def run(name: str, path: str, **kw: Any) -> None:
    """Train scenario `name`, writing its run file to `path`."""
    if name not in SCENARIOS:
        known = ", ".join(sorted(SCENARIOS))
        raise ValueError(f"unknown scenario {name!r}; known: {known}")
    module = importlib.import_module(f"{__name__}.{name}")
    module.train(path, **kw)
