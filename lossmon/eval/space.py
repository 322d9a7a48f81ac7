"""The space of healthy training setups the corpus draws from.

A setup is a plain JSON-able dict: what to train (family, dataset, task),
how (layers, activation, optimizer, learning rate, schedule, batch size,
epochs, regularisation, callbacks) and how to record it (probe data or
not). `lossmon.eval.train` turns it into a real `model.fit`. Drawing needs
no TensorFlow, so a corpus can be planned, listed and resumed cheaply.

The ranges are the ones people use: each optimizer in its sane learning
rate range around its Keras default, batch sizes 4-256, 5-80 epochs (cut so
a run trains in seconds on a CPU).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

Setup = dict[str, Any]

# Datasets by task: sklearn's bundled sets and numpy generators (no downloads).
TABULAR = {
    "binary": ["breast_cancer", "moons", "circles", "classification2"],
    "multiclass": ["digits", "wine", "iris", "blobs", "classification4"],
    "regression": ["diabetes", "friedman", "linear"],
}
SEQUENCE = {"binary": ["seq_sign"], "multiclass": ["seq_argmax"], "regression": ["seq_sum"]}
TOKENS = {"binary": ["tokens2"], "multiclass": ["tokens4"]}

ACTIVATIONS = ["relu", "relu", "gelu", "tanh", "selu", "leaky_relu", "swish"]

# Optimizer -> (low, high) learning rate, log-uniform: the ranges people
# train in, around each one's Keras default (Adagrad's 0.001 is too slow
# for anything, so people use 0.01-0.1).
OPTIMIZERS = {
    "adam": (3e-4, 3e-3),
    "adamw": (3e-4, 3e-3),
    "nadam": (3e-4, 2e-3),
    "rmsprop": (2e-4, 2e-3),
    "sgd": (0.01, 0.1),
    "adagrad": (0.01, 0.1),
}
BATCH_SIZES = [4, 8, 16, 32, 32, 64, 64, 128, 256]
MAX_STEPS = 2500  # per run, all epochs: a few seconds of training on a CPU


def pick(rng: np.random.Generator, items: list[Any]) -> Any:
    return items[int(rng.integers(len(items)))]


def log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(math.exp(rng.uniform(math.log(low), math.log(high))))


def healthy(rng: np.random.Generator, run_id: str) -> Setup:
    """One healthy setup drawn at random."""
    family = pick(rng, ["mlp"] * 6 + ["cnn"] * 3 + ["rnn"] * 3 + ["embed"] * 2 + ["resmlp"] * 2 + ["autoenc"] * 2 + ["multi"] * 2)
    s: Setup = {"id": run_id, "family": family, "seed": int(rng.integers(2**31))}
    if family in ("mlp", "resmlp"):
        s["task"] = pick(rng, ["binary", "multiclass", "multiclass", "regression"])
        s["dataset"] = pick(rng, TABULAR[s["task"]])
    elif family == "cnn":
        s["task"] = pick(rng, ["multiclass", "multiclass", "binary"])
        s["dataset"] = "digits_images"
        s["filters"] = pick(rng, [[8], [16], [16, 32], [8, 16]])
        s["pooling"] = bool(rng.random() < 0.7)
        s["batchnorm"] = bool(rng.random() < 0.4)
    elif family == "rnn":
        s["task"] = pick(rng, ["binary", "multiclass", "regression"])
        s["dataset"] = pick(rng, SEQUENCE[s["task"]])
        s["cell"] = pick(rng, ["GRU", "LSTM", "SimpleRNN"])
        s["units"] = int(pick(rng, [8, 16, 32]))
    elif family == "embed":
        s["task"] = pick(rng, ["binary", "multiclass"])
        s["dataset"] = pick(rng, TOKENS[s["task"]])
        s["embed_dim"] = int(pick(rng, [8, 16, 32]))
    elif family == "autoenc":
        s["task"] = "reconstruct"
        s["dataset"] = pick(rng, ["digits", "classification4"])
        s["code"] = int(pick(rng, [4, 8, 16]))
    else:  # multi: a classification head and a regression head on one trunk
        s["task"] = "multi"
        s["dataset"] = "multi"
    s["layers"] = [int(pick(rng, [16, 32, 64, 128])) for _ in range(int(rng.integers(1, 4 if family != "mlp" else 7)))]
    s["activation"] = pick(rng, ACTIVATIONS)
    if family == "mlp" and rng.random() < 0.25:
        s["batchnorm"] = True
    s["dropout"] = float(pick(rng, [0.0, 0.0, 0.1, 0.2, 0.3]))
    s["l2"] = float(pick(rng, [0.0, 0.0, 0.0, 1e-5, 1e-4]))
    opt = pick(rng, list(OPTIMIZERS))
    s["optimizer"] = opt
    s["lr"] = log_uniform(rng, *OPTIMIZERS[opt])
    if opt == "sgd":
        s["momentum"] = float(pick(rng, [0.0, 0.9, 0.9, 0.95]))
        if s["momentum"] >= 0.9:
            s["lr"] = log_uniform(rng, 0.003, 0.03)
    s["batch_size"] = int(pick(rng, BATCH_SIZES))
    s["epochs"] = int(rng.integers(5, 81))
    s["schedule"] = pick(rng, ["constant"] * 4 + ["exp_decay", "cosine_warmup", "reduce_on_plateau"])
    s["early_stopping"] = bool(rng.random() < 0.2)
    if s["task"] in ("binary", "multiclass"):
        s["from_logits"] = bool(rng.random() < 0.3)
        s["label_smoothing"] = float(pick(rng, [0.0, 0.0, 0.0, 0.05, 0.1]))
        s["sparse"] = bool(s["task"] == "multiclass" and rng.random() < 0.6)
        if rng.random() < 0.12:
            s["imbalance"] = 0.1  # a healthy imbalanced set: class_weight balances it
            s["class_weight"] = True
    if s["task"] == "regression":
        s["loss"] = pick(rng, ["mse", "mse", "mae", "huber"])
    s["steps_per_execution"] = int(pick(rng, [1] * 6 + [2, 4, 8]))
    s["validation"] = pick(rng, ["split", "data"])
    s["probe"] = bool(rng.random() < 0.75)
    if s["probe"] and rng.random() < 0.3:
        s["probe_every"] = int(pick(rng, [10, 25, 50]))
    return s


def plan_epochs(setup: Setup, n_train: int) -> int:
    """The setup's epochs, cut so the whole run stays under MAX_STEPS."""
    steps = max(1, math.ceil(n_train / setup["batch_size"]))
    return int(max(3, min(setup["epochs"], MAX_STEPS // steps)))
