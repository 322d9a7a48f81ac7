"""LossmonCallback with real `model.fit` runs on tiny data, and the demo scenarios."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import gc
import json
import math
import re
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import keras
import numpy as np
import pytest

import lossmon
from lossmon.format import decode
from lossmon.keras import LossmonCallback, LossmonWarning

ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------- helpers


@pytest.fixture(autouse=True)
def _free_models():
    """Collect each test's models right away: left to pile up, TensorFlow
    frees them in one multi-second garbage collection later on."""
    yield
    gc.collect()


def data(rows: int = 100, features: int = 10, seed: int = 0):
    """A learnable binary task: labels from a linear rule."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, features)).astype("float32")
    y = (x @ rng.normal(size=features) > 0).astype("float32")
    return x, y


def seeds_model(with_input: bool = True) -> keras.Model:
    layers = [keras.layers.Dense(128, activation="relu"), keras.layers.Dense(1, activation="sigmoid")]
    if with_input:
        layers.insert(0, keras.Input(shape=(10,)))
    return keras.Sequential(layers)


def read(path) -> list:
    with open(path, "rb") as file:
        records = [decode(line) for line in file]
    assert all(record is not None for record in records)
    return records


def of_kind(records, kind: str) -> list:
    return [record.data for record in records if record.kind == kind]


def loss_warnings(caught) -> list:
    return [w for w in caught if issubclass(w.category, LossmonWarning)]


# ------------------------------------------------------------ the header


def test_header_batches_epochs_and_end(tmp_path):
    path = tmp_path / "runs" / "run.jsonl"
    x, y = data(100)
    model = seeds_model()
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=1.0),
                  loss="binary_crossentropy", metrics=["accuracy"])
    callback = LossmonCallback(path, run_name="seeds")
    model.fit(x, y, batch_size=20, epochs=2, validation_data=(x[:40], y[:40]),
              callbacks=[callback], verbose=0)

    records = read(path)
    assert [r.kind for r in records] == ["header"] + (["batch"] * 5 + ["epoch"]) * 2 + ["end"]
    assert {r.run for r in records} == {callback.run_id}
    header = records[0].data
    assert re.fullmatch(r"\d{8}-\d{6}-[0-9a-f]{12}", header["run"])
    assert header["step"] == 0 and header["format"] == 1 and header["name"] == "seeds"
    assert header["pid"] == os.getpid() and header["host"]
    assert header["versions"] == {"lossmon": lossmon.__version__, "keras": keras.__version__,
                                  "backend": "tensorflow", "backend_version": pytest.importorskip("tensorflow").__version__}
    model_info = header["model"]
    assert model_info["params"] == model_info["trainable_params"] == 10 * 128 + 128 + 128 + 1
    assert model_info["layers"] == [
        {"name": model.layers[0].name, "class": "Dense", "units": 128, "activation": "relu", "params": 1408},
        {"name": model.layers[1].name, "class": "Dense", "units": 1, "activation": "sigmoid", "params": 129},
    ]
    optimizer = header["optimizer"]
    assert optimizer["class"] == "Adam" and "schedule" not in optimizer
    assert optimizer["learning_rate"] == 1.0 and type(optimizer["learning_rate"]) is float
    assert optimizer["config"]["beta_1"] == 0.9
    assert header["loss"] == "binary_crossentropy" and header["metrics"] == ["accuracy"]
    assert header["epochs"] == 2 and header["steps_per_epoch"] == 5
    assert "batch_size" in header and header["probes"]["enabled"] is False

    batches = of_kind(records, "batch")
    assert [b["step"] for b in batches] == list(range(1, 11))
    assert [b["epoch"] for b in batches] == [0] * 5 + [1] * 5
    assert [b["batch"] for b in batches] == list(range(5)) * 2
    assert set(batches[0]["logs"]) == {"loss", "accuracy"}
    epochs = of_kind(records, "epoch")
    assert [e["step"] for e in epochs] == [5, 10]
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(epochs[0]["logs"])
    assert [e["lr"] for e in epochs] == [1.0, 1.0]
    assert records[-1].data["status"] == "completed" and records[-1].step == 10


def test_sequential_without_input_is_not_built_at_train_begin(tmp_path):
    path = tmp_path / "run.jsonl"
    x, y = data(60)
    model = seeds_model(with_input=False)
    model.compile(optimizer=keras.optimizers.SGD(0.01),
                  loss=keras.losses.BinaryCrossentropy(),
                  metrics=[keras.metrics.BinaryAccuracy(name="acc"), keras.metrics.AUC(name="auc")])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(x, y, batch_size=20, epochs=1, callbacks=[LossmonCallback(path)], verbose=0)
    assert not loss_warnings(caught)
    records = read(path)
    header = records[0].data
    assert header["model"]["params"] is None  # unknown yet, but no failure
    assert [(layer["class"], layer["units"], layer["params"]) for layer in header["model"]["layers"]] == [
        ("Dense", 128, None), ("Dense", 1, None)]
    assert header["loss"] == "binary_crossentropy"
    assert header["metrics"] == ["acc", "auc"]
    assert header["optimizer"]["class"] == "SGD" and header["optimizer"]["learning_rate"] == 0.01
    assert [r.step for r in records if r.kind == "batch"] == [1, 2, 3]
    assert records[-1].data["status"] == "completed"


def test_functional_model_and_function_loss(tmp_path):
    path = tmp_path / "run.jsonl"
    x, _ = data(40, features=4)
    inputs = keras.Input(shape=(4,))
    hidden = keras.layers.Dense(3, activation="tanh", name="hidden")(inputs)
    outputs = keras.layers.Dense(1, name="out")(hidden)
    model = keras.Model(inputs, outputs, name="tiny")
    model.compile(optimizer="rmsprop", loss=keras.losses.mean_squared_error)
    model.fit(x, x.sum(axis=1), batch_size=10, epochs=1, callbacks=[LossmonCallback(path)], verbose=0)
    header = read(path)[0].data
    assert header["model"]["name"] == "tiny" and header["model"]["params"] == 4 * 3 + 3 + 3 + 1
    layers = header["model"]["layers"]
    assert [layer["class"] for layer in layers] == ["InputLayer", "Dense", "Dense"]
    assert layers[1] == {"name": "hidden", "class": "Dense", "units": 3, "activation": "tanh", "params": 15}
    assert layers[2]["activation"] == "linear" and layers[2]["params"] == 4
    assert header["loss"] == "mean_squared_error" and header["metrics"] == []
    assert header["optimizer"]["class"] == "RMSprop" and header["optimizer"]["learning_rate"] == 0.001


# ------------------------------------------------------- per-step values


def test_step_logs_match_an_independent_per_batch_loss(tmp_path):
    """With a learning rate of 0 the weights never change, so each batch's
    loss can be computed on its own and compared with the recovered value."""
    path = tmp_path / "run.jsonl"
    x, y = data(80)
    model = seeds_model()
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0), loss="binary_crossentropy")
    model.fit(x, y, batch_size=16, epochs=1, shuffle=False, callbacks=[LossmonCallback(path)], verbose=0)
    batches = of_kind(read(path), "batch")
    predictions = model.predict(x, verbose=0)
    loss_fn = keras.losses.BinaryCrossentropy()
    expected = [float(loss_fn(y[i:i + 16, None], predictions[i:i + 16])) for i in range(0, 80, 16)]
    recovered = [b["step_logs"]["loss"] for b in batches]
    assert np.allclose(recovered, expected, rtol=1e-4, atol=1e-6)
    # ... while the logs themselves are the running means Keras reports
    assert np.allclose([b["logs"]["loss"] for b in batches],
                       np.cumsum(expected) / np.arange(1, 6), rtol=1e-5)


def test_step_logs_identity_and_first_batch(tmp_path):
    path = tmp_path / "run.jsonl"
    x, y = data(96)
    model = seeds_model()
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="binary_crossentropy", metrics=["accuracy"])
    model.fit(x, y, batch_size=16, epochs=2, callbacks=[LossmonCallback(path)], verbose=0)
    batches = of_kind(read(path), "batch")
    for previous, current in zip(batches, batches[1:]):
        if current["batch"] == 0:
            assert current["step_logs"] == current["logs"]
            continue
        n, p = current["batch"] + 1, previous["batch"] + 1
        for key in ("loss", "accuracy"):
            expected = (n * current["logs"][key] - p * previous["logs"][key]) / (n - p)
            assert current["step_logs"][key] == pytest.approx(expected)
    assert batches[0]["step_logs"] == batches[0]["logs"]


def test_steps_per_execution_groups(tmp_path):
    """Keras calls on_train_batch_end once per group of 4 batches with the
    group's last index, and 11 (not 9) for the short last group of 10."""
    path = tmp_path / "run.jsonl"
    x, y = data(300)  # 10 batches of 32 (the last one of 12)
    model = seeds_model()
    model.compile(optimizer="adam", loss="binary_crossentropy", steps_per_execution=4)
    model.fit(x, y, batch_size=32, epochs=2, callbacks=[LossmonCallback(path)], verbose=0)
    records = read(path)
    batches = of_kind(records, "batch")
    assert [b["batch"] for b in batches] == [3, 7, 11, 3, 7, 11]
    assert [b["step"] for b in batches] == [4, 8, 10, 14, 18, 20]
    assert [e["step"] for e in of_kind(records, "epoch")] == [10, 20]
    assert records[0].data["steps_per_execution"] == 4
    first, second, third = batches[:3]
    assert second["step_logs"]["loss"] == pytest.approx(
        (8 * second["logs"]["loss"] - 4 * first["logs"]["loss"]) / 4)
    assert third["step_logs"]["loss"] == pytest.approx(
        (10 * third["logs"]["loss"] - 8 * second["logs"]["loss"]) / 2)


# ------------------------------------------------- epochs, lr, endings


def test_learning_rate_schedule(tmp_path):
    path = tmp_path / "run.jsonl"
    x, y = data(100)
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=5, decay_rate=0.5)
    model = seeds_model()
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss="binary_crossentropy")
    model.fit(x, y, batch_size=20, epochs=3, validation_split=0.2, callbacks=[LossmonCallback(path)], verbose=0)
    records = read(path)
    optimizer = records[0].data["optimizer"]
    assert optimizer["schedule"] == "ExponentialDecay"
    assert optimizer["learning_rate"] == pytest.approx(0.1)
    assert optimizer["config"]["learning_rate"]["class_name"] == "ExponentialDecay"
    json.dumps(optimizer["config"], allow_nan=False)
    epochs = of_kind(records, "epoch")
    assert all("val_loss" in e["logs"] for e in epochs)
    lrs = [e["lr"] for e in epochs]
    assert lrs == sorted(lrs, reverse=True) and lrs[0] > lrs[-1]
    # 4 steps per epoch, decaying by half every 5 steps
    assert lrs[0] == pytest.approx(0.1 * 0.5 ** (4 / 5), rel=1e-5)


def test_early_stopping_ends_as_stopped_early(tmp_path):
    path = tmp_path / "run.jsonl"
    x, y = data(60)
    model = seeds_model()
    model.compile(optimizer="adam", loss="binary_crossentropy")
    stopper = keras.callbacks.EarlyStopping(monitor="loss", patience=0, min_delta=100.0)
    model.fit(x, y, batch_size=20, epochs=10, callbacks=[LossmonCallback(path), stopper], verbose=0)
    records = read(path)
    end = records[-1].data
    assert end["kind"] == "end" and end["status"] == "stopped_early"
    assert end["epoch"] == 1 and end["step"] == 6
    assert len(of_kind(records, "epoch")) == 2


class Boom(keras.callbacks.Callback):
    """Raises inside the third batch, as a user's buggy callback would."""

    def __init__(self, exc: BaseException) -> None:
        super().__init__()
        self.exc = exc

    def on_train_batch_end(self, batch, logs=None):
        if batch == 2:
            raise self.exc


def test_context_manager_writes_the_end_record_when_fit_raises(tmp_path):
    path = tmp_path / "run.jsonl"
    x, y = data(100)
    model = seeds_model()
    model.compile(optimizer="adam", loss="binary_crossentropy")
    with pytest.raises(RuntimeError, match="boom"):
        with LossmonCallback(path) as callback:
            model.fit(x, y, batch_size=20, epochs=2, callbacks=[callback, Boom(RuntimeError("boom"))], verbose=0)
    end = read(path)[-1].data
    assert end["kind"] == "end" and end["status"] == "error"
    assert end["step"] == 3 and end["epoch"] == 0
    assert "RuntimeError: boom" in end["reason"]


def test_next_fit_closes_a_run_that_raised(tmp_path):
    path = tmp_path / "run.jsonl"
    x, y = data(60)
    model = seeds_model()
    model.compile(optimizer="adam", loss="binary_crossentropy")
    callback = LossmonCallback(path)
    with pytest.raises(ValueError):
        model.fit(x, y, batch_size=20, epochs=1, callbacks=[callback, Boom(ValueError("bad"))], verbose=0)
    first_run = callback.run_id
    model.fit(x, y, batch_size=20, epochs=1, callbacks=[callback], verbose=0)
    records = read(path)
    assert [r.kind for r in records] == ["header", "batch", "batch", "batch", "end",
                                         "header", "batch", "batch", "batch", "epoch", "end"]
    assert records[4].run == first_run and records[4].data["status"] == "error"
    assert records[5].run != first_run and records[-1].data["status"] == "completed"


SCRIPT = """
import os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
import keras, numpy as np
from lossmon.keras import LossmonCallback

class Boom(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        if batch == 2:
            raise KeyboardInterrupt() if sys.argv[2] == "interrupt" else RuntimeError("boom in batch 2")

x = np.random.rand(60, 4).astype("float32")
model = keras.Sequential([keras.Input(shape=(4,)), keras.layers.Dense(1)])
model.compile(optimizer="sgd", loss="mse")
model.fit(x, x.sum(axis=1), batch_size=10, epochs=2, verbose=0,
          callbacks=[LossmonCallback(sys.argv[1]), Boom()])
"""


@pytest.mark.parametrize("how, status", [("error", "error"), ("interrupt", "interrupted")])
def test_uncaught_exception_gets_an_end_record_at_exit(tmp_path, how, status):
    """A plain script whose fit dies: the end record is written at exit."""
    path = tmp_path / "run.jsonl"
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent(SCRIPT))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, str(script), str(path), how],
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode != 0
    records = read(path)
    assert [r.kind for r in records] == ["header", "batch", "batch", "batch", "end"]
    end = records[-1].data
    assert end["status"] == status and end["step"] == 3
    assert end["reason"] == ("RuntimeError: boom in batch 2" if how == "error" else "KeyboardInterrupt")


# ------------------------------------------------ failures never stop fit


@pytest.mark.parametrize("where", ["/dev/full", "parent-is-a-file"])
def test_io_errors_warn_once_and_training_completes(tmp_path, where):
    if where == "/dev/full":
        path = Path("/dev/full")
    else:
        (tmp_path / "file").write_text("x")
        path = tmp_path / "file" / "run.jsonl"
    x, y = data(60)
    model = seeds_model()
    model.compile(optimizer="adam", loss="binary_crossentropy")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = model.fit(x, y, batch_size=20, epochs=2, callbacks=[LossmonCallback(path)], verbose=0)
    assert len(history.history["loss"]) == 2
    (warning,) = loss_warnings(caught)
    assert str(path) in str(warning.message)


def test_bookkeeping_bug_warns_once_and_training_goes_on(tmp_path, monkeypatch):
    def broken(logs):
        raise ZeroDivisionError("oops")

    monkeypatch.setattr("lossmon.keras.callback.clean_logs", broken)
    path = tmp_path / "run.jsonl"
    x, y = data(60)
    model = seeds_model()
    model.compile(optimizer="adam", loss="binary_crossentropy")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = model.fit(x, y, batch_size=20, epochs=2, callbacks=[LossmonCallback(path)], verbose=0)
    assert len(history.history["loss"]) == 2
    (warning,) = loss_warnings(caught)
    assert "on_train_batch_end" in str(warning.message) and "oops" in str(warning.message)
    assert [r.kind for r in read(path)] == ["header", "end"]


def test_probe_data_and_interval_are_kept(tmp_path):
    callback = LossmonCallback(tmp_path / "run.jsonl", probe_data=(np.zeros((2, 10)), np.zeros(2)), probe_every=5)
    assert callback.probe_every == 5 and callback.probe_data is not None


# ---------------------------------------------------------- scenarios


def run_scenario(name: str, path, epochs: int) -> list:
    from lossmon.scenarios import SCENARIOS, run

    assert name in SCENARIOS
    run(name, str(path), epochs=epochs)
    return read(path)


def test_scenario_high_lr_diverges_in_the_first_epoch(tmp_path):
    records = run_scenario("high_lr", tmp_path / "run.jsonl", epochs=1)
    assert records[0].data["optimizer"]["learning_rate"] == 1.0
    losses = [b["step_logs"]["loss"] for b in of_kind(records, "batch")]
    assert 0.5 < losses[0] < 0.9  # starts near ln 2 ...
    assert max(losses) > 5.0  # ... and leaps to several units within epoch 0
    assert of_kind(records, "epoch")[0]["logs"]["loss"] > 3 * losses[0]
    assert "val_loss" in of_kind(records, "epoch")[0]["logs"]


def test_scenario_healthy_converges(tmp_path):
    records = run_scenario("healthy", tmp_path / "run.jsonl", epochs=3)
    epochs = of_kind(records, "epoch")
    losses = [e["logs"]["loss"] for e in epochs]
    val_losses = [e["logs"]["val_loss"] for e in epochs]
    assert losses == sorted(losses, reverse=True) and losses[-1] < 0.55
    assert val_losses == sorted(val_losses, reverse=True)
    assert records[-1].data["status"] == "completed"


def test_scenario_nan_turns_nan(tmp_path):
    path = tmp_path / "run.jsonl"
    records = run_scenario("nan", path, epochs=3)
    assert '"NaN"' in path.read_text()
    last_epoch = of_kind(records, "epoch")[-1]["logs"]
    assert last_epoch["loss"] == "NaN"
    assert math.isnan(records[-2].values["loss"])


def test_scenarios_command_line(tmp_path):
    path = tmp_path / "run.jsonl"
    result = subprocess.run(
        [sys.executable, "-m", "lossmon.scenarios", "healthy", str(path), "--epochs", "1", "--pace", "0.001"],
        capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    kinds = [r.kind for r in read(path)]
    assert kinds[0] == "header" and kinds[-1] == "end" and kinds.count("batch") == 20
