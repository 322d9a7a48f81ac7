"""Train one corpus setup for real: data, model, `model.fit` with the
callback, and the outcome measured on held-out data.

The outcome is what labels a run (lossmon.eval.score): balanced accuracy
for classifiers, R^2 for regressions and autoencoders, on the validation
rows with their true labels, plus whether anything went non-finite and
how the validation loss moved. Needs TensorFlow and scikit-learn.
"""

from __future__ import annotations

import math
import time
from typing import Any

import keras
import numpy as np
from sklearn import datasets as skd

from lossmon.eval.space import Setup, plan_epochs
from lossmon.keras import LossmonCallback

N_ROWS = 1500  # rows drawn from a generator (bundled sets have their own size)
SEQ_LEN = 12
VOCAB = 50


# ----------------------------------------------------------------- data


def _standardise(x: np.ndarray) -> np.ndarray:
    std = x.std(axis=0)
    return (x - x.mean(axis=0)) / np.where(std > 0, std, 1.0)


def _raw(name: str, rng: np.random.Generator, seed: int) -> tuple[np.ndarray, np.ndarray, str]:
    """Features, labels or targets, and the task kind, before any mistake."""
    if name == "breast_cancer":
        d = skd.load_breast_cancer()
        return _standardise(d.data), d.target, "binary"
    if name == "moons":
        x, y = skd.make_moons(N_ROWS, noise=0.2, random_state=seed)
        return _standardise(x), y, "binary"
    if name == "circles":
        x, y = skd.make_circles(N_ROWS, noise=0.08, factor=0.5, random_state=seed)
        return _standardise(x), y, "binary"
    if name == "classification2":
        x, y = skd.make_classification(N_ROWS, 20, n_informative=8, n_classes=2, flip_y=0.02, random_state=seed)
        return _standardise(x), y, "binary"
    if name == "classification4":
        x, y = skd.make_classification(N_ROWS, 20, n_informative=10, n_classes=4, flip_y=0.02, random_state=seed)
        return _standardise(x), y, "multiclass"
    if name == "digits":
        d = skd.load_digits()
        return d.data / 16.0, d.target, "multiclass"
    if name == "digits_images":
        d = skd.load_digits()
        return (d.data / 16.0).reshape(-1, 8, 8, 1), d.target, "multiclass"
    if name == "wine":
        d = skd.load_wine()
        return _standardise(d.data), d.target, "multiclass"
    if name == "iris":
        d = skd.load_iris()
        return _standardise(d.data), d.target, "multiclass"
    if name == "blobs":
        x, y = skd.make_blobs(N_ROWS, n_features=6, centers=4, cluster_std=2.0, random_state=seed)
        return _standardise(x), y, "multiclass"
    if name == "diabetes":
        d = skd.load_diabetes()
        return _standardise(d.data), _standardise(d.target), "regression"
    if name == "friedman":
        x, y = skd.make_friedman1(N_ROWS, noise=0.5, random_state=seed)
        return _standardise(x), _standardise(y), "regression"
    if name == "linear":
        x, y = skd.make_regression(N_ROWS, 10, n_informative=6, noise=10.0, random_state=seed)
        return _standardise(x), _standardise(y), "regression"
    if name.startswith("seq_"):
        x = rng.normal(size=(N_ROWS, SEQ_LEN, 3))
        if name == "seq_sign":
            return x, (x[:, :, 0].sum(axis=1) > 0).astype(int), "binary"
        if name == "seq_argmax":
            return x, x.sum(axis=1).argmax(axis=1), "multiclass"
        w = np.linspace(0.5, 1.5, SEQ_LEN)
        return x, _standardise(x[:, :, 0] @ w + 0.3 * x[:, -1, 1]), "regression"
    if name.startswith("tokens"):
        # Each class has ten marker tokens; a third of a row's tokens are its class's markers.
        k = 2 if name == "tokens2" else 4
        y = rng.integers(k, size=N_ROWS)
        x = rng.integers(1, VOCAB, size=(N_ROWS, 20))
        marked = rng.random(x.shape) < 0.33
        x = np.where(marked, 1 + 10 * y[:, None] + rng.integers(10, size=x.shape), x)
        return x, y, "binary" if k == 2 else "multiclass"
    if name == "multi":
        x, y = skd.make_classification(N_ROWS, 12, n_informative=6, n_classes=3, random_state=seed)
        x = _standardise(x)
        reg = _standardise(x @ rng.normal(size=12) + 0.2 * rng.normal(size=len(x)))
        return x, np.stack([y, reg], axis=1), "multi"
    raise ValueError(f"unknown dataset {name!r}")


def load(s: Setup) -> dict[str, Any]:
    """The setup's train and validation arrays, with its mistakes applied."""
    rng = np.random.default_rng(s["seed"])
    x, y, kind = _raw(s["dataset"], rng, s["seed"] % 1000)
    if kind == "multiclass" and s["task"] == "binary":
        y, kind = (y >= (y.max() + 1) // 2).astype(int), "binary"
    if s["task"] == "reconstruct":
        y, kind = x.reshape(len(x), -1).copy(), "reconstruct"
    if s.get("imbalance") and kind == "binary":
        pos = np.flatnonzero(y == 1)
        neg = np.flatnonzero(y == 0)
        keep = int(len(neg) * s["imbalance"] / (1 - s["imbalance"]))
        rows = np.concatenate((neg, rng.permutation(pos)[:keep]))
        x, y = x[rows], y[rows]
    order = rng.permutation(len(x))
    x, y = x[order].astype("float32"), y[order]
    if s["dataset"].startswith("tokens"):
        x = x.astype("int32")
    n_val = max(len(x) // 5, 30)
    x_val, y_val = x[:n_val], y[:n_val]
    x_tr, y_tr = x[n_val:], y[n_val:]
    if s.get("n_train"):
        x_tr, y_tr = x_tr[: s["n_train"]], y_tr[: s["n_train"]]
    true_tr = y_tr.copy()
    if s.get("label_noise"):
        y_tr = y_tr.copy()
        flip = rng.random(len(y_tr)) < s["label_noise"]
        y_tr[flip] = rng.permutation(y_tr)[flip]  # the flipped rows get labels drawn from the set's own
    if s.get("target_noise"):
        y_tr = y_tr + s["target_noise"] * rng.normal(size=y_tr.shape)
    scale, offset = s.get("input_scale", 1.0), s.get("input_offset", 0.0)
    if (scale, offset) != (1.0, 0.0):
        if s["dataset"] == "digits_images" or s["dataset"] == "digits":
            scale, offset = 255.0, 0.0  # raw pixel values
        x_tr, x_val = x_tr * scale + offset, x_val * scale + offset
    if s.get("target_scale"):
        y_tr = y_tr * s["target_scale"] + s["target_offset"]
        y_val = y_val * s["target_scale"] + s["target_offset"]
    if s.get("bad_inputs"):
        x_tr = x_tr.copy()
        bad = rng.choice(len(x_tr), size=max(1, len(x_tr) // 100), replace=False)
        x_tr.reshape(len(x_tr), -1)[bad, 0] = np.nan if s["bad_inputs"] == "nan" else np.inf
    x_fit_val = x_val * s["val_scale"] if s.get("val_scale") else x_val
    classes = int(y.max()) + 1 if kind in ("binary", "multiclass") else None
    return {
        "x": x_tr.astype("float32") if x_tr.dtype.kind == "f" else x_tr,
        "y": y_tr,
        "true_y": true_tr,
        "x_val": x_fit_val.astype("float32") if x_fit_val.dtype.kind == "f" else x_fit_val,
        "y_val": y_val,
        "kind": kind,
        "classes": classes,
    }


# ----------------------------------------------------------------- model


def _activation(name: str) -> Any:
    if name == "tanh_0.01":
        return lambda t: keras.ops.tanh(t * 0.01)  # the seeds' squeezed tanh
    return name


def _dense(s: Setup, units: int, activation: Any = None) -> keras.layers.Layer:
    init = s.get("init")
    kernel = "zeros" if init == "zeros" else keras.initializers.RandomNormal(stddev=10.0) if init == "huge" else "glorot_uniform"
    bias = keras.initializers.Constant(s["relu_bias"]) if s.get("relu_bias") else "zeros"
    reg = keras.regularizers.l2(s["l2"]) if s.get("l2") else None
    return keras.layers.Dense(units, activation=_activation(activation or s["activation"]),
                              kernel_initializer=kernel, bias_initializer=bias, kernel_regularizer=reg)


def _hidden(s: Setup, h: Any, units: list[int]) -> Any:
    for u in units:
        h = _dense(s, u)(h)
        if s.get("batchnorm"):
            h = keras.layers.BatchNormalization()(h)
        if s.get("dropout"):
            h = keras.layers.Dropout(s["dropout"])(h)
    return h


def _head(s: Setup, data: dict[str, Any], h: Any) -> tuple[Any, Any]:
    """The output layer and the loss for the task (and the mistake)."""
    kind, wrong = data["kind"], s.get("wrong_loss")
    logits = s.get("from_logits", False)
    smooth = s.get("label_smoothing", 0.0)
    if kind == "binary":
        if wrong == "categorical_on_sigmoid":
            return keras.layers.Dense(1, activation="sigmoid")(h), keras.losses.CategoricalCrossentropy()
        if wrong == "linear_output_no_logits":
            return keras.layers.Dense(1)(h), keras.losses.BinaryCrossentropy()
        out = keras.layers.Dense(1, activation=None if logits else "sigmoid")(h)
        return out, keras.losses.BinaryCrossentropy(from_logits=logits, label_smoothing=smooth)
    if kind == "multiclass":
        k = data["classes"]
        if wrong == "linear_output_no_logits":
            return keras.layers.Dense(k)(h), keras.losses.SparseCategoricalCrossentropy()
        if wrong == "mse_on_onehot_linear":
            return keras.layers.Dense(k)(h), keras.losses.MeanSquaredError()
        out = keras.layers.Dense(k, activation=None if logits else "softmax")(h)
        if s.get("sparse"):
            return out, keras.losses.SparseCategoricalCrossentropy(from_logits=logits)
        return out, keras.losses.CategoricalCrossentropy(from_logits=logits, label_smoothing=smooth)
    width = data["y"].shape[1] if kind == "reconstruct" else 1
    out = keras.layers.Dense(width, activation=s.get("output_activation"))(h)
    loss = {"mse": "mse", "mae": "mae", "huber": keras.losses.Huber()}[s.get("loss", "mse")]
    return out, loss


def build(s: Setup, data: dict[str, Any]) -> tuple[keras.Model, Any]:
    shape = data["x"].shape[1:]
    inp = keras.Input(shape=shape, dtype="int32" if data["x"].dtype.kind == "i" else "float32")
    family = s["family"]
    if family == "cnn":
        h = inp
        for f in s["filters"]:
            h = keras.layers.Conv2D(f, 3, padding="same", activation=_activation(s["activation"]),
                                    kernel_initializer="zeros" if s.get("init") == "zeros" else "glorot_uniform",
                                    bias_initializer=keras.initializers.Constant(s.get("relu_bias", 0.0)))(h)
            if s.get("batchnorm"):
                h = keras.layers.BatchNormalization()(h)
            if s.get("pooling") and h.shape[1] >= 4:
                h = keras.layers.MaxPooling2D()(h)
        h = keras.layers.Flatten()(h)
        h = _hidden(s, h, s["layers"][:1])
    elif family == "rnn":
        cell = getattr(keras.layers, s["cell"])
        kw: dict[str, Any] = {}
        if s.get("recurrent_init"):
            kw = {"activation": s.get("rnn_activation", "tanh"),
                  "recurrent_initializer": keras.initializers.Orthogonal(gain=s["recurrent_init"])}
        h = cell(s["units"], **kw)(inp)
        h = _hidden(s, h, s["layers"][:1])
    elif family == "embed":
        h = keras.layers.Embedding(VOCAB, s["embed_dim"])(inp)
        h = keras.layers.GlobalAveragePooling1D()(h)
        h = _hidden(s, h, s["layers"][:1])
    elif family == "resmlp":
        width = s["layers"][0]
        h = _dense(s, width)(inp)
        for _ in s["layers"]:
            h = keras.layers.Add()([h, _dense(s, width)(_dense(s, width)(h))])
            if s.get("dropout"):
                h = keras.layers.Dropout(s["dropout"])(h)
    elif family == "autoenc":
        h = _hidden(s, inp, s["layers"])
        h = _dense(s, s["code"])(h)
        h = _hidden(s, h, list(reversed(s["layers"])))
    else:  # mlp and multi
        h = _hidden(s, inp, s["layers"])
    if family == "multi":
        cls = keras.layers.Dense(3, activation="softmax", name="cls")(h)
        reg = keras.layers.Dense(1, name="reg")(h)
        model = keras.Model(inp, {"cls": cls, "reg": reg})
        return model, {"cls": keras.losses.SparseCategoricalCrossentropy(), "reg": "mse"}
    out, loss = _head(s, data, h)
    return keras.Model(inp, out), loss


def _optimizer(s: Setup, total_steps: int) -> keras.optimizers.Optimizer:
    lr: Any = s["lr"]
    if s["schedule"] == "exp_decay":
        lr = keras.optimizers.schedules.ExponentialDecay(lr, max(1, total_steps // 4), 0.5)
    elif s["schedule"] == "cosine_warmup":
        warm = max(1, total_steps // 10)
        lr = keras.optimizers.schedules.CosineDecay(0.0, max(1, total_steps - warm), warmup_target=s["lr"], warmup_steps=warm)
    name = s["optimizer"]
    if name == "sgd":
        return keras.optimizers.SGD(lr, momentum=s.get("momentum", 0.0))
    cls = {"adam": keras.optimizers.Adam, "adamw": keras.optimizers.AdamW, "nadam": keras.optimizers.Nadam,
           "rmsprop": keras.optimizers.RMSprop, "adagrad": keras.optimizers.Adagrad}[name]
    return cls(lr)


# ----------------------------------------------------------------- fit


def _targets(s: Setup, data: dict[str, Any], y: np.ndarray) -> Any:
    """Labels as the loss takes them."""
    kind = data["kind"]
    if s["family"] == "multi":
        return {"cls": y[:, 0].astype("int32"), "reg": y[:, 1:2].astype("float32")}
    if kind == "binary":
        y = y.astype("float32").reshape(-1, 1)
        return y + 1.0 if s.get("wrong_loss") == "labels_1_2" else y
    if kind == "multiclass":
        if s.get("wrong_loss") == "mse_on_onehot_linear":
            return keras.utils.to_categorical(y, data["classes"]).astype("float32")  # MSE needs the one-hot rows
        if s.get("sparse") or s.get("wrong_loss") == "linear_output_no_logits":
            return y.astype("int32")
        return keras.utils.to_categorical(y, data["classes"]).astype("float32")
    return y.astype("float32").reshape(len(y), -1)


def train(s: Setup, path: str) -> dict[str, Any]:
    """Fit `s`, writing its run file to `path`; return its outcome."""
    start = time.perf_counter()
    keras.utils.set_random_seed(s["seed"] % 2**31)
    data = load(s)
    model, loss = build(s, data)
    n_fit = len(data["x"])
    epochs = plan_epochs(s, n_fit)
    steps = math.ceil((n_fit * (0.8 if s["validation"] == "split" else 1.0)) / s["batch_size"])
    metrics: Any = {"cls": ["accuracy"], "reg": []} if s["family"] == "multi" else (
        ["accuracy"] if data["kind"] in ("binary", "multiclass") else [])
    model.compile(optimizer=_optimizer(s, steps * epochs), loss=loss, metrics=metrics,
                  steps_per_execution=s.get("steps_per_execution", 1))
    y = _targets(s, data, data["y"])
    probe = None
    if s.get("probe"):
        probe = (data["x"][:256], {k: v[:256] for k, v in y.items()} if isinstance(y, dict) else y[:256])
    callbacks: list[Any] = [LossmonCallback(path, probe_data=probe, probe_every=s.get("probe_every"), run_name=s["id"])]
    if s["schedule"] == "reduce_on_plateau":
        callbacks.append(keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=3))
    if s.get("early_stopping"):
        callbacks.append(keras.callbacks.EarlyStopping(monitor="val_loss", patience=8, restore_best_weights=True))
    fit_kw: dict[str, Any] = {}
    if s["validation"] == "split" and not s.get("val_scale"):
        fit_kw["validation_split"] = 0.2
    else:
        fit_kw["validation_data"] = (data["x_val"], _targets(s, data, data["y_val"]))
    if s.get("class_weight") and data["kind"] == "binary":
        counts = np.bincount(data["y"].astype(int), minlength=2)
        fit_kw["class_weight"] = {c: len(data["y"]) / (2.0 * max(n, 1)) for c, n in enumerate(counts)}
    history = model.fit(data["x"], y, batch_size=s["batch_size"], epochs=epochs, verbose=0, callbacks=callbacks, **fit_kw)
    outcome = measure(s, data, model, history.history)
    outcome["seconds"] = round(time.perf_counter() - start, 2)
    outcome["epochs_planned"] = epochs
    outcome["steps_per_epoch"] = steps
    return outcome


def measure(s: Setup, data: dict[str, Any], model: keras.Model, history: dict[str, list[float]]) -> dict[str, Any]:
    """How well the run did on its validation rows, with their true labels."""
    x_val = data["x_val"]
    pred = model.predict(x_val, batch_size=256, verbose=0)
    kind = data["kind"]
    y_val = data["y_val"]
    if s["family"] == "multi":
        pred, y_val, kind = pred["cls"], y_val[:, 0].astype(int), "multiclass"
    pred = np.asarray(pred, dtype="float64")
    loss = [float(v) for v in history.get("loss", [])]
    val = [float(v) for v in history.get("val_loss", [])]
    nonfinite = not np.isfinite(pred).all() or not all(math.isfinite(v) for v in loss + val)
    out: dict[str, Any] = {"nonfinite": bool(nonfinite), "loss": loss, "val_loss": val, "epochs_run": len(loss)}
    if kind in ("binary", "multiclass"):
        k = 2 if kind == "binary" else pred.shape[1]
        if kind == "binary":
            cut = 0.5 if np.nanmin(pred) >= 0 and np.nanmax(pred) <= 1 else 0.0
            labels = (np.nan_to_num(pred[:, 0], nan=-1e9) > cut).astype(int)
        else:
            labels = np.nan_to_num(pred, nan=-1e9).argmax(axis=1)
        truth = y_val.astype(int)
        recalls = [float((labels[truth == c] == c).mean()) for c in range(k) if (truth == c).any()]
        bacc = float(np.mean(recalls))
        chance = 1.0 / k
        out.update(metric="balanced_accuracy", value=bacc, chance=chance, skill=(bacc - chance) / (1 - chance))
    else:
        truth = np.asarray(y_val, dtype="float64").reshape(len(y_val), -1)
        pred = pred.reshape(len(pred), -1)
        sst = float(((truth - truth.mean(axis=0)) ** 2).sum())
        sse = float(np.nan_to_num((truth - pred) ** 2, nan=1e30, posinf=1e30).sum())
        r2 = 1.0 - sse / sst if sst > 0 else 0.0
        out.update(metric="r2", value=r2, chance=0.0, skill=max(r2, -1.0))
    return out
