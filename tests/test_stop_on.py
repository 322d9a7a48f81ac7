"""stop_on: the detectors run inside fit and stop it, like TerminateOnNaN for all of them."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from lossmon.format import decode
from lossmon.keras import LossmonCallback


def read(path):
    return [r for r in (decode(line) for line in open(path, "rb")) if r is not None]


def seeds_classifier(lr: float):
    from lossmon.scenarios._common import classification, seeds_model

    (x, y), _ = classification()
    model = seeds_model()
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=lr), loss="binary_crossentropy")
    return model, x, y


def test_critical_divergence_stops_the_high_lr_run(tmp_path):
    path = tmp_path / "run.jsonl"
    model, x, y = seeds_classifier(1.0)
    history = model.fit(x, y, batch_size=32, epochs=5, verbose=0,
                        callbacks=[LossmonCallback(path, stop_on="critical")])
    records = read(path)
    end = records[-1].data
    assert end["status"] == "stopped_early"
    assert end["reason"].startswith("stop_on=critical: divergence: loss diverging")
    assert end["step"] < 20 and len(history.history["loss"]) == 1  # within the first epoch of 20 steps
    # the lr_config warning at train begin did not stop it: only critical alerts do
    assert [r.kind for r in records].count("batch") == end["step"]


def test_warning_level_stops_at_the_first_batch_for_a_static_check(tmp_path):
    path = tmp_path / "run.jsonl"
    model, x, y = seeds_classifier(1.0)
    model.fit(x, y, batch_size=32, epochs=5, verbose=0, callbacks=[LossmonCallback(path, stop_on="warning")])
    end = read(path)[-1].data
    assert end["status"] == "stopped_early" and end["step"] == 1
    assert "lr_config: learning rate 1.0 is 1000x Adam's default 0.001" in end["reason"]


def test_nan_run_stops_on_nonfinite(tmp_path):
    from lossmon.scenarios.nan import SCALES, regression

    (x, y), _ = regression()
    assert SCALES.max() == 100
    keras.utils.set_random_seed(7)
    model = keras.Sequential([keras.Input(shape=(10,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=3e-4), loss="mse")
    path = tmp_path / "run.jsonl"
    model.fit(x, y, batch_size=32, epochs=6, verbose=0, callbacks=[LossmonCallback(path, stop_on="critical")])
    end = read(path)[-1].data
    assert end["status"] == "stopped_early" and end["step"] < 120
    assert end["reason"].split(": ")[1] in {"divergence", "nonfinite"}


def test_healthy_run_is_not_stopped_and_default_is_off(tmp_path):
    model, x, y = seeds_classifier(0.001)
    for stop_on in ("warning", None):
        path = tmp_path / f"{stop_on}.jsonl"
        model.fit(x, y, batch_size=32, epochs=2, verbose=0, callbacks=[LossmonCallback(path, stop_on=stop_on)])
        end = read(path)[-1].data
        assert end["status"] == "completed" and "reason" not in end and end["step"] == 40


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="stop_on"):
        LossmonCallback("x.jsonl", stop_on="info")
    with pytest.raises(ValueError, match="workers"):
        LossmonCallback("x.jsonl", workers="some")
    with pytest.raises(ValueError, match="probe_every"):
        LossmonCallback("x.jsonl", probe_data=(np.zeros((2, 2)), np.zeros(2)), probe_every=0)
