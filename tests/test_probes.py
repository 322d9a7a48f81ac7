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


def warnings_of(path):
    engine = Engine(available_detectors())
    for record in read(path):
        engine.feed(record)
    return {a.detector for a in engine.alerts if a.severity.rank >= Severity.WARNING.rank}


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


@pytest.mark.parametrize("name", ["vanishing_tanh", "dead_relu", "unscaled_inputs", "scaled_inputs",
                                  "imbalanced", "imbalanced_weighted"])
def test_probe_scenarios_fire_exactly_where_expected(tmp_path, name):
    import importlib

    module = importlib.import_module(f"lossmon.scenarios.{name}")
    path = tmp_path / "run.jsonl"
    module.train(str(path))
    found = warnings_of(path)
    assert set(module.EXPECTED) <= found
    # Besides what is expected, only a consequence: dead units no longer update.
    also = {"update_ratio"} if name == "dead_relu" else set()
    assert found & PROBE_IDS <= set(module.EXPECTED) | also
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


JAX_SCRIPT = """
import sys
import numpy as np
import keras
from lossmon.keras import LossmonCallback
assert keras.backend.backend() == "jax"
rng = np.random.default_rng(0)
x = rng.normal(size=(64, 4)).astype("float32")
y = (x[:, 0] > 0).astype("float32")
model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(4, activation="relu"),
                          keras.layers.Dense(1, activation="sigmoid")])
model.compile(optimizer="adam", loss="binary_crossentropy")
model.fit(x, y, batch_size=16, epochs=2, verbose=0,
          callbacks=[LossmonCallback(sys.argv[1], probe_data=(x, y), stop_on="critical")])
"""


def test_jax_backend_records_metrics_and_says_which_probes_are_unavailable(tmp_path):
    import os
    from pathlib import Path

    path = tmp_path / "run.jsonl"
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    result = subprocess.run([sys.executable, "-c", JAX_SCRIPT, str(path)], capture_output=True, text=True,
                            timeout=120, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    records = read(path)
    header = records[0].data
    assert header["versions"]["backend"] == "jax"
    assert header["probes"]["enabled"] is False and "this run uses jax" in header["probes"]["reason"]
    assert header["probes"]["unavailable"] == ["activations", "gradients", "predictions", "weights"]
    assert header["data"]["labels"]["classes"] == 2  # the data summary needs no backend
    assert [r.kind for r in records].count("batch") == 8 and not of_kind(records, "probe")
    assert records[-1].data["status"] == "completed"


def test_check_reads_probe_runs_without_tensorflow(tmp_path):
    from lossmon.scenarios import unscaled_inputs

    path = tmp_path / "run.jsonl"
    unscaled_inputs.train(str(path), epochs=1)
    result = subprocess.run([sys.executable, "-m", "lossmon", "check", str(path), "--format", "json"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "unscaled_inputs" in {a["detector"] for a in json.loads(result.stdout)["alerts"]}
