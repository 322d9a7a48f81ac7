"""Probes: what a fixed small batch shows about the model's insides.

Every few steps the callback runs the model on the same probe batch and
records the loss, the gradient norms, the weight norms and how much the
last optimizer step moved the weights, and for each hidden activation
layer the share of dead or saturated units and the mean and spread of its
outputs. These are the signals that tell vanishing gradients, dead ReLUs or
saturated sigmoids apart, which the loss curve alone cannot.

Everything is computed by one `tf.function`, traced on the first probe, so a
probe costs about one forward and backward pass of the probe batch. The
model is run with `training=False`: dropout is off and batch-normalisation
statistics are not touched, so probing never changes the training.
"""

from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np

# Activation kinds: which unit-level measures make sense for a layer.
RELU = "relu"  # dead units: output 0 for every probe row
SQUASH_01 = "sigmoid"  # saturated units: output within 0.01 of 0 or 1
SQUASH_11 = "tanh"  # saturated units: |output| above 0.99
OTHER = "other"  # only the mean and spread of the outputs

_KINDS = {
    "relu": RELU,
    "relu6": RELU,
    "ReLU": RELU,
    "sigmoid": SQUASH_01,
    "hard_sigmoid": SQUASH_01,
    "tanh": SQUASH_11,
    "hard_tanh": SQUASH_11,
}
_NOT_ACTIVATIONS = {None, "linear", "softmax", "log_softmax"}

# A unit counts as saturated when at least this share of its outputs on the
# probe rows sit in the flat part of the curve (slope below ~4% of its peak).
SATURATED_ROWS = 0.9
SIGMOID_EDGE = 0.01
TANH_EDGE = 0.99


def activation_name(layer: Any) -> str | None:
    """The name of a layer's activation, or None when it has none."""
    if type(layer).__name__ == "ReLU":
        return "relu"
    activation = getattr(layer, "activation", None)
    if activation is None:
        return None
    if isinstance(activation, str):
        return activation
    name = getattr(activation, "__name__", None) or getattr(activation, "name", None)
    return name if isinstance(name, str) else type(activation).__name__


def activation_kind(layer: Any) -> str | None:
    """RELU, SQUASH_01, SQUASH_11, OTHER, or None for a linear layer."""
    name = activation_name(layer)
    if name in _NOT_ACTIVATIONS:
        return None
    return _KINDS.get(name, OTHER)


def flat_layers(model: Any) -> list[Any]:
    """The model's layers, nested models opened up, in order."""
    try:
        return [layer for layer in model._flatten_layers(include_self=False) if not layer._layers]
    except Exception:
        return list(getattr(model, "layers", []))


class Prober:
    """Computes probe records for one model and one probe batch.

    Set up lazily (`setup`) once the model is built, i.e. after its first
    training batch. `record_fields` returns the keys of one probe record.
    """

    def __init__(self, model: Any, x: Any, y: Any, sample_weight: Any = None, *, classes: int | None = None) -> None:
        self.model = model
        self.x, self.y, self.sample_weight = x, y, sample_weight
        self.classes = classes  # number of label classes, when labels are classes
        self.kernel_layers: list[str] = []
        self.activation_layers: dict[str, str] = {}  # name -> kind
        self.activations_reason: str | None = None
        self._fn: Any = None
        self._snapshot_fn: Any = None
        self._snapshot_step: int | None = None
        self._label_index: np.ndarray | None = None

    # ------------------------------------------------------------ set-up

    def setup(self, step: int) -> dict[str, Any]:
        """Build the probe function; return what the probes cover."""
        import tensorflow as tf

        model = self.model
        trainable = list(model.trainable_variables)
        kernels: list[tuple[str, Any]] = []
        for layer in flat_layers(model):
            kernel = main_weight(layer)
            if kernel is None or not getattr(kernel, "trainable", False):
                continue
            if any(kernel is v for v in trainable):
                kernels.append((layer.name, kernel))
        self.kernel_layers = [name for name, _ in kernels]
        index = {id(v): i for i, v in enumerate(trainable)}
        kernel_index = [index[id(k)] for _, k in kernels]
        previous = [tf.Variable(tf.cast(tf.convert_to_tensor(k), tf.float32), trainable=False) for _, k in kernels]

        feature_model, kinds = self._feature_model()
        kind_list = list(kinds.values())
        self.activation_layers = kinds
        predictions = _prediction_packer(model)

        def stats(activations: list[Any]) -> list[Any]:
            out = []
            for a, kind in zip(activations, kind_list):
                a = tf.cast(a, tf.float32)
                units = tf.reshape(a, [-1, tf.shape(a)[-1]])
                nan = tf.constant(math.nan)
                dead, saturated = nan, nan
                if kind == RELU:
                    dead = tf.reduce_mean(tf.cast(tf.reduce_max(units, axis=0) <= 0.0, tf.float32))
                elif kind in (SQUASH_01, SQUASH_11):
                    if kind == SQUASH_01:
                        flat = (units < SIGMOID_EDGE) | (units > 1.0 - SIGMOID_EDGE)
                    else:
                        flat = tf.abs(units) > TANH_EDGE
                    share = tf.reduce_mean(tf.cast(flat, tf.float32), axis=0)
                    saturated = tf.reduce_mean(tf.cast(share >= SATURATED_ROWS, tf.float32))
                out.append(tf.stack([tf.reduce_mean(units), tf.math.reduce_std(units), dead, saturated]))
            return out

        def probe(x: Any, y: Any, sample_weight: Any) -> dict[str, Any]:
            with tf.GradientTape() as tape:
                if feature_model is not None:
                    outputs = feature_model(x, training=False)
                    n = len(kind_list)
                    activations, y_pred = list(outputs[:n]), predictions(list(outputs[n:]))
                else:
                    activations, y_pred = [], model(x, training=False)
                loss = model.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=False)
            grads = tape.gradient(loss, trainable)
            present = [tf.cast(g, tf.float32) for g in grads if g is not None]
            out: dict[str, Any] = {
                "loss": tf.cast(loss, tf.float32),
                "grad_norm": tf.linalg.global_norm(present) if present else tf.constant(0.0),
                "y_pred": y_pred,
            }
            if kernels:
                grad_norms, weight_norms, moved = [], [], []
                for (_, kernel), i, before in zip(kernels, kernel_index, previous):
                    g = grads[i]
                    grad_norms.append(tf.constant(0.0) if g is None else tf.norm(tf.cast(g, tf.float32)))
                    w = tf.cast(tf.convert_to_tensor(kernel), tf.float32)
                    weight_norms.append(tf.norm(w))
                    moved.append(tf.norm(w - before))
                out["kernels"] = tf.stack([tf.stack(grad_norms), tf.stack(weight_norms), tf.stack(moved)])
            if kind_list:
                out["activations"] = tf.stack(stats(activations))
            return out

        def snapshot() -> None:
            for (_, kernel), before in zip(kernels, previous):
                before.assign(tf.cast(tf.convert_to_tensor(kernel), tf.float32))

        self._snapshot_fn = tf.function(snapshot) if kernels else None
        self._fn = tf.function(probe, reduce_retracing=True)
        self.x, self.y, self.sample_weight = _as_tensors(self.x, self.y, self.sample_weight)
        if self.classes:
            self._label_index = label_index(np.asarray(self.y))
        return {
            "gradients": True,
            "weights": bool(kernels),
            "activations": bool(kinds),
            "kernel_layers": self.kernel_layers,
            "activation_layers": kinds,
            **({"activations_reason": self.activations_reason} if self.activations_reason else {}),
        }

    def _feature_model(self) -> tuple[Any, dict[str, str]]:
        """A model returning each hidden activation layer's output and the
        prediction, sharing the model's weights; None when the internals
        cannot be reached (a subclassed model has no symbolic graph)."""
        model = self.model
        try:
            inputs, outputs = model.inputs, model.outputs
        except Exception:
            inputs = outputs = None
        if not inputs or not outputs:
            self.activations_reason = "the model has no symbolic inputs (subclassed?): activation probes skipped"
            return None, {}
        output_ids = {id(t) for t in outputs}
        kinds: dict[str, str] = {}
        tensors = []
        for layer in flat_layers(model):
            kind = activation_kind(layer)
            if kind is None:
                continue
            try:
                tensor = layer.output
            except Exception:  # a shared layer has several outputs
                continue
            if id(tensor) in output_ids or not hasattr(tensor, "shape"):
                continue
            kinds[layer.name] = kind
            tensors.append(tensor)
        if not tensors:
            return None, {}
        try:
            return keras.Model(_input_structure(model), tensors + list(outputs)), kinds
        except Exception as exc:
            self.activations_reason = f"activation layers unreachable ({type(exc).__name__}): activation probes skipped"
            return None, {}

    # ------------------------------------------------------------ probing

    def snapshot(self, step: int) -> None:
        """Keep a copy of the weights at the batch record before a probe, so
        the probe can measure the size of the optimizer steps between."""
        if self._snapshot_fn is not None:
            self._snapshot_fn()
            self._snapshot_step = step

    def record_fields(self, step: int, previous_step: int) -> dict[str, Any]:
        """Run the probe: the numbers of one probe record. `previous_step`
        is the step of the batch record before this one: one step back, or
        one group of `steps_per_execution` steps."""
        raw = self._fn(self.x, self.y, self.sample_weight)
        # The copy counts only when taken at the batch record just before.
        steps = step - previous_step if self._snapshot_step == previous_step < step else 0
        self._snapshot_step = None
        fields: dict[str, Any] = {
            "probe_loss": float(raw["loss"]),
            "grad_norm": float(raw["grad_norm"]),
        }
        layers: dict[str, dict[str, float]] = {}
        kernels = raw.get("kernels")
        if kernels is not None:
            grad_norms, weight_norms, moved = kernels.numpy().tolist()
            for name, g, w, d in zip(self.kernel_layers, grad_norms, weight_norms, moved):
                entry = layers.setdefault(name, {})
                entry["grad_norm"] = g
                entry["weight_norm"] = w
                if steps and w > 0:
                    entry["update_ratio"] = d / steps / w  # ||W_t - W_t-k|| / k / ||W_t||
            if steps > 1:
                fields["update_steps"] = steps
            fields["kernel_grad_norm"] = math.sqrt(sum(g * g for g in grad_norms))
            first, last = grad_norms[0], grad_norms[-1]
            fields["grad_first"] = first
            fields["grad_last"] = last
            if last > 0 and len(grad_norms) > 1:
                fields["grad_ratio"] = first / last
        acts = raw.get("activations")
        if acts is not None:
            for name, (mean, std, dead, saturated) in zip(self.activation_layers, acts.numpy().tolist()):
                entry = layers.setdefault(name, {})
                entry["act_mean"] = mean
                entry["act_std"] = std
                if dead == dead:
                    entry["dead_fraction"] = dead
                if saturated == saturated:
                    entry["saturated_fraction"] = saturated
        y_pred = raw["y_pred"]
        if self._label_index is not None and hasattr(y_pred, "shape"):  # one output
            fields.update(class_outcome(self._label_index, np.asarray(y_pred), self.classes or 2))
        fields["layers"] = layers
        return fields


# ------------------------------------------------------------ helpers


def main_weight(layer: Any) -> Any:
    """A layer's weight matrix: `kernel` (Dense, Conv, LSTM, EinsumDense) or
    `embeddings` (Embedding); None for layers without one."""
    for name in ("_kernel", "kernel", "embeddings"):
        try:
            weight = getattr(layer, name, None)
        except Exception:
            weight = None
        if weight is not None and hasattr(weight, "shape"):
            return weight
    return None


def _structure(model: Any, name: str) -> Any:
    """A functional model's input or output structure; None for others."""
    try:
        return getattr(model, name, None)
    except Exception:
        return None


def _input_structure(model: Any) -> Any:
    """The model's inputs as `fit` takes them: one tensor, or the list or
    dict a functional model was built with (so calling with x matches)."""
    structure = _structure(model, "_inputs_struct")
    if structure is not None:
        return structure
    inputs = list(model.inputs)
    return inputs[0] if len(inputs) == 1 else inputs


def _prediction_packer(model: Any) -> Any:
    """A function giving the flat output tensors the structure `model(x)`
    returns (one tensor, or a list or dict of outputs), as `compute_loss`
    expects them."""
    structure = _structure(model, "_outputs_struct")

    def pack(flat: list[Any]) -> Any:
        if len(flat) == 1:
            return flat[0]
        if structure is None:
            return flat
        return keras.tree.pack_sequence_as(structure, flat)

    return pack


def _as_tensors(x: Any, y: Any, sample_weight: Any) -> tuple[Any, Any, Any]:
    """Convert the probe batch once, so each probe feeds tensors, not numpy."""
    import tensorflow as tf

    def convert(value: Any) -> Any:
        if value is None:
            return None
        return keras.tree.map_structure(tf.convert_to_tensor, value)

    return convert(x), convert(y), convert(sample_weight)


def label_index(y: np.ndarray) -> np.ndarray:
    """Class index per row from sparse or one-hot labels."""
    if y.ndim >= 2 and y.shape[-1] > 1:
        return np.argmax(y.reshape(len(y), -1), axis=1)
    return np.rint(y.reshape(len(y))).astype(np.int64)


def class_outcome(labels: np.ndarray, y_pred: np.ndarray, classes: int) -> dict[str, float]:
    """How the probe rows' predicted classes compare with their labels.

    `min_recall` is the recall of the worst-served class present in the
    probe rows; `majority_pred_fraction` the share of rows predicted as the
    most common label. Together they show a model that ignores a minority.
    """
    y_pred = y_pred.reshape(len(y_pred), -1)
    if y_pred.shape[1] == 1:
        cut = 0.5 if np.nanmin(y_pred) >= 0.0 and np.nanmax(y_pred) <= 1.0 else 0.0
        predicted = (y_pred[:, 0] > cut).astype(np.int64)
    else:
        predicted = np.argmax(y_pred, axis=1)
    present, counts = np.unique(labels, return_counts=True)
    majority = present[np.argmax(counts)]
    recalls = [float(np.mean(predicted[labels == c] == c)) for c in present]
    return {
        "accuracy": float(np.mean(predicted == labels)),
        "min_recall": min(recalls),
        "majority_pred_fraction": float(np.mean(predicted == majority)),
    }
