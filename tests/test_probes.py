"""Probes on real Keras fits: records for every kind of model, graceful
degradation, the header's data summary, and the detectors on real runs."""

from __future__ import annotations

import json
import subprocess
import sys

import keras
import numpy as np
import pytest

from lossmon.detect import Engine, Severity, available_detectors
from lossmon.format import decode
from lossmon.keras import LossmonCallback

PROBE_IDS = {"exploding_gradients", "vanishing_gradients", "dead_relu", "saturation", "unscaled_inputs",
             "class_imbalance", "update_ratio", "lr_config", "loss_mismatch"}


def read(path):
    return [r for r in (decode(line) for line in open(path, "rb")) if r is not None]


def of_kind(records, kind):
    return [r for r in records if r.kind == kind]


def warnings_of(path, roots_only=False):
    """The detectors with a warning or worse on the run file (with
    `roots_only`, those of root incidents: not the symptoms under a cause)."""
    engine = Engine(available_detectors())
    for record in read(path):
        engine.feed(record)
    return {a.detector for a in engine.alerts if a.severity.rank >= Severity.WARNING.rank
            and not (roots_only and a.caused_by is not None)}


def data(n=96, features=6, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features)).astype("float32")
    y = (x[:, 0] + x[:, 1] > 0).astype("float32")
    return x, y


class Subclassed(keras.Model):
    def __init__(self):
        super().__init__()
        self.hidden = keras.layers.Dense(8, activation="relu")
        self.out = keras.layers.Dense(1, activation="sigmoid")

    def call(self, x):
        return self.out(self.hidden(x))


def functional():
    inputs = keras.Input(shape=(6,))
    hidden = keras.layers.Dense(8, activation="tanh", name="hid")(inputs)
    hidden = keras.layers.Dense(8, name="lin")(hidden)
    hidden = keras.layers.Activation("sigmoid", name="squash")(hidden)
    return keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid", name="out")(hidden))


MODELS = {
    "sequential_without_input": lambda: keras.Sequential(
        [keras.layers.Dense(8, activation="relu", name="hid"), keras.layers.Dense(1, activation="sigmoid", name="out")]),
    "functional": functional,
    "subclassed": Subclassed,
}


@pytest.mark.parametrize("kind", list(MODELS))
def test_probe_records_for_every_kind_of_model(tmp_path, kind):
    path = tmp_path / "run.jsonl"
    x, y = data()
    keras.utils.set_random_seed(1)
    model = MODELS[kind]()
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    model.fit(x, y, batch_size=16, epochs=2, verbose=0,
              callbacks=[LossmonCallback(path, probe_data=(x[:64], y[:64]), probe_every=4)])
    records = read(path)
    header = records[0].data
    assert header["probes"]["enabled"] and header["probes"]["every"] == 4 and header["probes"]["rows"] == 64
    assert header["data"]["inputs"]["features"] == 6 and header["data"]["labels"]["classes"] == 2
    probes = of_kind(records, "probe")
    # first step, every 4 steps, and each epoch end (step 6 and 12), once per step
    assert [p.step for p in probes] == [1, 5, 6, 10, 12]
    assert [p.epoch for p in probes] == [0, 0, 0, 1, 1]
    first = probes[0]
    coverage = first.data["coverage"]
    assert coverage["gradients"] and coverage["weights"]
    for p in probes:
        v = p.values
        assert v["probe_loss"] > 0 and v["grad_norm"] > 0 and 0 < v["kernel_grad_norm"] <= v["grad_norm"] * 1.0001
        assert 0.0 <= v["min_recall"] <= 1.0 and 0.0 <= v["accuracy"] <= 1.0
        assert "update_steps" not in v  # one optimizer step per batch record
    names = coverage["kernel_layers"]
    assert len(names) == (3 if kind == "functional" else 2)
    assert all(f"weight_norm/{n}" in first.values for n in names)
    # the update ratio is one optimizer step, measured where a copy was taken the step before
    assert "update_ratio/" + names[0] not in first.values
    assert all(0 < p.values["update_ratio/" + names[0]] < 0.5 for p in probes[1:])
    if kind == "subclassed":
        assert coverage["activations"] is False and "subclassed" in coverage["activations_reason"]
        assert not any(k.startswith("act_mean/") for k in first.values)
    else:
        acts = coverage["activation_layers"]
        assert "out" not in acts  # the output layer is not an activation probe
        if kind == "functional":
            assert acts == {"hid": "tanh", "squash": "sigmoid"}
            assert "saturated_fraction/hid" in first.values and "saturated_fraction/squash" in first.values
        else:
            assert acts == {"hid": "relu"} and 0 <= first.values["dead_fraction/hid"] <= 1
        assert first.values[f"act_std/{next(iter(acts))}"] > 0
    assert records[-1].data["status"] == "completed"


def two_headed():
    """A shared relu trunk, a classification head with a tanh layer and a
    regression head, each output with its own loss."""
    inputs = keras.Input(shape=(6,), name="features")
    trunk = keras.layers.Dense(8, activation="relu", name="trunk")(inputs)
    hidden = keras.layers.Dense(8, activation="tanh", name="a_hidden")(trunk)
    outputs = {"a": keras.layers.Dense(1, activation="sigmoid", name="a")(hidden),
               "b": keras.layers.Dense(1, name="b")(trunk)}
    return keras.Model(inputs, outputs)


@pytest.mark.parametrize("form", ["dict", "list", "tuple"])
def test_multi_output_model_gets_activation_probes_and_the_total_loss(tmp_path, form):
    path = tmp_path / "run.jsonl"
    x, y_a = data()
    y_b = (x[:, 2] - x[:, 3])[:, None]
    y = {"dict": {"a": y_a, "b": y_b}, "list": [y_a, y_b], "tuple": (y_a, y_b)}[form]
    probe_y = keras.tree.map_structure(lambda v: v[:64], y)
    keras.utils.set_random_seed(1)
    model = two_headed()
    model.compile(optimizer="adam", loss={"a": "binary_crossentropy", "b": "mse"})
    model.fit(x, y, batch_size=16, epochs=2, verbose=0,
              callbacks=[LossmonCallback(path, probe_data=(x[:64], probe_y), probe_every=4)])
    probes = of_kind(read(path), "probe")
    assert [p.step for p in probes] == [1, 5, 6, 10, 12] and not any("error" in p.data for p in probes)
    coverage = probes[0].data["coverage"]
    assert coverage["activations"] and "activations_reason" not in coverage
    assert coverage["activation_layers"] == {"trunk": "relu", "a_hidden": "tanh"}  # not the two outputs
    for p in probes:
        v = p.values
        assert 0 <= v["dead_fraction/trunk"] <= 1 and 0 <= v["saturated_fraction/a_hidden"] <= 1
        assert v["act_std/trunk"] > 0 and np.isfinite(v["probe_loss"]) and v["probe_loss"] > 0
    # the probe loss is the model's total loss over both outputs, as evaluate() computes it
    total = model.evaluate(x[:64], probe_y, batch_size=64, verbose=0, return_dict=True)["loss"]
    assert probes[-1].values["probe_loss"] == pytest.approx(total, rel=1e-5)


class KernelCopies(keras.callbacks.Callback):
    """The first layer's kernel at every batch record, copied independently."""

    def __init__(self):
        super().__init__()
        self.kernels = []

    def on_train_batch_end(self, batch, logs=None):
        self.kernels.append(keras.ops.convert_to_numpy(self.model.layers[0].kernel).copy())


def test_update_ratio_with_steps_per_execution_is_per_step_over_the_last_group(tmp_path):
    path = tmp_path / "run.jsonl"
    x, y = data(300)  # 10 batches of 32: batch records at steps 4, 8, 10, then 14, 18, 20
    keras.utils.set_random_seed(1)
    model = MODELS["sequential_without_input"]()
    model.compile(optimizer="adam", loss="binary_crossentropy", steps_per_execution=4)
    copies = KernelCopies()
    model.fit(x, y, batch_size=32, epochs=2, verbose=0,
              callbacks=[LossmonCallback(path, probe_data=(x, y), probe_every=4), copies])
    probes = of_kind(read(path), "probe")
    # every batch record is probed here: due every 4 steps, or the epoch's end
    assert [p.step for p in probes] == [4, 8, 10, 14, 18, 20]
    assert "update_ratio/hid" not in probes[0].values
    kernel_at = dict(zip([4, 8, 10, 14, 18, 20], copies.kernels))
    previous = {8: 4, 10: 8, 14: 10, 18: 14, 20: 18}
    for p in probes[1:]:
        before, now = kernel_at[previous[p.step]], kernel_at[p.step]
        steps = p.step - previous[p.step]
        assert p.values["update_steps"] == steps  # 4, or 2 for the short last group of an epoch
        expected = np.linalg.norm(now - before) / steps / np.linalg.norm(now)
        assert p.values["update_ratio/hid"] == pytest.approx(expected, rel=1e-4)
        assert 0 < p.values["update_ratio/out"] < 0.05


def test_labels_that_do_not_fit_the_outputs_switch_probes_off_with_a_short_reason(tmp_path):
    path = tmp_path / "run.jsonl"
    x, y_a = data()
    y = {"a": y_a, "b": y_a[:, None]}
    model = two_headed()
    model.compile(optimizer="adam", loss={"a": "binary_crossentropy", "b": "mse"})
    with pytest.warns(Warning, match="probes failed"):
        model.fit(x, y, batch_size=32, epochs=1, verbose=0,
                  callbacks=[LossmonCallback(path, probe_data=(x, y_a))])  # one array for two outputs
    records = read(path)
    (probe,) = of_kind(records, "probe")
    error = probe.data["error"]
    assert "ValueError: y_true and y_pred have different structures" in error
    assert "File " not in error and "\n" not in error  # the message, not the traced code's traceback
    assert records[-1].data["status"] == "completed"


def test_probing_does_not_change_the_training(tmp_path):
    """training=False and no metric updates: the same seed gives the same losses."""
    x, y = data()
    histories = []
    for probe_data in (None, (x, y)):
        keras.utils.set_random_seed(3)
        model = MODELS["sequential_without_input"]()
        model.compile(optimizer="adam", loss="binary_crossentropy")
        callback = LossmonCallback(tmp_path / f"{probe_data is None}.jsonl", probe_data=probe_data, probe_every=2)
        histories.append(model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0, callbacks=[callback]).history)
    assert np.allclose(histories[0]["loss"], histories[1]["loss"], rtol=1e-6)


def test_probe_data_as_a_dataset_of_batches(tmp_path):
    import tensorflow as tf

    path = tmp_path / "run.jsonl"
    x, y = data(400)
    model = MODELS["sequential_without_input"]()
    model.compile(optimizer="adam", loss="binary_crossentropy")
    probe_set = tf.data.Dataset.from_tensor_slices((x, y)).batch(100)
    model.fit(x[:64], y[:64], batch_size=32, epochs=1, verbose=0,
              callbacks=[LossmonCallback(path, probe_data=probe_set)])
    records = read(path)
    # batches are taken until 256 rows are reached: 300 rows, then a seeded 256 of them
    assert records[0].data["probes"]["rows"] == 256 and records[0].data["data"]["inputs"]["rows"] == 300
    assert [p.step for p in of_kind(records, "probe")] == [1, 2]


def test_without_probe_data_the_header_says_metrics_only(tmp_path):
    path = tmp_path / "run.jsonl"
    x, y = data(32)
    model = MODELS["sequential_without_input"]()
    model.compile(optimizer="adam", loss="binary_crossentropy")
    model.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[LossmonCallback(path)])
    records = read(path)
    assert records[0].data["probes"] == {"enabled": False, "reason": "no probe_data given: metrics only"}
    assert "data" not in records[0].data and not of_kind(records, "probe")


def test_header_data_summary_of_unscaled_inputs_and_imbalanced_labels(tmp_path):
    path = tmp_path / "run.jsonl"
    rng = np.random.default_rng(0)
    x = rng.random((200, 3)).astype("float32")
    x[:, 1] *= 1000
    x[5, 2] = np.nan
    y = np.zeros(200, dtype="float32")
    y[:10] = 1
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy")
    model.fit(np.nan_to_num(x), y, batch_size=100, epochs=1, verbose=0,
              callbacks=[LossmonCallback(path, probe_data=(x, y))])
    header = read(path)[0].data
    inputs, labels = header["data"]["inputs"], header["data"]["labels"]
    assert inputs["nonfinite"] == 1 and inputs["features"] == 3
    assert inputs["worst"][0]["index"] == 1 and 400 < inputs["scale_max"] < 800
    assert labels == {"available": True, "task": "classification", "encoding": "sparse", "rows": 200, "classes": 2,
                      "classes_present": 2, "majority_class": 0, "majority_fraction": 0.95, "minority_class": 1,
                      "minority_fraction": 0.05, "imbalance_ratio": 19.0, "counts": {"0": 190, "1": 10}}
    json.dumps(header, allow_nan=False)


def test_probe_failure_warns_once_and_training_goes_on(tmp_path):
    path = tmp_path / "run.jsonl"
    x, y = data(32)
    model = MODELS["sequential_without_input"]()
    model.compile(optimizer="adam", loss="binary_crossentropy")
    bad_labels = np.zeros((32, 7), dtype="float32")  # the wrong shape for this loss
    with pytest.warns(Warning, match="probes failed"):
        history = model.fit(x, y, batch_size=16, epochs=2, verbose=0,
                            callbacks=[LossmonCallback(path, probe_data=(x, bad_labels))])
    assert len(history.history["loss"]) == 2
    records = read(path)
    (probe,) = of_kind(records, "probe")
    assert "probes failed" in probe.data["error"] and records[-1].data["status"] == "completed"


# ------------------------------------------------- static checks on real models


@pytest.mark.parametrize("units, activation, loss, detector", [
    (1, "softmax", "categorical_crossentropy", "loss_mismatch"),
    (1, "sigmoid", "mean_absolute_error", "loss_mismatch"),
    (1, "sigmoid", keras.losses.BinaryCrossentropy(from_logits=True), "loss_mismatch"),
    (3, "sigmoid", "categorical_crossentropy", "loss_mismatch"),
    (1, "sigmoid", "binary_crossentropy", None),
])
def test_static_checks_on_compiled_models(tmp_path, units, activation, loss, detector):
    path = tmp_path / "run.jsonl"
    x, y = data(32)
    if units > 1:
        y = keras.utils.to_categorical(y.astype(int), units)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4, activation="relu"),
                              keras.layers.Dense(units, activation=activation)])
    model.compile(optimizer="adam", loss=loss)
    model.fit(x, y, batch_size=32, epochs=1, verbose=0, callbacks=[LossmonCallback(path, probe_data=(x, y))])
    assert warnings_of(path) & PROBE_IDS == ({detector} if detector else set())


# ------------------------------------------------------ the detectors on real runs


@pytest.mark.parametrize("name", ["vanishing_tanh", "dead_relu", "saturated_sigmoid", "unscaled_inputs",
                                  "scaled_inputs", "imbalanced", "imbalanced_weighted"])
def test_probe_scenarios_fire_exactly_where_expected(tmp_path, name):
    import importlib

    module = importlib.import_module(f"lossmon.scenarios.{name}")
    path = tmp_path / "run.jsonl"
    module.train(str(path))
    found = warnings_of(path)
    assert set(module.EXPECTED) <= found
    # Besides what is expected, only consequences, read under their cause
    # (dead units no longer update; raw inputs make huge gradients).
    roots = warnings_of(path, roots_only=True)
    assert roots & PROBE_IDS <= set(module.EXPECTED)
    if not module.EXPECTED:
        assert not found  # controls: no warning from any detector


def test_the_same_model_with_relu_has_no_vanishing_gradients(tmp_path):
    from lossmon.scenarios import vanishing_tanh
    from lossmon.scenarios._probing import fit_probed

    path = tmp_path / "run.jsonl"
    train, validation = vanishing_tanh.data()
    fit_probed(str(path), vanishing_tanh.model("relu"), train, validation, optimizer="adam", loss="mse",
               epochs=3, pace=0.0)
    assert not warnings_of(path) & PROBE_IDS


OTHER_BACKEND_SCRIPT = """
import sys
import numpy as np
import keras
from lossmon.keras import LossmonCallback
assert keras.backend.backend() == sys.argv[2]
rng = np.random.default_rng(0)
x = rng.normal(size=(64, 4)).astype("float32")
y = (x[:, 0] > 0).astype("float32")
model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(4, activation="relu"),
                          keras.layers.Dense(1, activation="sigmoid")])
model.compile(optimizer="adam", loss="binary_crossentropy")
model.fit(x, y, batch_size=16, epochs=2, verbose=0,
          callbacks=[LossmonCallback(sys.argv[1], probe_data=(x, y), stop_on="critical")])
"""


def fit_on_backend(backend, path):
    """Fits a small model in a fresh process: Keras picks its backend once, at import."""
    import os
    from pathlib import Path

    env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    result = subprocess.run([sys.executable, "-c", OTHER_BACKEND_SCRIPT, str(path), backend], check=False,
                            capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "LossmonWarning" not in result.stderr, result.stderr[-2000:]  # the callback had nothing to complain of
    return read(path)


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_jax_and_torch_backends_record_metrics_and_say_which_probes_are_unavailable(tmp_path, backend):
    path = tmp_path / "run.jsonl"
    records = fit_on_backend(backend, path)
    header = records[0].data
    assert header["versions"]["backend"] == backend
    assert header["probes"]["enabled"] is False and f"this run uses {backend}" in header["probes"]["reason"]
    assert header["probes"]["unavailable"] == ["activations", "gradients", "predictions", "weights"]
    assert header["data"]["labels"]["classes"] == 2  # the data summary needs no backend
    batches, epochs = of_kind(records, "batch"), of_kind(records, "epoch")
    assert len(batches) == 8 and len(epochs) == 2 and not of_kind(records, "probe")
    assert all(np.isfinite(r.data["logs"]["loss"]) for r in batches + epochs)
    assert records[-1].data["status"] == "completed"
    checked = subprocess.run([sys.executable, "-m", "lossmon", "check", str(path), "--format", "json",
                              "--fail-on", "critical"], check=False, capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stderr
    report = json.loads(checked.stdout)
    assert report["malformed_lines"] == 0 and [run["status"] for run in report["runs"]] == ["completed"]


def test_check_reads_probe_runs_without_tensorflow(tmp_path):
    from lossmon.scenarios import unscaled_inputs

    path = tmp_path / "run.jsonl"
    unscaled_inputs.train(str(path), epochs=1)
    result = subprocess.run([sys.executable, "-m", "lossmon", "check", str(path), "--format", "json"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "unscaled_inputs" in {a["detector"] for a in json.loads(result.stdout)["alerts"]}
