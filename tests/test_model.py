"""The model stage: bounded series and run state."""

from __future__ import annotations

import math

import numpy as np

from lossmon.format import to_record
from lossmon.model import RunStore, Series, downsample
from records import batch, end, epoch, header


def test_series_keeps_everything_below_capacity():
    series = Series(capacity=64)
    for i in range(50):
        series.append(i, float(i))
    assert len(series) == 50
    assert series.steps.tolist() == list(range(50))


def test_series_stays_bounded_and_keeps_recent_points_exact():
    series = Series(capacity=64)
    for i in range(10_000):
        series.append(i, math.sin(i))
    assert len(series) <= 64
    assert series.total == 10_000
    assert series.steps[-1] == 9_999
    # the newest points are exact and in order
    assert np.all(np.diff(series.steps) > 0)
    assert series.values[-1] == math.sin(9_999)


def test_series_thinning_keeps_spikes_and_nans():
    series = Series(capacity=64)
    for i in range(5_000):
        value = 1.0
        if i == 100:
            value = 1e6
        if i == 200:
            value = math.nan
        series.append(i, value)
    assert np.nanmax(series.values) == 1e6  # an old spike is still visible
    assert np.isnan(series.values).any()  # and so is an old NaN


def test_downsample_bounds_points_and_keeps_extremes():
    steps = np.arange(100_000)
    values = np.random.default_rng(0).normal(size=100_000)
    values[54_321] = 50.0
    xs, ys = downsample(steps, values, 100)
    assert len(xs) <= 200
    assert 50.0 in ys
    assert np.all(np.diff(xs) >= 0)


def test_runstore_tracks_runs_series_and_status():
    store = RunStore()
    for raw in [header("a"), batch(1, 0.7, "a"), batch(2, 0.6, "a"), epoch(0, 0.65, 0.7, "a", steps_per_epoch=2), end(2, "a")]:
        store.add(to_record(raw))
    for raw in [header("b"), batch(1, 0.9, "b")]:
        store.add(to_record(raw))
    assert list(store.runs) == ["a", "b"]
    a, b = store.runs["a"], store.runs["b"]
    assert a.status == "completed" and b.status == "running"
    assert a.batch["loss"].values.tolist() == [0.7, 0.6]
    assert a.epoch["val_loss"].values.tolist() == [0.7]
    assert a.epoch["lr"].values.tolist() == [0.001]
    assert store.latest is b
    assert a.steps_per_second() is not None and a.steps_per_second() > 0


def test_runstore_version_changes_only_on_records():
    store = RunStore()
    before = store.version
    store.add(to_record(batch(1, 0.5)))
    assert store.version > before


def test_probe_records_are_flattened_into_the_probe_table():
    store = RunStore()
    raw = {"kind": "probe", "run": "r1", "step": 10, "epoch": 0, "time": 1.0, "probe_loss": 0.5, "grad_norm": 2.0,
           "layers": {"dense": {"grad_norm": 1.5, "update_ratio": 1e-3}, "bad": "x"}}
    run = store.add(to_record(raw))
    assert sorted(run.probe) == ["grad_norm", "grad_norm/dense", "probe_loss", "update_ratio/dense"]
    assert run.probe["update_ratio/dense"].values.tolist() == [1e-3]
