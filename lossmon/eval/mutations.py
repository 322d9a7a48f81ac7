"""Mutation operators: the mistakes people make, applied to healthy setups.

In the spirit of DeepCrime (Humbatova et al., ISSTA 2021): each operator
takes a healthy setup and changes one thing the way a real mistake would
(a learning rate 100x too high, inputs left unscaled, NaN in the data, a
loss that does not fit the output...). Whether the mutant really is a
fault is decided later from its outcome (lossmon.eval.score), never
assumed here.

`causes` are the detector ids that name the mistake's root cause: the first
warning on a faulty mutant should be one of them.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from lossmon.eval.space import Setup, pick

LR_HIGH = ("divergence", "nonfinite", "oscillation", "lr_config", "exploding_gradients", "spike")
NO_LEARNING = ("slow_convergence", "plateau", "chance_level", "lr_config", "update_ratio")
STUCK = ("plateau", "slow_convergence", "chance_level")  # all a run without probes can say of a model that does not learn
SHRUNK = ("dead_relu", "update_ratio", "vanishing_gradients")  # an L2 penalty that wins: weights pulled to zero
CLASSIFY = ("binary", "multiclass")


@dataclass(frozen=True)
class Operator:
    name: str
    applies: Callable[[Setup], bool]
    mutate: Callable[[Setup, np.random.Generator], None]  # changes the copy in place
    causes: tuple[str, ...]
    symptom: str = "worse"  # "worse": a much worse outcome; "overfit": validation loss rises late
    blind: tuple[str, ...] = ()  # what names the mistake on a run without probe data, which hides its cause


def _set(**changes):
    def mutate(s: Setup, rng: np.random.Generator) -> None:
        s.update(changes)

    return mutate


def _lr_times(factor: float):
    def mutate(s: Setup, rng: np.random.Generator) -> None:
        s["lr"] = s["lr"] * factor
        s["schedule"] = "constant"

    return mutate


def _unscaled_inputs(s: Setup, rng: np.random.Generator) -> None:
    s["input_scale"], s["input_offset"] = pick(rng, [(255.0, 0.0), (1000.0, 0.0), (1.0, 500.0), (100.0, 1000.0)])


def _nan_inputs(s: Setup, rng: np.random.Generator) -> None:
    s["bad_inputs"] = pick(rng, ["nan", "nan", "inf"])


def _permute(fraction: float):
    def mutate(s: Setup, rng: np.random.Generator) -> None:
        s["label_noise"] = fraction

    return mutate


def _imbalance(s: Setup, rng: np.random.Generator) -> None:
    s["imbalance"], s["class_weight"] = 0.05, False
    s["task"] = "binary"  # 95/5 is a binary problem
    if s["family"] in ("mlp", "resmlp"):
        s["dataset"] = pick(rng, ["classification2", "breast_cancer", "moons"])
    elif s["family"] == "rnn":
        s["dataset"] = "seq_sign"
    elif s["family"] == "embed":
        s["dataset"] = "tokens2"
    s["label_smoothing"] = 0.0


def _deep_sigmoid(s: Setup, rng: np.random.Generator) -> None:
    s["layers"] = [32] * int(rng.integers(6, 10))
    s["activation"] = "sigmoid"
    s["batchnorm"] = False
    s["dropout"] = 0.0


def _wrong_loss(s: Setup, rng: np.random.Generator) -> None:
    choices = ["linear_output_no_logits"]
    if s["task"] == "binary":
        choices += ["categorical_on_sigmoid", "labels_1_2"]
    else:
        choices += ["mse_on_onehot_linear"]
    s["wrong_loss"] = pick(rng, choices)
    s["label_smoothing"] = 0.0


def _tiny_train(s: Setup, rng: np.random.Generator) -> None:
    s["n_train"] = int(pick(rng, [24, 40, 60]))
    s["layers"] = [256, 256]
    s["dropout"], s["l2"], s["early_stopping"] = 0.0, 0.0, False
    s["label_noise"] = 0.2 if s["task"] in CLASSIFY else 0.0
    s["target_noise"] = 0.5 if s["task"] == "regression" else 0.0
    s["epochs"] = 80
    s["batch_size"] = 8
    s["schedule"] = "constant"


def _exploding_rnn(s: Setup, rng: np.random.Generator) -> None:
    s["cell"] = "SimpleRNN"
    s["rnn_activation"] = "relu"
    s["recurrent_init"] = float(pick(rng, [2.0, 3.0]))
    s["seq_len"] = 30


OPERATORS: list[Operator] = [
    Operator("lr_x100", lambda s: True, _lr_times(100.0), LR_HIGH),
    Operator("lr_x1e-3", lambda s: True, _lr_times(1e-3), NO_LEARNING),
    Operator("inputs_unscaled", lambda s: s["family"] in ("mlp", "resmlp", "cnn", "rnn", "multi"), _unscaled_inputs, ("unscaled_inputs",), blind=STUCK),
    Operator("targets_unscaled", lambda s: s["task"] == "regression", _set(target_scale=1e4, target_offset=5e4), ("unscaled_targets",), blind=STUCK),
    Operator("nan_inputs", lambda s: s["family"] in ("mlp", "resmlp", "cnn", "rnn", "multi"), _nan_inputs, ("nonfinite",)),
    Operator("labels_permuted", lambda s: s["task"] in CLASSIFY, _permute(1.0), ("chance_level", "overfitting", "plateau")),
    Operator("labels_half_permuted", lambda s: s["task"] in CLASSIFY, _permute(0.6), ("chance_level", "overfitting", "plateau")),
    Operator("imbalance_95_5", lambda s: s["task"] in CLASSIFY and s["family"] != "cnn", _imbalance, ("class_imbalance",)),
    Operator("deep_sigmoid", lambda s: s["family"] == "mlp", _deep_sigmoid, ("vanishing_gradients", "saturation"), blind=STUCK),
    Operator("tanh_scaled", lambda s: s["family"] in ("mlp", "resmlp"), _set(activation="tanh_0.01", batchnorm=False), ("vanishing_gradients",), blind=STUCK),
    Operator("zero_init", lambda s: s["family"] in ("mlp", "resmlp", "cnn"), _set(init="zeros"), ("vanishing_gradients", "dead_relu", "chance_level", "plateau"), blind=STUCK),
    Operator("huge_init", lambda s: s["family"] in ("mlp", "cnn"), _set(init="huge", batchnorm=False), ("saturation", "exploding_gradients", "divergence", "dead_relu", "nonfinite"), blind=STUCK),
    Operator("relu_bias_-10", lambda s: s["family"] in ("mlp", "resmlp", "cnn"), _set(activation="relu", relu_bias=-10.0, batchnorm=False), ("dead_relu",), blind=STUCK),
    Operator("dropout_0.9", lambda s: s["family"] in ("mlp", "resmlp", "cnn"), _set(dropout=0.9), STUCK),
    Operator("l2_1.0", lambda s: s["family"] in ("mlp", "resmlp", "cnn", "multi"), _set(l2=1.0), STUCK + SHRUNK),
    Operator("wrong_loss", lambda s: s["task"] in CLASSIFY and s["family"] != "multi", _wrong_loss, ("loss_mismatch", "nonfinite")),
    Operator("bounded_output", lambda s: s["task"] == "regression", lambda s, rng: s.update(output_activation=pick(rng, ["relu", "sigmoid"])), ("loss_mismatch",), blind=STUCK),
    Operator("tiny_train", lambda s: s["family"] in ("mlp", "resmlp") and s["task"] != "reconstruct", _tiny_train, ("overfitting",), "overfit"),
    Operator("val_not_preprocessed", lambda s: s["family"] in ("mlp", "resmlp", "cnn", "rnn") and s["task"] != "reconstruct", _set(val_scale=255.0), ("overfitting", "validation_mismatch")),
    Operator("exploding_rnn", lambda s: s["family"] == "rnn", _exploding_rnn, ("exploding_gradients", "nonfinite", "divergence")),
]
BY_NAME = {op.name: op for op in OPERATORS}


def mutant(parent: Setup, op: Operator, rng: np.random.Generator, run_id: str) -> Setup:
    """A copy of `parent` with `op` applied, naming its parent and operator."""
    child = copy.deepcopy(parent)
    op.mutate(child, rng)
    child["id"], child["parent"], child["operator"] = run_id, parent["id"], op.name
    return child
