"""A loss that does not fit the output layer, checked at train begin.

Reads the header: the output layer (the last layer with `units`, and the
activation it or a following Activation/Softmax layer applies), `loss`,
`loss_config.from_logits` and, when probe data was given, `data.labels`.
Each rule is a mistake that trains without an error message:

- softmax over one unit always outputs 1.0 (CRITICAL: nothing is learned);
- categorical cross-entropy on a sigmoid output (CRITICAL with one unit,
  where the loss is constant; WARNING with several);
- binary cross-entropy on a softmax output over several units;
- binary cross-entropy with labels of more than two classes;
- a regression loss (MAE, MSE, ...) on a sigmoid or softmax classifier;
- from_logits=True on a sigmoid/softmax output (probabilities squashed
  twice);
- a cross-entropy with from_logits=False on a linear output (Keras clips
  the raw outputs to (0, 1): most gradients are zero);
- a bounded output activation (sigmoid, tanh, relu...) on regression
  targets outside its range (ReLU or sigmoid on standardised targets, half
  of which are negative).
"""

from __future__ import annotations

from typing import Any

from lossmon.detect.base import Detector, Finding, Severity, Verdict
from lossmon.detectors._probe import header_data
from lossmon.detectors._util import finite
from lossmon.format import HEADER, Record, json_safe

_ALIASES = {
    "mae": "meanabsoluteerror",
    "mse": "meansquarederror",
    "mape": "meanabsolutepercentageerror",
    "msle": "meansquaredlogarithmicerror",
    "bce": "binarycrossentropy",
}
_REGRESSION = {
    "meanabsoluteerror",
    "meansquarederror",
    "meanabsolutepercentageerror",
    "meansquaredlogarithmicerror",
    "huber",
    "logcosh",
}
_BINARY = {"binarycrossentropy", "binaryfocalcrossentropy"}
_CATEGORICAL = {"categoricalcrossentropy", "sparsecategoricalcrossentropy", "categoricalfocalcrossentropy"}
_SQUASHING = {"sigmoid", "softmax"}


def loss_key(name: Any) -> str:
    """'binary_crossentropy', 'BinaryCrossentropy', 'bce' -> 'binarycrossentropy'."""
    if not isinstance(name, str):
        return ""
    key = name.lower().replace("_", "").replace(" ", "")
    return _ALIASES.get(key, key)


def output_layer(model: Any) -> tuple[int | None, str | None]:
    """(units, activation) of the model's output, from the header's layers."""
    layers = model.get("layers") if isinstance(model, dict) else None
    if not isinstance(layers, list):
        return None, None
    activation = None
    for layer in reversed(layers):
        if not isinstance(layer, dict):
            continue
        name = layer.get("activation")
        if layer.get("class") == "Softmax":
            name = "softmax"
        if activation is None and isinstance(name, str) and name != "linear":
            activation = name
        units = layer.get("units")
        if isinstance(units, int):
            return units, activation
    return None, activation


class LossMismatch(Detector):
    """At train begin: one finding per rule that holds (see the module)."""

    id = "loss_mismatch"
    title = "Loss does not fit the output"
    kinds = frozenset({HEADER})

    def observe(self, record: Record) -> list[Verdict]:
        if record.kind != HEADER:
            return []
        data = record.data
        units, activation = output_layer(data.get("model"))
        loss = loss_key(data.get("loss"))
        if not loss or (units is None and activation is None):
            return []
        config = data.get("loss_config")
        from_logits = config.get("from_logits") if isinstance(config, dict) else None
        labels = header_data(record, "labels")
        classes = labels.get("classes") if labels.get("task") == "classification" else None
        evidence = {
            "loss": data.get("loss"),
            "output_units": units,
            "output_activation": activation,
            "from_logits": from_logits,
            "label_classes": classes,
        }
        out: list[Verdict] = []

        def add(severity: Severity, key: str, message: str, hint: str) -> None:
            out.append(Finding(severity, message, hint, json_safe(evidence), key=key))

        if activation == "softmax" and units == 1:
            add(Severity.CRITICAL, "softmax1", "softmax over a single unit always outputs 1.0: the model cannot learn",
                "for two classes use Dense(1, activation='sigmoid') with binary_crossentropy; "
                "for K classes Dense(K, activation='softmax')")
        if loss in _CATEGORICAL and activation == "sigmoid":
            severity = Severity.CRITICAL if units == 1 else Severity.WARNING
            add(severity, "sigmoid_categorical",
                f"{data.get('loss')} on a sigmoid output" + (" with one unit: the loss is constant" if units == 1 else
                                                             ": sigmoid outputs do not sum to one"),
                "binary labels: Dense(1, 'sigmoid') + binary_crossentropy; one label of K classes: "
                "Dense(K, 'softmax') + (sparse_)categorical_crossentropy; several labels per row: binary_crossentropy")
        if loss in _BINARY and activation == "softmax" and (units or 0) > 1:
            add(Severity.WARNING, "softmax_binary",
                f"binary_crossentropy on a {units}-unit softmax: each unit is scored as its own yes/no question, "
                "and 'accuracy' then means binary accuracy",
                "use categorical_crossentropy (one-hot labels) or sparse_categorical_crossentropy (integer labels)")
        if loss in _BINARY and isinstance(classes, int) and classes > 2 and units == 1:
            add(Severity.WARNING, "binary_multiclass",
                f"binary_crossentropy with labels of {classes} classes",
                f"use Dense({classes}, activation='softmax') with sparse_categorical_crossentropy")
        if loss in _REGRESSION and activation in _SQUASHING and (classes is not None or not labels):
            add(Severity.WARNING, "regression_loss",
                f"{data.get('loss')} on a {activation} classifier output: its gradient ignores how wrong "
                "a confident prediction is, so training stalls",
                "use binary_crossentropy for a sigmoid output and categorical_crossentropy for softmax")
        if from_logits is True and activation in _SQUASHING:
            add(Severity.WARNING, "logits_squashed",
                f"from_logits=True but the output already applies {activation}: probabilities are squashed twice",
                f"remove the {activation} from the last layer (keep from_logits=True), or set from_logits=False")
        if (loss in _BINARY or loss in _CATEGORICAL) and from_logits is not True and activation is None and units is not None:
            add(Severity.WARNING, "logits_unsquashed",
                f"{data.get('loss')} expects probabilities but the output layer is linear: "
                "Keras clips its raw outputs to (0, 1), and gradients vanish outside it",
                "pass the loss as an object with from_logits=True (e.g. keras.losses.BinaryCrossentropy(from_logits=True)), "
                "or add a sigmoid/softmax to the last layer")
        reach = _RANGES.get(activation or "")
        low, high = finite(labels.get("min")), finite(labels.get("max"))
        if labels.get("task") == "regression" and reach is not None and low is not None and high is not None:
            floor, ceiling = reach
            outside = (floor is not None and low < floor) or (ceiling is not None and high > ceiling)
            if outside:
                evidence["target_min"], evidence["target_max"] = low, high
                span = f"[{_bound(floor)}, {_bound(ceiling)}]"
                add(Severity.WARNING, "bounded_output",
                    f"the output's {activation} can only give values in {span}, but the targets run from "
                    f"{low:.4g} to {high:.4g}: the model cannot reach them",
                    f"use a linear output layer (Dense(1) without an activation) for regression targets; "
                    f"keep {activation} only if the targets are scaled into {span} (MinMaxScaler)")
        return out


# Where a bounded output activation's values lie: (floor, ceiling), None for unbounded.
_RANGES: dict[str, tuple[float | None, float | None]] = {
    "sigmoid": (0.0, 1.0),
    "hard_sigmoid": (0.0, 1.0),
    "softmax": (0.0, 1.0),
    "tanh": (-1.0, 1.0),
    "relu": (0.0, None),
    "relu6": (0.0, 6.0),
    "softplus": (0.0, None),
    "exponential": (0.0, None),
}


def _bound(value: float | None) -> str:
    return "inf" if value is None else f"{value:g}"
